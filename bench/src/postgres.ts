// PostgreSQL 15 as the bench runners use it: its binaries, commands run as user postgres, and what
// pgbench prints.

import { join } from 'node:path';
import type { RunResult } from './procs.js';

export const PGBIN = '/usr/lib/postgresql/15/bin';

/** `cmd` of PGBIN run as user postgres, as [command, args] for run() / mustRun(). */
export function asPostgres(cmd: string, args: readonly string[]): [string, string[]] {
  return ['runuser', ['-u', 'postgres', '--', join(PGBIN, cmd), ...args]];
}

export interface PgbenchFigures<P extends string> {
  readonly path: P;
  readonly mode: 'connect' | 'persistent';
  readonly tps: number;
  readonly connMs: number | null;
  readonly latencyMs: number | null;
  readonly failed: number;
  readonly transactions: number;
}

/** The figures of one pgbench run on `path`; throws when it failed or printed no tps. */
export function pgbenchFigures<P extends string>(r: RunResult, path: P, mode: 'connect' | 'persistent'): PgbenchFigures<P> {
  const num = (re: RegExp): number | null => {
    const m = re.exec(r.stdout);
    return m?.[1] === undefined ? null : Number(m[1]);
  };
  const tps = num(/tps = ([\d.]+)/);
  if (r.code !== 0 || tps === null) throw new Error(`pgbench on ${path} (${mode}) failed (${r.code}):\n${r.stderr.trim()}\n${r.stdout.trim()}`);
  return {
    path,
    mode,
    tps,
    connMs: num(/average connection time = ([\d.]+) ms/),
    latencyMs: num(/latency average = ([\d.]+) ms/),
    failed: num(/number of failed transactions: (\d+)/) ?? 0,
    transactions: num(/number of transactions actually processed: (\d+)/) ?? 0,
  };
}
