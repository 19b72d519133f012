// Creates the state dir one level at a time. Node's recursive mkdir never returns under a path the
// kernel refuses with ENOENT although the parent exists (/proc/x): it spins at 100 % CPU. Once the
// state dir exists, the generator's own recursive mkdirs inside it are safe.

import { constants } from 'node:fs';
import { access, mkdir, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import { ConfigError } from '../generator/src/index.js';

export async function makeStateDir(label: string, dir: string): Promise<void> {
  const missing: string[] = [];
  for (let d = dir; ; d = dirname(d)) {
    const s = await stat(d).catch((err: NodeJS.ErrnoException) => (err.code === 'ENOENT' ? undefined : refuse(label, dir, d, err)));
    if (s !== undefined) {
      if (!s.isDirectory()) throw new ConfigError(`${label}: ${d} is not a directory; choose a directory for the state dir ${dir}`);
      break;
    }
    missing.unshift(d);
    if (d === dirname(d)) break;
  }
  for (const d of missing) await mkdir(d, { mode: 0o755 }).catch((err: NodeJS.ErrnoException) => (err.code === 'EEXIST' ? undefined : refuse(label, dir, d, err)));
  // One that exists must take new files too (the first write would fail otherwise, past every check).
  await access(dir, constants.W_OK | constants.X_OK).catch((err: NodeJS.ErrnoException) => {
    throw new ConfigError(`${label}: this user cannot write in the state dir ${dir} (${err.code ?? err.message}); choose a directory this user can create and write, or run as its owner`);
  });
}

function refuse(label: string, dir: string, at: string, err: NodeJS.ErrnoException): never {
  throw new ConfigError(`${label}: cannot create the state dir ${dir} (${at}: ${err.code ?? err.message}); choose a directory this user can create and write`);
}
