// HAProxy needs about two file descriptors per connection plus one per server (health checks) and
// per listener. `haproxy -c` accepts a configuration the process cannot start with, so the
// generator checks the open-files limit itself and says what to change.

import { readFileSync } from 'node:fs';
import type { Layout } from '../layout.js';

/** HAProxy's own estimate (maxsock), within a small margin. */
export function descriptorsNeeded(maxconn: number, layout: Layout, listeners: number): number {
  const servers = layout.backends.reduce((n, b) => n + (b.state.kind === 'occupied' ? (b.state.occupant.members?.length ?? 1) : 1), 0);
  return 2 * maxconn + servers + 2 * listeners + 64;
}

/** The hard limit on open files of this process (HAProxy, started by us or beside us, has the same). */
export function openFilesLimit(): number | undefined {
  try {
    const line = readFileSync('/proc/self/limits', 'utf8')
      .split('\n')
      .find((l) => l.startsWith('Max open files'));
    const hard = line?.trim().split(/\s+/)[4];
    return hard === undefined || hard === 'unlimited' ? undefined : Number(hard);
  } catch {
    return undefined;
  }
}

/** Why the configuration cannot start, or undefined when it fits. */
export function descriptorProblem(maxconn: number, layout: Layout, listeners: number, limit = openFilesLimit()): string | undefined {
  if (limit === undefined) return undefined;
  const needed = descriptorsNeeded(maxconn, layout, listeners);
  if (needed <= limit) return undefined;
  return `HAProxy would need about ${needed} open files (2 x maxconn ${maxconn}, plus one per server: ${layout.backends.length} backends) but the limit is ${limit}: raise the open-files limit (ulimit -n, LimitNOFILE) or lower --maxconn`;
}
