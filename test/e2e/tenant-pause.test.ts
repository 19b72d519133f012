// Pause and resume for a planned move, end to end (`pgroute up --tls auto`, real HAProxy, agent,
// PostgreSQL 15, node-postgres): while a loop of real clients connects over and over, the tenant is
// paused, moved to another PostgreSQL server (the tenants file edited, the generator applies it),
// the old server stopped, and the tenant resumed: no connection fails, and every connection that
// started once the pause held lands on the new server (inet_server_port() on the server side),
// through clear text and TLS. A session open before the pause is left alone. Held beyond
// --pause-timeout: 57P03 with a sentence that says so; over --pause-max-held: 53300 at once.
// PGROUTE_HAPROXY selects another HAProxy (the 3.x roots of scripts/haproxy-versions.sh).

import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { portBlock } from '../support/ports.js';
import type { PgServer } from '../support/postgres.js';
import { agentMetric as agentMetricOf, cliOk, runCliOnce, serverStat, startUpOn, type UpOnServers } from '../support/pgroute.js';
import { stopAll, waitFor, type ProcessHandle } from '../support/process.js';

const ports = portBlock(26);
// Long enough for the move below on a loaded machine (the file applied, the new server checked UP).
const PAUSE_TIMEOUT_MS = 20_000;
const MAX_HELD = 6;
let servers: PgServer[] = [];
let up: ProcessHandle;
let fixture: UpOnServers | undefined;
let tenantsFile: string;
let stateDir: string;

function writeTenants(acmePort: number): void {
  writeFileSync(tenantsFile, JSON.stringify({ tenants: [{ id: 'acme', host: '127.0.0.1', port: acmePort }] }, null, 2));
}

beforeAll(async () => {
  fixture = await startUpOn(
    ports,
    [
      { name: 'pauseold', port: ports.pg[0] as number, database: 'acme' },
      { name: 'pausenew', port: ports.pg[1] as number, database: 'acme' },
    ],
    [{ id: 'acme', port: ports.pg[0] as number }],
    ['--tls', 'auto', '--pause-timeout', `${PAUSE_TIMEOUT_MS}ms`, '--pause-max-held', String(MAX_HELD)],
  );
  ({ servers, up, tenantsFile, stateDir } = fixture);
}, 90_000);

afterAll(async () => {
  await (fixture?.stop() ?? stopAll());
});

function client(tls: boolean): pg.Client {
  return new pg.Client({
    host: '127.0.0.1',
    port: ports.haproxy,
    user: 'app',
    password: 'app',
    database: 'acme',
    ssl: tls ? { rejectUnauthorized: false } : false,
    connectionTimeoutMillis: 60_000,
  });
}

/** One connection: the port of the server it reached; throws the server's error (SQLSTATE in `code`). */
const cli = (...args: string[]): Promise<string> => cliOk(stateDir, ...args);
const agentMetric = (name: string): Promise<number> => agentMetricOf(ports.agentHealth, name);
/** The address and status of the tenant's server, as HAProxy's running worker has them. */
const acmeServer = (): Promise<{ addr: string; status: string }> => serverStat(stateDir, 'pg.acme.primary', 's1');

async function serverPort(tls = false): Promise<number> {
  const c = client(tls);
  try {
    await c.connect();
    const r = await c.query<{ port: number }>('SELECT inet_server_port() AS port');
    return Number(r.rows[0]?.port);
  } finally {
    await c.end().catch(() => undefined);
  }
}




interface Attempt {
  readonly startedAt: number;
  readonly tls: boolean;
  readonly port?: number;
  readonly error?: string;
}

/** `workers` clients connecting in a loop (every 4th connection through TLS) until stopped. */
function connectLoop(workers: number): { attempts: Attempt[]; stop: () => Promise<void> } {
  const attempts: Attempt[] = [];
  let stopped = false;
  const loops = Array.from({ length: workers }, async (_, w) => {
    for (let i = 0; !stopped; i++) {
      const tls = (i + w) % 4 === 0;
      const startedAt = Date.now();
      try {
        attempts.push({ startedAt, tls, port: await serverPort(tls) });
      } catch (err) {
        attempts.push({ startedAt, tls, error: `${(err as { code?: string }).code ?? ''} ${(err as Error).message}` });
      }
    }
  });
  return {
    attempts,
    stop: async () => {
      stopped = true;
      await Promise.all(loops);
    },
  };
}

