// `pgroute --version`: pgroute's version first (alone on its line, for scripts), then the HAProxy
// it would run (PGROUTE_HAPROXY, else `haproxy` on PATH) and Node.js.

import type { Command } from 'commander';
import { pgrouteVersion } from '../agent/src/index.js';
import { haproxyBinary, haproxyVersion } from '../generator/src/index.js';

export function versionText(): string {
  const binary = haproxyBinary();
  const haproxy = haproxyVersion(binary);
  return [
    `pgroute ${pgrouteVersion()}`,
    haproxy === undefined ? `HAProxy: not found (${binary}; set PGROUTE_HAPROXY to its path)` : `HAProxy ${haproxy} (${binary})`,
    `Node.js ${process.version}`,
  ].join('\n');
}

/** -V, --version on the program: prints versionText() and exits, before any command runs. */
export function addVersionFlag(program: Command): Command {
  return program.option('-V, --version', 'print the versions of pgroute, its HAProxy and Node.js').on('option:version', () => {
    process.stdout.write(`${versionText()}\n`);
    process.exit(0);
  });
}
