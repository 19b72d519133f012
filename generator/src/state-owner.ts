// Which `pgroute up`/`watch` runs on a state dir: it writes its pid there while it runs, so that a
// one-shot `generate` or `reload` on the same state dir is refused instead of rewriting what that
// process applies (its agent socket, listeners and tenants: a reload with other flags rewired it).

import { readFileSync, unlinkSync, writeFileSync } from 'node:fs';

/** Records this process as the state dir's owner. */
export function claimStateDir(path: string): void {
  writeFileSync(path, `${process.pid}\n`, { mode: 0o644 });
}

/** Removes the record if it is still this process's. */
export function releaseStateDir(path: string): void {
  try {
    if (readFileSync(path, 'utf8').trim() === String(process.pid)) unlinkSync(path);
  } catch {
    // gone already
  }
}

/**
 * The pid of the live pgroute recorded as the state dir's owner, other than this process; undefined
 * when none is (no record, or its process is gone or is no longer pgroute: a reused pid).
 */
export function stateDirOwner(path: string): number | undefined {
  let pid: number;
  try {
    pid = Number(readFileSync(path, 'utf8').trim());
  } catch {
    return undefined;
  }
  if (!Number.isInteger(pid) || pid <= 0 || pid === process.pid) return undefined;
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('pgroute') ? pid : undefined;
  } catch {
    return undefined;
  }
}
