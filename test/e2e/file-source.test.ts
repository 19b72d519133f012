// The tenants file, edited while pgroute runs: additions route within a second without a reload
// (spare backends), removals and disables are refused, moves follow, bad definitions are refused
// without touching the running config, and none of it drops a session or refuses a connection.

import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { statePaths } from '../../generator/src/index.js';
import { portBlock } from '../support/ports.js';
import { startPostgresMany, type PgServer } from '../support/postgres.js';
import { reloadCount, startUp, writeTenantsFile, type TenantSpec } from '../support/pgroute.js';
import { sleep, spawnLogged, stopAll, waitFor, type ProcessHandle } from '../support/process.js';
import { psql } from '../support/psql.js';
import { PG_BIN } from '../support/postgres.js';

const ports = portBlock(4);
let servers: PgServer[] = [];
let up: ProcessHandle;
let dir: string;
let file: string;
let state: string;
const proxy = { host: '127.0.0.1', port: ports.haproxy, user: 'app' };

function server(i: number): PgServer {
  const s = servers[i];
  if (!s) throw new Error(`no server ${i}`);
  return s;
}

function writeTenants(tenants: readonly TenantSpec[], extra: Record<string, unknown> = {}): void {
  writeFileSync(`${file}.tmp`, JSON.stringify({ ...extra, tenants: tenants.map((t) => ({ host: '127.0.0.1', ...t })) }, null, 2));
  // Editors write a new file and rename it over the old one; so do we.
  rmSync(file, { force: true });
  writeFileSync(file, readFileSync(`${file}.tmp`));
}

/** The cluster a connection naming `tenant` lands on (each test server has only its own database,
 * so the tenant is named in options and the database is `postgres`). */
async function clusterOf(tenant: string): Promise<string> {
  const r = await psql({ ...proxy, db: 'postgres', options: `-c pgroute.tenant=${tenant}`, command: 'SHOW cluster_name', timeoutMs: 5_000 });
  return r.code === 0 ? r.stdout.trim() : `error: ${r.stderr.trim()}`;
}

beforeAll(async () => {
  servers = await startPostgresMany(['one', 'two', 'three'].map((name, i) => ({ name, port: ports.pg[i] as number })));
  ({ dir, file } = writeTenantsFile([{ id: 'stable', port: server(0).port }]));
  state = `${dir}/state`;
  up = await startUp(ports, file, state, ['--spares', '4']);
});

