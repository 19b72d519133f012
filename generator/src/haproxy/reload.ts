// Graceful reload through the master CLI (master-worker mode), verified with `show proc`: in 2.6
// the `reload` command itself prints nothing.

import { haproxyCli, HaproxyCliError, masterCli } from './master.js';

export interface ProcStatus {
  readonly masterPid: number;
  readonly reloads: number;
  readonly failed: number;
  readonly workers: readonly number[];
  readonly oldWorkers: readonly number[];
}

/** Parses the master CLI's `show proc`. */
export function parseShowProc(text: string): ProcStatus | undefined {
  let section: 'master' | 'workers' | 'old' | 'other' = 'master';
  let masterPid = -1;
  let reloads = 0;
  let failed = 0;
  const workers: number[] = [];
  const oldWorkers: number[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#<PID>')) continue;
    if (line.startsWith('# workers')) section = 'workers';
    else if (line.startsWith('# old workers')) section = 'old';
    else if (line.startsWith('#')) section = 'other';
    else {
      const m = /^(\d+)\s+(\S+)\s+(\d+)(?:\s+\[failed: (\d+)\])?/.exec(line);
      if (!m) continue;
      const pid = Number(m[1]);
      if (m[2] === 'master') {
        masterPid = pid;
        reloads = Number(m[3]);
        failed = Number(m[4] ?? 0);
      } else if (m[2] === 'worker') (section === 'old' ? oldWorkers : workers).push(pid);
    }
  }
  return masterPid < 0 ? undefined : { masterPid, reloads, failed, workers, oldWorkers };
}

function parseProcOrThrow(answer: string, masterSocket: string): ProcStatus {
  const status = parseShowProc(answer);
  if (status === undefined) throw new Error(`cannot read "show proc" from the HAProxy master at ${masterSocket}`);
  return status;
}

export async function showProc(masterSocket: string): Promise<ProcStatus> {
  return parseProcOrThrow(await haproxyCli(masterSocket, 'show proc'), masterSocket);
}

/** HAProxy 3.1+'s answer to `reload` while a load is in progress (nothing was done). */
const RELOAD_BUSY = /^Success=0\n--\nAnother reload is still in progress/;

export interface ReloadOutcome {
  readonly ok: boolean;
  readonly before: ProcStatus;
  readonly after: ProcStatus | undefined;
  readonly detail: string;
}

/**
 * Asks the master to reload and waits until `show proc` says whether it worked. A master that
 * drops connections (re-executing itself after a start or another reload, up to 3.0) or answers
 * that another reload is in progress (3.1+, also while its first load is) is waited for, up to
 * `refusedWaitMs`.
 */
export async function reloadMaster(masterSocket: string, timeoutMs = 15_000, refusedWaitMs = 5_000): Promise<ReloadOutcome> {
  const before = parseProcOrThrow(await masterCli(masterSocket, 'show proc', { repeatable: true, waitMs: refusedWaitMs }), masterSocket);
  const busyUntil = Date.now() + refusedWaitMs;
  for (;;) {
    // Up to 3.0 the master re-executes and drops the connection: any error but a refusal comes after
    // the command. From 3.1 it answers; while its first load or another reload is not finished, the
    // answer is a refusal that did nothing: asked again.
    const answer = await masterCli(masterSocket, 'reload', { repeatable: false, waitMs: refusedWaitMs }).catch((err: unknown) => {
      if (err instanceof HaproxyCliError && err.refused) throw err;
      return '';
    });
    if (!RELOAD_BUSY.test(answer)) break;
    if (Date.now() >= busyUntil) return { ok: false, before, after: undefined, detail: `the master kept answering "Another reload is still in progress" for ${refusedWaitMs} ms` };
    await new Promise((r) => setTimeout(r, 50));
  }
  const deadline = Date.now() + timeoutMs;
  let after: ProcStatus | undefined;
  while (Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 50));
    after = await showProc(masterSocket).catch(() => undefined);
    if (after === undefined || after.reloads <= before.reloads) continue;
    if (after.failed > before.failed) return { ok: false, before, after, detail: 'the master reports the new configuration failed to load; the previous workers keep serving' };
    const fresh = after.workers.filter((p) => !before.workers.includes(p));
    if (fresh.length > 0) return { ok: true, before, after, detail: `new worker ${fresh.join(',')}; ${after.oldWorkers.length} old worker(s) finishing their sessions` };
  }
  return { ok: false, before, after, detail: `no new worker within ${timeoutMs} ms of the reload` };
}
