// A unix socket file nothing listens on, as a killed process leaves it: connecting is refused
// (ECONNREFUSED), as it is for a moment while HAProxy's master re-executes itself.

import { spawnSync } from 'node:child_process';

/** Creates it at `path` (a process listens there, then is killed with SIGKILL) and returns the path. */
export function staleSocket(path: string): string {
  const child = spawnSync(process.execPath, ['-e', `require('node:net').createServer().listen(${JSON.stringify(path)}, () => process.kill(process.pid, 'SIGKILL'))`]);
  if (child.signal !== 'SIGKILL') throw new Error(`the stale socket's process ended with ${child.signal ?? child.status}: ${String(child.stderr)}`);
  return path;
}
