// Which HAProxy pgroute uses (PGROUTE_HAPROXY, else `haproxy` on PATH) and its version.

import { execFileSync } from 'node:child_process';
import { haproxyBinary } from './check.js';

/** "HAProxy version 3.2.26-1 2025/11/20 - https://haproxy.org/" -> "3.2.26-1". */
export function parseHaproxyVersion(text: string): string | undefined {
  return /^HA-?Proxy version (\S+)/m.exec(text)?.[1];
}

/**
 * Asks the binary (`haproxy -v`, a few milliseconds); undefined when it cannot be run or names no
 * version. Synchronous: used once at start and by `pgroute --version`.
 */
export function haproxyVersion(binary = haproxyBinary()): string | undefined {
  try {
    return parseHaproxyVersion(execFileSync(binary, ['-v'], { encoding: 'utf8', timeout: 10_000, stdio: ['ignore', 'pipe', 'pipe'] }));
  } catch {
    return undefined;
  }
}
