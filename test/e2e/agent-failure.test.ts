// HAProxy and the agent as separate processes (`pgroute generate` + haproxy + `pgroute agent`), the
// memo off (with it on: memo-agent-down.test.ts): with the agent gone, HAProxy fails closed with a
// clear error; when it returns, routing resumes without touching HAProxy; sessions already open
// never notice.

import { rmSync } from 'node:fs';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { portBlock } from '../support/ports.js';
import { startPostgresMany, type PgServer } from '../support/postgres.js';
import { startApart, writeTenantsFile, type Apart } from '../support/pgroute.js';
import { stopAll, waitFor } from '../support/process.js';
import { pgQuery, psql } from '../support/psql.js';

const ports = portBlock(2);
const AGENT_TIMEOUT_MS = 500;
let servers: PgServer[] = [];
let apart: Apart;
let tmp: string;

const proxy = { host: '127.0.0.1', port: ports.haproxy, user: 'app' };

beforeAll(async () => {
  servers = await startPostgresMany([{ name: 'alpha', port: ports.pg[0] as number }, { name: 'beta', port: ports.pg[1] as number }]);
  const file = writeTenantsFile(servers.map((s) => ({ id: s.name, port: s.port })));
  tmp = file.dir;
  apart = await startApart(ports, file.file, `${tmp}/state`, { generate: ['--agent-timeout', `${AGENT_TIMEOUT_MS}ms`, '--memo', 'off'] });
  await waitFor(async () => (await psql({ ...proxy, db: 'alpha', command: 'SELECT 1' })).code === 0, { timeoutMs: 10_000, what: 'first routed connection' });
});

afterAll(async () => {
  await stopAll();
  for (const s of servers) await s.stop();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

describe('agent down and back', () => {
  it('fails closed within the processing timeout, keeps open sessions, and resumes without a HAProxy restart', async () => {
    const haproxyPid = apart.haproxy.pid;
    // A decided connection writes no SPOE log line (only failed exchanges do, below).
    expect(apart.haproxy.output()).not.toContain('SPOE:');
    const session = new pg.Client({ ...proxy, database: 'beta' });
    await session.connect();
    try {
      await apart.agent.stop('SIGTERM');

      // New connections: a clear PostgreSQL error, quickly, and never routed anywhere.
      for (let i = 0; i < 3; i++) {
        const started = Date.now();
        const r = await psql({ ...proxy, db: 'alpha', command: 'SELECT 1' });
        expect(r.code).not.toBe(0);
        expect(r.stderr).toContain('FATAL:  the pgroute routing agent is not available');
        expect(Date.now() - started).toBeLessThan(AGENT_TIMEOUT_MS + 1_500);
      }
      const err = await pgQuery({ ...proxy, database: 'alpha' }, 'SELECT 1').catch((e: unknown) => e as pg.DatabaseError);
      expect((err as pg.DatabaseError).code).toBe('57P03');
      // The agent never saw these connections: HAProxy's log says why each was refused (st: the
      // SPOE status, non-zero), which the default `--log errors` keeps.
      expect(apart.haproxy.output()).toMatch(/SPOE: \[pgroute-agent\] <GROUP:pgroute-startup> sid=\d+ st=[1-9]\d*/);

      // The session opened before the agent stopped does not notice.
      const during = await session.query<{ cluster_name: string }>('SHOW cluster_name');
      expect(during.rows[0]?.cluster_name).toBe('beta');

      await apart.startAgent();
      await waitFor(async () => (await psql({ ...proxy, db: 'alpha', command: 'SHOW cluster_name' })).stdout.trim() === 'alpha', {
        timeoutMs: 10_000,
        intervalMs: 200,
        what: 'routing to resume after the agent restart',
      });
      expect(apart.haproxy.running()).toBe(true);
      expect(apart.haproxy.pid).toBe(haproxyPid);
      const after = await session.query<{ cluster_name: string }>('SHOW cluster_name');
      expect(after.rows[0]?.cluster_name).toBe('beta');
    } finally {
      await session.end();
    }
  });

  it('while the agent is down, not one connection reaches a tenant', async () => {
    await apart.agent.stop('SIGTERM');
    const before = await pgQuery<{ n: string }>(servers[0]?.connectionString('postgres') ?? '', "SELECT count(*) AS n FROM pg_stat_activity WHERE usename = 'app'");
    const results = await Promise.all(Array.from({ length: 20 }, () => psql({ ...proxy, db: 'alpha', command: 'SELECT 1' })));
    for (const r of results) expect(r.stderr).toContain('routing agent is not available');
    const afterRows = await pgQuery<{ n: string }>(servers[0]?.connectionString('postgres') ?? '', "SELECT count(*) AS n FROM pg_stat_activity WHERE usename = 'app'");
    expect(afterRows[0]?.n).toBe(before[0]?.n);
    await apart.startAgent();
  });
});
