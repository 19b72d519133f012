// Which `pgroute up`/`watch` runs on a state dir: it listens on a unix socket there while it runs,
// so that a one-shot `generate` or `reload`, or a second `up`/`watch`, on the same state dir is
// refused instead of rewriting what that process applies (its agent socket, listeners, tenants,
// certificate: a reload with other flags rewired it). A socket, not a pid file: it answers only
// while its process lives, from any container sharing the state dir's volume (a pid means nothing
// in another pid namespace, and is reused after a crash).

import { mkdir, rm, stat, unlink } from 'node:fs/promises';
import { connect, createServer, type Server } from 'node:net';

export interface StateDirClaim {
  release(): Promise<void>;
}

/** A claim taken, or what the live owner says of itself ("pid N"). */
export type ClaimResult = { readonly claim: StateDirClaim } | { readonly owner: string };

/** A claim takes milliseconds; a lock directory older than this was left by a process that died in one. */
const STALE_LOCK_MS = 10_000;
/** How long a claim waits for another one in progress. */
const LOCK_WAIT_MS = 15_000;

/**
 * Claims the state dir for this process: serves the owner socket at `path` (its answer: "pid N",
 * for a refusal's words) until released. A socket left by a process that died is replaced; one that
 * answers belongs to a live owner, which is returned instead. Two claims at once cannot both win:
 * the check and the replacement run under a lock directory (mkdir is atomic), since a socket file
 * cannot be compared and deleted in one step.
 */
export async function claimStateDir(path: string): Promise<ClaimResult> {
  return withLock(`${path}.lock`, async () => {
    const owner = await stateDirOwner(path);
    if (owner !== undefined) return { owner };
    await unlink(path).catch(() => undefined);
    const server: Server = createServer((socket) => socket.end(`pid ${process.pid}\n`));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(path, () => resolve());
    });
    server.unref();
    return {
      claim: {
        release: () =>
          new Promise<void>((resolve) => {
            server.close(() => resolve());
          }),
      },
    };
  });
}

async function withLock<T>(lock: string, f: () => Promise<T>): Promise<T> {
  const deadline = Date.now() + LOCK_WAIT_MS;
  for (;;) {
    try {
      await mkdir(lock);
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const since = await stat(lock).then((s) => Date.now() - s.mtimeMs, () => 0);
      if (since > STALE_LOCK_MS) await rm(lock, { recursive: true, force: true });
      else if (Date.now() > deadline) throw new Error(`${lock} stayed locked for ${LOCK_WAIT_MS / 1000} s: another pgroute is claiming this state dir; try again, or remove that directory if no pgroute runs here`);
      else await new Promise((r) => setTimeout(r, 20));
    }
  }
  try {
    return await f();
  } finally {
    await rm(lock, { recursive: true, force: true });
  }
}

/**
 * What the live owner of the state dir says of itself ("pid N"), or undefined when nothing answers
 * there (no socket, or one its process left behind). A socket this user may not open belongs to
 * another user's live process as far as anyone here can tell: never taken over.
 */
export function stateDirOwner(path: string): Promise<string | undefined> {
  return new Promise((resolve) => {
    const socket = connect(path);
    let said = '';
    const done = (answer: string | undefined): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve(answer);
    };
    const timer = setTimeout(() => done(said.trim() || 'an unknown process'), 2_000);
    socket.on('data', (d: Buffer) => (said += d.toString('utf8').slice(0, 64)));
    socket.on('end', () => done(said.trim() || 'an unknown process'));
    socket.on('error', (err: NodeJS.ErrnoException) => done(err.code === 'EACCES' || err.code === 'EPERM' ? 'a process of another user: its socket refuses this one (EACCES)' : undefined));
  });
}
