// Which `pgroute up`/`watch` runs on a state dir: it listens on a unix socket there while it runs,
// so that a one-shot `generate` or `reload` on the same state dir is refused instead of rewriting
// what that process applies (its agent socket, listeners, tenants, certificate: a reload with other
// flags rewired it). A socket, not a pid file: it answers only while its process lives, from any
// container sharing the state dir's volume (a pid means nothing in another pid namespace, and is
// reused after a crash).

import { unlink } from 'node:fs/promises';
import { connect, createServer, type Server } from 'node:net';

export interface StateDirClaim {
  release(): Promise<void>;
}

/**
 * Serves the owner socket at `path` (its answer: "pid N", for the refusal's words). A socket left by
 * a process that died is replaced; one that answers belongs to a live owner: then nothing is claimed.
 */
export async function claimStateDir(path: string): Promise<StateDirClaim | undefined> {
  if ((await stateDirOwner(path)) !== undefined) return undefined;
  await unlink(path).catch(() => undefined);
  const server: Server = createServer((socket) => socket.end(`pid ${process.pid}\n`));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, () => resolve());
  });
  server.unref();
  return {
    release: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
      }),
  };
}

/** What the live owner of the state dir says of itself ("pid N"), or undefined when nothing answers there. */
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
    socket.on('error', () => done(undefined));
  });
}
