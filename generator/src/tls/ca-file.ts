// What a tenant target's tls.ca must be before haproxy.cfg names it: HAProxy refuses the whole
// configuration over one ca-file it cannot load, so such a tenant is refused instead, alone.

import { readFileSync } from 'node:fs';
import { ConfigError, readFailure } from '../errors.js';
import { parseCertificates } from './bundle.js';

/** Why HAProxy could not load `path` as a ca-file (read now, on this machine), or undefined when it can. */
export function caFileProblem(path: string): string | undefined {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'does not exist (on the machine that runs HAProxy and pgroute)' : `cannot be read: ${readFailure(err)}`;
  }
  try {
    parseCertificates(text, path);
    return undefined;
  } catch (err) {
    if (err instanceof ConfigError) return `is no CA certificate HAProxy can load: ${err.message.startsWith(path) ? err.message.slice(path.length).replace(/^:? /, '') : err.message}`;
    throw err;
  }
}
