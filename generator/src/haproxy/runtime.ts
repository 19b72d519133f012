// Runtime API: applying a plan's operations to the running HAProxy without a reload.

import type { RuntimeOp } from '../plan.js';
import { haproxyCli } from './master.js';

/** The server a runtime placement sets: spares hold one server, s1. */
const SERVER = 's1';

/** `backend/s1` … `backend/sN`: every server of a (cluster) backend. */
function allServers(backend: string, servers = 1): string[] {
  return Array.from({ length: servers }, (_, i) => `${backend}/s${i + 1}`);
}

/** The CLI commands for one operation. Addresses are IPs (the plan only places IPs at runtime). */
export function opCommands(op: RuntimeOp): string[] {
  const srv = `${op.backend}/${SERVER}`;
  switch (op.kind) {
    case 'park':
      return allServers(op.backend, op.servers).map((s) => `set server ${s} state maint`);
    case 'move':
      return [`set server ${srv} addr ${op.occupant.endpoint.host} port ${op.occupant.endpoint.port}`];
    case 'limit':
      return allServers(op.backend, op.servers).map((s) => `set maxconn server ${s} ${op.maxconn}`);
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
 * HAProxy reads a CLI request into one buffer (tune.bufsize, 16 kB by default): a longer line is
 * refused whole. Batches stay well under it.
 */
const MAX_LINE = 8_192;

/** The commands joined into CLI lines of at most `maxLine` characters (a longer single command gets a line of its own). */
export function batchLines(commands: readonly string[], maxLine = MAX_LINE): string[] {
  const lines: string[] = [];
  let line = '';
  for (const c of commands) {
    if (line !== '' && line.length + 2 + c.length > maxLine) {
      lines.push(line);
      line = '';
    }
    line = line === '' ? c : `${line}; ${c}`;
  }
  if (line !== '') lines.push(line);
  return lines;
}

/**
 * Runs the operations' commands over the admin socket, in order, in batches. Throws
 * RuntimeApiError naming the first failing answer (the caller then falls back to a reload, which
 * renders the whole desired state).
 */
export async function runRuntimeOps(adminSocket: string, ops: readonly RuntimeOp[], maxLine = MAX_LINE): Promise<number> {
  const commands = ops.flatMap(opCommands);
  for (const line of batchLines(commands, maxLine)) {
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
