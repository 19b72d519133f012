// Locates files shipped with pgroute (templates, the Lua action) whether running from the
// TypeScript sources or from dist/.

import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

let root: string | undefined;

/** The pgroute installation root: the nearest ancestor holding haproxy/haproxy.cfg.hbs. */
export function installRoot(): string {
  if (root !== undefined) return root;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, 'haproxy', 'haproxy.cfg.hbs'))) return (root = dir);
    const parent = dirname(dir);
    if (parent === dir) throw new Error('cannot find pgroute\'s haproxy/ templates above ' + fileURLToPath(import.meta.url));
    dir = parent;
  }
}

export function assetPath(...parts: string[]): string {
  return join(installRoot(), ...parts);
}
