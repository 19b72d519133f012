// Runtime API: applying a plan's operations to the running HAProxy without a reload.

import type { RuntimeOp } from '../plan.js';
import { haproxyCli } from './master.js';

const SERVER = 's1';

/** The CLI commands for one operation. Addresses are IPs (the plan only places IPs at runtime). */
export function opCommands(op: RuntimeOp): string[] {
  const srv = `${op.backend}/${SERVER}`;
  switch (op.kind) {
    case 'park':
      return [`set server ${srv} state maint`];
    case 'move':
      return [`set server ${srv} addr ${op.occupant.endpoint.host} port ${op.occupant.endpoint.port}`];
    case 'limit':
      return [`set maxconn server ${srv} ${op.maxconn}`];
    case 'place':
      return [
        `set server ${srv} addr ${op.occupant.endpoint.host} port ${op.occupant.endpoint.port}`,
        `set maxconn server ${srv} ${op.occupant.maxconn ?? 0}`,
        // Routable now, not after the first health check; checks then keep it honest.
        `set server ${srv} health up`,
        `set server ${srv} state ready`,
      ];
  }
}

/** Answers of the HAProxy CLI that mean a command failed. */
const FAILURE = /No such (backend|server)|Require '|Invalid|invalid|not found|can't|cannot|Unknown command|failed|Permission denied/;

export class RuntimeApiError extends Error {
  override readonly name = 'RuntimeApiError';
}

/**
 * Runs the operations' commands over the admin socket, in order, in batches. Throws
 * RuntimeApiError naming the first failing answer (the caller then falls back to a reload, which
 * renders the whole desired state).
 */
export async function runRuntimeOps(adminSocket: string, ops: readonly RuntimeOp[], batch = 200): Promise<number> {
  const commands = ops.flatMap(opCommands);
  for (let i = 0; i < commands.length; i += batch) {
    const line = commands.slice(i, i + batch).join('; ');
    let answer: string;
    try {
      answer = await haproxyCli(adminSocket, line);
    } catch (err) {
      throw new RuntimeApiError(`runtime API unreachable: ${(err as Error).message}`);
    }
    const bad = answer.split('\n').find((l) => FAILURE.test(l));
    if (bad !== undefined) throw new RuntimeApiError(`runtime API refused a command (${bad.trim()}) in: ${line.slice(0, 300)}`);
  }
  return commands.length;
}