afterAll(async () => {
  await up?.stop('SIGINT', 15_000);
  await stopAll();
  for (const s of servers) await s.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('editing the tenants file while pgroute runs', () => {
  it('a new tenant is routable within a second, without a reload', async () => {
    const before = await reloadCount(statePaths(state).masterSocket);
    writeTenants([{ id: 'stable', port: server(0).port }, { id: 'newbie', port: server(1).port }]);
    const started = Date.now();
    await waitFor(async () => (await clusterOf('newbie')) === 'two', { timeoutMs: 5_000, intervalMs: 50, what: 'newbie routable' });
    expect(Date.now() - started).toBeLessThan(1_000);
    expect(await reloadCount(statePaths(state).masterSocket)).toBe(before);
  });

  it('a moved tenant follows to its new server; its open session stays where it was', async () => {
    const session = new pg.Client({ ...proxy, database: 'postgres', options: '-c pgroute.tenant=newbie' });
    await session.connect();
    try {
      writeTenants([{ id: 'stable', port: server(0).port }, { id: 'newbie', port: server(2).port }]);
      await waitFor(async () => (await clusterOf('newbie')) === 'three', { timeoutMs: 3_000, intervalMs: 50, what: 'newbie moved' });
      const r = await session.query<{ cluster_name: string }>('SHOW cluster_name');
      expect(r.rows[0]?.cluster_name).toBe('two');
    } finally {
      await session.end();
    }
  });

  it('a disabled tenant and a removed tenant are refused; the others carry on', async () => {
    writeTenants([{ id: 'stable', port: server(0).port }, { id: 'newbie', port: server(2).port, enabled: false }]);
    await waitFor(async () => (await clusterOf('newbie')).includes('no tenant "newbie" is served here'), { timeoutMs: 3_000, intervalMs: 50, what: 'newbie disabled' });
    writeTenants([{ id: 'stable', port: server(0).port }]);
    // The removal is applied once the rendered config no longer names the tenant's backend.
    await waitFor(async () => !readFileSync(`${state}/haproxy.cfg`, 'utf8').includes('# tenant newbie,'), { timeoutMs: 3_000, intervalMs: 50, what: 'newbie removed' });
    expect(await clusterOf('newbie')).toContain('no tenant "newbie" is served here');
    expect(await clusterOf('stable')).toBe('one');
  });

  it('a bad definition is refused with its reason; the running config is untouched', async () => {
    const cfgBefore = readFileSync(`${state}/haproxy.cfg`, 'utf8');
    writeTenants([{ id: 'stable', port: server(0).port }, { id: 'bad\nfrontend evil', port: server(1).port }, { id: 'fine', port: 70_000 }]);
    await waitFor(async () => up.output().includes('port must be an integer from 1 to 65535, got 70000'), { timeoutMs: 3_000, what: 'the refusal in the log' });
    expect(up.output()).toMatch(/tenant id .*is invalid/);
    expect(readFileSync(`${state}/haproxy.cfg`, 'utf8')).toBe(cfgBefore);
    expect(await clusterOf('stable')).toBe('one');
  });

  it('a file that stops parsing keeps the last good tenants', async () => {
    writeFileSync(file, 'tenants: [ {');
    await waitFor(async () => up.output().includes('tenants file unusable'), { timeoutMs: 3_000, what: 'the parse error in the log' });
    expect(await clusterOf('stable')).toBe('one');
  });

  it('an empty file (a program that truncates before it writes, caught in between) keeps the last good tenants', async () => {
    writeFileSync(file, '');
    await waitFor(async () => up.output().includes(`tenants file ${file} is empty (being written?); to remove every tenant, write \\"tenants: []\\"`), { timeoutMs: 3_000, what: 'the empty file in the log' });
    expect(await clusterOf('stable')).toBe('one');
  });
});

describe('under load', () => {
  it('100 changes, 20 of them forcing a reload: no failed transaction, no refused connection, old sessions alive', async () => {
    writeTenants([{ id: 'stable', port: server(0).port }]);
    await waitFor(async () => (await clusterOf('stable')) === 'one', { timeoutMs: 3_000, what: 'baseline' });
    const keep = new pg.Client({ ...proxy, database: 'postgres', options: '-c pgroute.tenant=stable' });
    await keep.connect();
    // pgbench opens a new connection per transaction (-C): every connection goes through the router.
    writeFileSync(`${dir}/select.sql`, 'SELECT 1;\n');
    const bench = spawnLogged(`${PG_BIN}/pgbench`, ['-h', '127.0.0.1', '-p', String(ports.haproxy), '-U', 'app', '-C', '-c', '4', '-T', '40', '-n', '-f', `${dir}/select.sql`, '--max-tries=1', 'postgres'], {
      name: 'pgbench',
      env: { PGOPTIONS: '-c pgroute.tenant=stable' },
    });
    const reloadsBefore = await reloadCount(statePaths(state).masterSocket);
    try {
      let twoListeners = false;
      for (let i = 0; i < 100; i++) {
        const tenants: TenantSpec[] = [{ id: 'stable', port: server(0).port }];
        // Churn: tenants come, move, get disabled and go.
        for (let t = 0; t < 3; t++) if ((i + t) % 4 !== 0) tenants.push({ id: `churn${t}`, port: server((i + t) % 3).port, enabled: (i + t) % 5 !== 0 });
        // Every fifth change adds or removes a second public port: that needs a reload.
        if (i % 5 === 4) twoListeners = !twoListeners;
        const listeners = [{ port: ports.haproxy, address: '127.0.0.1' }, ...(twoListeners ? [{ port: ports.haproxyAlt, address: '127.0.0.1' }] : [])];
        if (i % 5 === 4) {
          // Wait for this one's reload, so that a slow machine cannot fold two listener toggles
          // into one snapshot (and so into no reload at all).
          const before = await reloadCount(statePaths(state).masterSocket);
          writeTenants(tenants, { listeners });
          await waitFor(async () => (await reloadCount(statePaths(state).masterSocket)) > before, { timeoutMs: 10_000, intervalMs: 50, what: `reload ${(i + 1) / 5}` });
        } else {
          writeTenants(tenants, { listeners });
          await sleep(250);
        }
      }
      const exit = await bench.exited;
      const out = bench.output();
      expect(exit.code, out).toBe(0);
      expect(out).toMatch(/number of failed transactions: 0 /);
      expect(out).not.toMatch(/connection .* failed|FATAL/);
      const r = await keep.query<{ cluster_name: string }>('SHOW cluster_name');
      expect(r.rows[0]?.cluster_name).toBe('one');
      expect((await reloadCount(statePaths(state).masterSocket)) - reloadsBefore).toBeGreaterThanOrEqual(20);
    } finally {
      await bench.stop();
      await keep.end();
    }
  }, 120_000);
});