describe('pgroute tenant pause / resume', () => {
  it('holds new connections during a move and releases them to the new server: 0 failed, open sessions left alone', async () => {
    const oldPort = ports.pg[0] as number;
    const newPort = ports.pg[1] as number;
    expect(await serverPort()).toBe(oldPort);
    const open = client(false);
    await open.connect();

    const load = connectLoop(4);
    await waitFor(() => load.attempts.length >= 20, { what: 'the connect loop to run', timeoutMs: 30_000 });

    expect(await cli('tenant', 'pause', 'acme')).toMatch(/^tenant acme paused: new connections wait/);
    // Held from here on: the agent holds a connection once its table says paused.
    await waitFor(async () => (await agentMetric('pgroute_agent_held_connections')) >= 1, { what: 'a connection to be held', timeoutMs: 10_000, intervalMs: 20 });
    const pausedAt = Date.now();
    // Held for sure, one of each kind: started once the pause holds.
    const heldClear = serverPort(false);
    const heldTls = serverPort(true);

    // The session opened before the pause carries on.
    expect((await open.query<{ port: number }>('SELECT inet_server_port() AS port')).rows[0]?.port).toBe(oldPort);
    await open.end();
    const status = await cli('status');
    expect(status).toMatch(/acme\s.*paused/);

    // The move: the tenant now lives on the other server, the old one goes away.
    writeTenants(newPort);
    await waitFor(async () => {
      const s = await acmeServer();
      return s.addr === `127.0.0.1:${newPort}` && s.status === 'UP';
    }, { what: 'HAProxy to have the new address, up', timeoutMs: 20_000, intervalMs: 50 });
    await servers[0]?.stop();
    const heldBeforeResume = await agentMetric('pgroute_agent_held_connections');

    const resumedAt = Date.now();
    expect(await cli('tenant', 'resume', 'acme')).toMatch(/^tenant acme resumed:/);
    await waitFor(async () => (await agentMetric('pgroute_agent_held_connections')) === 0, { what: 'the held connections to be released', timeoutMs: 10_000, intervalMs: 20 });
    const after = load.attempts.length;
    await waitFor(() => load.attempts.length >= after + 20, { what: 'connections after resume', timeoutMs: 30_000 });
    await load.stop();

    console.log(`pause held from ${pausedAt} to ${resumedAt} (${resumedAt - pausedAt} ms, ${heldBeforeResume} held at resume, ${load.attempts.length} connections in all)`);
    const failed = load.attempts.filter((a) => a.error !== undefined);
    expect(failed, JSON.stringify(failed.slice(0, 3))).toEqual([]);
    const sincePause = load.attempts.filter((a) => a.startedAt >= pausedAt);
    expect(sincePause.filter((a) => a.port !== newPort)).toEqual([]);
    // Held: started before the resume (some before the first hold was seen), served by the new server.
    const held = load.attempts.filter((a) => a.startedAt < resumedAt && a.port === newPort);
    expect(held.length + 2).toBeGreaterThanOrEqual(heldBeforeResume); // + heldClear, heldTls
    expect(await heldClear).toBe(newPort);
    expect(await heldTls).toBe(newPort);
    expect(load.attempts.filter((a) => a.startedAt >= resumedAt).length).toBeGreaterThanOrEqual(20);
    expect(heldBeforeResume).toBeGreaterThanOrEqual(1);
    expect(await agentMetric('pgroute_agent_hold_total{outcome="released"}')).toBeGreaterThanOrEqual(heldBeforeResume);
  }, 120_000);

  it('refuses a connection held beyond --pause-timeout with 57P03, and one over --pause-max-held with 53300', async () => {
    await cli('tenant', 'pause', 'acme');
    await waitFor(async () => /"paused": true/.test(await import('node:fs/promises').then((fs) => fs.readFile(join(stateDir, 'routes.json'), 'utf8'))), { what: 'routes.json to say paused', timeoutMs: 10_000, intervalMs: 20 });

    const t0 = Date.now();
    const timedOut = await serverPort().then(
      () => undefined,
      (err: { code?: string; message: string }) => err,
    );
    const waited = Date.now() - t0;
    expect(timedOut?.code).toBe('57P03');
    expect(timedOut?.message).toBe(`tenant "acme" is paused for maintenance and was not resumed within ${PAUSE_TIMEOUT_MS / 1000}s; try again later`);
    expect(waited).toBeGreaterThanOrEqual(PAUSE_TIMEOUT_MS - 100);

    // MAX_HELD connections wait; the next one is refused at once.
    const held = Array.from({ length: MAX_HELD }, (_, i) => serverPort(i % 2 === 0).then((port) => ({ port }), (err: { code?: string }) => ({ code: err.code })));
    await waitFor(async () => (await agentMetric('pgroute_agent_held_connections')) === MAX_HELD, { what: 'the bound to be reached', timeoutMs: 10_000, intervalMs: 20 });
    const t1 = Date.now();
    const over = await serverPort().then(
      () => undefined,
      (err: { code?: string; message: string }) => err,
    );
    expect(over?.code).toBe('53300');
    expect(over?.message).toBe('too many connections are waiting for paused tenant "acme"; try again later');
    expect(Date.now() - t1).toBeLessThan(PAUSE_TIMEOUT_MS / 2);

    await cli('tenant', 'resume', 'acme');
    expect(await Promise.all(held)).toEqual(Array.from({ length: MAX_HELD }, () => ({ port: ports.pg[1] })));
    expect(await agentMetric('pgroute_agent_hold_total{outcome="timed-out"}')).toBeGreaterThanOrEqual(1);
    expect(await agentMetric('pgroute_agent_hold_total{outcome="queue-full"}')).toBeGreaterThanOrEqual(1);
  }, 120_000);

  it('pause and resume refuse a disabled tenant (exit 2, saying what to do) and change nothing', async () => {
    await cli('tenant', 'disable', 'acme');
    for (const verb of ['pause', 'resume']) {
      const r = await runCliOnce(['tenant', verb, 'acme', '--state-dir', stateDir]);
      expect(r.code).toBe(2);
      expect(r.stderr).toContain('tenant acme is disabled');
      expect(r.stderr).toContain('pgroute tenant enable acme');
    }
    expect(await cli('status')).toMatch(/acme\s+disabled \(access\.json/);
    await cli('tenant', 'enable', 'acme');
  }, 60_000);
});
