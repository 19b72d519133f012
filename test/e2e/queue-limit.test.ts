// maxqueue on a running HAProxy (`pgroute up`, real PostgreSQL): a tenant with maxconn 1 and
// maxqueue 2. One session holds the one slot, two connections wait in the queue, and the next is
// refused at once with a PostgreSQL error (53300, naming tenant, target and limit) that psql and
// node-postgres show, instead of waiting in an unbounded queue until `timeout queue` and being
// closed without a word. When the slot frees, the waiting connections are served, in order. The
// refusals are counted with the tenant's other policy refusals (metrics, `pgroute status`).

import { rmSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { haproxyCli, statePaths } from '../../generator/src/index.js';
import { parseShowStat } from '../../generator/src/status/show-stat.js';
import { runCliOnce, startUp, writeTenantsFile } from '../support/pgroute.js';
import { portBlock } from '../support/ports.js';
import { APP_ROLE, startPostgres, type PgServer } from '../support/postgres.js';
import { stopAll, waitFor, type ProcessHandle } from '../support/process.js';
import { routedClients } from '../support/routed.js';

const ports = portBlock(17);
const MAXQUEUE = 2;

let server: PgServer | undefined;
let up: ProcessHandle | undefined;
let tmp = '';
let state = '';
const { psqlRouted } = routedClients({ port: ports.haproxy, showOnTimeout: () => up });

function client(): pg.Client {
  const c = new pg.Client({ host: '127.0.0.1', port: ports.haproxy, user: APP_ROLE, database: 'postgres', options: '-c pgroute.tenant=acme', connectionTimeoutMillis: 30_000 });
  c.on('error', () => {});
  return c;
}

/** Connections waiting for acme's primary: its backend's queue and its server's (HAProxy's `show stat`). */
async function queued(): Promise<number> {
  const rows = parseShowStat(await haproxyCli(statePaths(state).adminSocket, 'show stat', 2_000));
  return rows.filter((r) => r.pxname === 'pg.acme.primary').reduce((n, r) => n + r.qcur, 0);
}

beforeAll(async () => {
  server = await startPostgres({ name: 'acme', port: ports.pg[0] });
  const file = writeTenantsFile([{ id: 'acme', port: ports.pg[0], ...({ maxconn: 1, maxqueue: MAXQUEUE } as object) }]);
  tmp = file.dir;
  state = join(tmp, 'state');
  up = await startUp(ports, file.file, state);
}, 120_000);

afterAll(async () => {
  await up?.stop('SIGINT', 10_000);
  await stopAll();
  await server?.stop();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

describe('maxqueue: connections beyond the queue limit are refused with 53300', () => {
  it('one session holds the slot, two wait, the next is refused at once; the waiting ones are served when the slot frees', async () => {
    const holder = client();
    await holder.connect();
    expect((await holder.query<{ c: string }>("SELECT current_setting('cluster_name') AS c")).rows[0]?.c).toBe('acme');

    const waiting = Array.from({ length: MAXQUEUE }, () => client());
    const connected = waiting.map((c) => c.connect().then(() => 'connected', (err: Error & { code?: string }) => `failed ${err.code ?? ''} ${err.message}`));
    await waitFor(async () => ((await queued()) === MAXQUEUE ? true : undefined), { timeoutMs: 5_000, intervalMs: 20, what: `${MAXQUEUE} connections queued for acme` });

    // Beyond the limit: refused well before `timeout queue` (10 s), with the error users read.
    const t = Date.now();
    const refused = client();
    const err = await refused.connect().then(
      () => undefined,
      (e: Error & { code?: string }) => e,
    );
    expect(err?.code).toBe('53300');
    expect(err?.message).toBe('too many connections waiting for tenant "acme", target "primary" (at most 2 wait for a server slot)');
    expect(Date.now() - t).toBeLessThan(5_000);
    const p = await psqlRouted('acme');
    expect(p.ok).toBe(false);
    expect(p.text).toContain('FATAL:  too many connections waiting for tenant "acme", target "primary" (at most 2 wait for a server slot)');
    expect(p.text).toContain("HINT:  Retry in a moment; the tenant's servers are at their connection limit (maxconn).");
    // Refusing did not disturb the queue.
    expect(await queued()).toBe(MAXQUEUE);
    // Counted like the other policy refusals: the metric and `pgroute status`.
    const metrics = await (await fetch(`http://127.0.0.1:${ports.agentHealth}/metrics`)).text();
    expect(metrics).toMatch(/^pgroute_tenant_policy_refusals_total\{tenant="acme",limit="queue"\} 2$/m);
    const status = await runCliOnce(['status', '--json', '--state-dir', state]);
    const acme = (JSON.parse(status.stdout) as { tenants: { id: string; policy?: { counters?: { refusedQueue?: number } } }[] }).tenants.find((t) => t.id === 'acme');
    expect(acme?.policy?.counters?.refusedQueue).toBe(2);
    expect((await runCliOnce(['status', '--state-dir', state])).stdout).toMatch(/^acme\s+any\s.*\s0\/0\/0\/2$/m);

    // The slot frees: the waiting connections are served one after the other.
    await holder.end();
    // Whichever waited first gets the slot; the other gets it when that one ends.
    const pending = new Map(waiting.map((c, i) => [i, connected[i]?.then((outcome) => ({ i, outcome }))]));
    while (pending.size > 0) {
      const next = await Promise.race(pending.values());
      if (next === undefined) break;
      pending.delete(next.i);
      expect(next.outcome).toBe('connected');
      const c = waiting[next.i] as pg.Client;
      expect((await c.query<{ c: string }>("SELECT current_setting('cluster_name') AS c")).rows[0]?.c).toBe('acme');
      await c.end();
    }
    expect(await psqlRouted('acme')).toEqual({ ok: true, text: 'acme' });
  });
});
