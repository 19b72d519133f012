// Clients routed through pgroute for one tenant (`options=-c pgroute.tenant=<id>`), for end-to-end
// tests that watch a tenant change hands: what a client sees, and how long until it sees something.

import pg from 'pg';
import { APP_ROLE } from './postgres.js';
import { sleep, type ProcessHandle } from './process.js';
import { psql } from './psql.js';

export interface RoutedOptions {
  /** The pgroute port (the port block's `haproxy`). */
  readonly port: number;
  /** The role to connect as; default the test servers' application role ('app'). */
  readonly user?: string;
  /** The process whose recent output a timeout in reaches() shows (asked for when it happens). */
  readonly showOnTimeout?: () => ProcessHandle | undefined;
  /** reaches() records the ms it measured here, under its `what`. */
  readonly timings?: Record<string, number>;
  /** Told every outcome a client saw, in order (e.g. to check a server never appeared). */
  readonly onOutcome?: (tenant: string, outcome: string) => void;
}

export interface Routed {
  /** SHOW cluster_name through pgroute for `tenant` (node-postgres); throws the server's error (with its code). */
  routed(tenant: string): Promise<string>;
  /** What the client sees: the cluster name, or 'refused <SQLSTATE>', or 'error: <message>' for another error. */
  outcome(tenant: string): Promise<string>;
  /** Polls until `outcome(tenant)` is `want`; records (under `what`) and returns the ms since `since`. */
  reaches(what: string, tenant: string, want: string, since: number, limitMs?: number): Promise<number>;
  /** SHOW cluster_name with psql through pgroute (what users run): the cluster name, or psql's error text. */
  psqlRouted(tenant: string): Promise<{ ok: boolean; text: string }>;
}

/** SHOW cluster_name on one fresh node-postgres connection (database postgres, 1 s to connect); throws the server's error (code attached). */
export async function clusterName(cfg: pg.ClientConfig): Promise<string> {
  const client = new pg.Client({ database: 'postgres', connectionTimeoutMillis: 1_000, ...cfg });
  client.on('error', () => {});
  try {
    await client.connect();
    const r = await client.query<{ cluster_name: string }>('SHOW cluster_name');
    return r.rows[0]?.cluster_name ?? '';
  } finally {
    await client.end().catch(() => undefined);
  }
}

export function routedClients(opts: RoutedOptions): Routed {
  const user = opts.user ?? APP_ROLE;
  const options = (tenant: string): string => `-c pgroute.tenant=${tenant}`;

  function routed(tenant: string): Promise<string> {
    return clusterName({ host: '127.0.0.1', port: opts.port, user, options: options(tenant) });
  }

  async function outcome(tenant: string): Promise<string> {
    let result: string;
    try {
      result = await routed(tenant);
    } catch (err) {
      const e = err as Error & { code?: string };
      result = e.code === undefined ? `error: ${e.message}` : `refused ${e.code}`;
    }
    opts.onOutcome?.(tenant, result);
    return result;
  }

  async function reaches(what: string, tenant: string, want: string, since: number, limitMs = 15_000): Promise<number> {
    let last = '';
    for (;;) {
      last = await outcome(tenant);
      if (last === want) break;
      if (Date.now() - since > limitMs) {
        throw new Error(`${what}: ${tenant} did not reach "${want}" within ${limitMs} ms (last: ${last})\n${opts.showOnTimeout?.()?.output(30) ?? ''}`);
      }
      await sleep(10);
    }
    const ms = Date.now() - since;
    if (opts.timings) opts.timings[what] = ms;
    return ms;
  }

  async function psqlRouted(tenant: string): Promise<{ ok: boolean; text: string }> {
    const r = await psql({ port: opts.port, user, db: 'postgres', options: options(tenant), command: 'SHOW cluster_name', timeoutMs: 5_000 });
    return r.code === 0 ? { ok: true, text: r.stdout.trim() } : { ok: false, text: r.stderr.trim() };
  }

  return { routed, outcome, reaches, psqlRouted };
}
