// PostgreSQL 15 as the bench runners use it: its binaries, commands run as user postgres, and what
// pgbench prints.

import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { mustRun, run, type RunResult } from './procs.js';

export const PGBIN = '/usr/lib/postgresql/15/bin';

/** `cmd` of PGBIN run as user postgres, as [command, args] for run() / mustRun(). */
export function asPostgres(cmd: string, args: readonly string[]): [string, string[]] {
  return ['runuser', ['-u', 'postgres', '--', join(PGBIN, cmd), ...args]];
}

/**
 * One PostgreSQL for a bench run, in <root>/data (run.sh's trap stops one left there), with a
 * pgbench database `bench` at scale 1. With `tls`, it serves that certificate and key (ssl=on).
 */
export class BenchPostgres {
  readonly #root: string;
  readonly #data: string;
  #started = false;

  constructor(
    root: string,
    readonly port: number,
    private readonly log: (msg: string) => void,
  ) {
    this.#root = root;
    this.#data = join(root, 'data');
  }

  async start(tls?: { readonly cert: string; readonly key: string }): Promise<void> {
    mkdirSync(this.#data, { recursive: true });
    await mustRun('chown', ['-R', 'postgres:postgres', this.#root]);
    chmodSync(this.#data, 0o700);
    await mustRun(...asPostgres('initdb', ['-D', this.#data, '-U', 'postgres', '--auth=trust', '--no-sync', '-E', 'UTF8']));
    if (tls !== undefined) {
      const crt = join(this.#data, 'server.crt');
      const key = join(this.#data, 'server.key');
      writeFileSync(crt, tls.cert, { mode: 0o600 });
      writeFileSync(key, tls.key, { mode: 0o600 });
      await mustRun('chown', ['postgres:postgres', crt, key]);
    }
    const opts = `-p ${this.port} -c listen_addresses=127.0.0.1 -k ${this.#root} -c max_connections=100 -c fsync=off -c synchronous_commit=off${tls ? ' -c ssl=on' : ''}`;
    await mustRun(...asPostgres('pg_ctl', ['-D', this.#data, '-l', join(this.#root, 'postgres.log'), '-o', opts, '-w', '-t', '60', 'start']));
    this.#started = true;
    this.log(`PostgreSQL up on :${this.port}${tls ? ' (ssl=on)' : ''}`);
    await mustRun(join(PGBIN, 'createdb'), ['-h', '127.0.0.1', '-p', String(this.port), '-U', 'postgres', 'bench']);
    await mustRun(join(PGBIN, 'pgbench'), ['-h', '127.0.0.1', '-p', String(this.port), '-U', 'postgres', '-i', '-s', '1', '-q', 'bench']);
  }

  async stop(): Promise<void> {
    if (!this.#started) return;
    this.#started = false;
    await run(...asPostgres('pg_ctl', ['-D', this.#data, '-m', 'fast', '-w', '-t', '30', 'stop']));
    this.log('PostgreSQL stopped');
  }

  /** The postmaster's pid (0 when it is not running). */
  postmasterPid(): number {
    try {
      return Number(readFileSync(join(this.#data, 'postmaster.pid'), 'utf8').split('\n')[0]);
    } catch {
      return 0;
    }
  }
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
