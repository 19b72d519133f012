// The data path end to end: real HAProxy and agent (`pgroute up`), three real PostgreSQL servers,
// real clients (psql, node-postgres) and raw sockets for what no real client sends.

import { rmSync } from 'node:fs';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeCancelRequest, encodeStartupMessage } from '../../agent/src/pg/frontend.js';
import { haproxyCli, statePaths } from '../../generator/src/index.js';
import { portBlock } from '../support/ports.js';
import { startPostgresMany, type PgServer } from '../support/postgres.js';
import { startUp, writeTenantsFile } from '../support/pgroute.js';
import { sleep, spawnLogged, stopAll, waitFor, type ProcessHandle } from '../support/process.js';
import { pgQuery, psql, PSQL_BIN } from '../support/psql.js';
import { errorResponseOf, exchange, messageTypes } from '../support/wire.js';

const ports = portBlock(1);
const TENANTS = ['acme', 'globex', 'initech'] as const;
// Above the agent's 2 s budget (--agent-timeout, given: its default would be half of this), so that
// a slow verdict is measured by that budget; the startup timeout itself is what 'half a packet,
// then silence' waits out.
const STARTUP_TIMEOUT_MS = 3_000;
/** "Refused at once": well before the startup timeout, which a wrong rule would wait out. */
const AT_ONCE_MS = 750;
let servers: PgServer[] = [];
let up: ProcessHandle;
let tmp: string;

function server(id: (typeof TENANTS)[number]): PgServer {
  const s = servers[TENANTS.indexOf(id)];
  if (!s) throw new Error(`no server for ${id}`);
  return s;
}

beforeAll(async () => {
  servers = await startPostgresMany(TENANTS.map((name, i) => ({ name, port: ports.pg[i] as number })));
  const file = writeTenantsFile([
    ...TENANTS.map((id) => ({ id, port: server(id).port })),
    { id: 'umbrella', port: server('acme').port, enabled: false },
    // Nothing listens there: its health checks fail.
    { id: 'offline', port: ports.pg[9] as number },
  ]);
  tmp = file.dir;
  up = await startUp(ports, file.file, `${tmp}/state`, ['--startup-timeout', `${STARTUP_TIMEOUT_MS}ms`, '--agent-timeout', '2s']);
});

afterAll(async () => {
  await up?.stop('SIGINT', 10_000);
  await stopAll();
  for (const s of servers) await s.stop();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

const proxy = { host: '127.0.0.1', port: ports.haproxy };

describe('each tenant lands on its own server', () => {
  for (const sslmode of ['disable', 'prefer'] as const) {
    it(`psql sslmode=${sslmode}`, async () => {
      for (const id of TENANTS) {
        const r = await psql({ ...proxy, user: 'app', db: id, sslmode, command: 'SHOW cluster_name' });
        expect(r.stderr).toBe('');
        expect(r.stdout.trim()).toBe(id);
      }
    });
  }

  it('psql with default settings (no sslmode given: libpq sends SSLRequest first and gets N)', async () => {
    const r = await psql({ ...proxy, user: 'app', db: 'globex', command: 'SELECT current_setting(\'cluster_name\'), inet_server_port()' });
    expect(r.stdout.trim()).toBe(`globex|${server('globex').port}`);
  });

  it('node-postgres, 60 connections at once across the tenants, each on its own server', async () => {
    const jobs = Array.from({ length: 60 }, (_, i) => TENANTS[i % TENANTS.length] as (typeof TENANTS)[number]);
    const settled = await Promise.allSettled(
      jobs.map(async (id) => {
        const rows = await pgQuery<{ cluster_name: string }>({ ...proxy, user: 'app', database: id }, 'SHOW cluster_name');
        return [id, rows[0]?.cluster_name] as const;
      }),
    );
    const failed = settled.flatMap((r, i) => (r.status === 'rejected' ? [`${jobs[i]}: ${String(r.reason)}`] : []));
    if (failed.length > 0) {
      // Why, once for the whole burst: HAProxy logs an exchange that ended without a verdict (SPOE:
      // ... st=N, through up's stdout, a moment after the client's error), and its agent backend's
      // row says whether the agent was marked down (check_status, chkdown) or connections to it
      // failed (econ, wretr).
      await up.waitForOutput(/SPOE:/, 3_000).catch(() => undefined);
      const agentStat = await haproxyCli(statePaths(`${tmp}/state`).adminSocket, 'show stat', 2_000).then(
        (csv) => csv.split('\n').filter((l) => l.startsWith('# ') || l.startsWith('pgroute-agent,')).join('\n'),
        (err: unknown) => `show stat failed: ${String(err)}`,
      );
      throw new Error(`${failed.length} of ${jobs.length} failed:\n${failed.join('\n')}\npgroute up's log:\n${up.output(100)}\nthe agent backend (show stat):\n${agentStat}`);
    }
    const results = settled.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
    for (const [asked, got] of results) expect(got).toBe(asked);
  });

  it('options=-c pgroute.tenant=<id> names the tenant; the database is then the real one inside it', async () => {
    const r = await psql({ ...proxy, user: 'app', db: 'postgres', options: '-c pgroute.tenant=initech', command: 'SELECT current_database(), current_setting(\'cluster_name\')' });
    expect(r.stderr).toBe('');
    expect(r.stdout.trim()).toBe('postgres|initech');
  });

  it('a long session stays on its tenant while others come and go', async () => {
    const client = new pg.Client({ ...proxy, user: 'app', database: 'acme' });
    await client.connect();
    try {
      for (let i = 0; i < 5; i++) {
        await pgQuery({ ...proxy, user: 'app', database: 'globex' }, 'SELECT 1');
        const r = await client.query<{ cluster_name: string }>('SHOW cluster_name');
        expect(r.rows[0]?.cluster_name).toBe('acme');
      }
    } finally {
      await client.end();
    }
  });
});

describe('refusals reach the client as PostgreSQL errors', () => {
  it('unknown tenant: FATAL 3D000 naming only what the client sent', async () => {
    const r = await psql({ ...proxy, user: 'app', db: 'nosuch', command: 'SELECT 1' });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('FATAL:  no tenant "nosuch" is served here');
    for (const id of TENANTS) expect(r.stderr).not.toContain(id);
    const err = await pgQuery({ ...proxy, user: 'app', database: 'nosuch' }, 'SELECT 1').catch((e: unknown) => e as pg.DatabaseError);
    expect((err as pg.DatabaseError).code).toBe('3D000');
  });

  it('disabled tenant: the same words as an unknown one, so strangers learn nothing', async () => {
    const disabled = await psql({ ...proxy, user: 'app', db: 'umbrella', command: 'SELECT 1' });
    const unknown = await psql({ ...proxy, user: 'app', db: 'umbrellx', command: 'SELECT 1' });
    expect(disabled.code).not.toBe(0);
    expect(disabled.stderr).toContain('FATAL:  no tenant "umbrella" is served here');
    expect(disabled.stderr.replace('umbrella', 'X')).toBe(unknown.stderr.replace('umbrellx', 'X'));
  });

  it('a tenant whose server is down: FATAL 57P03 saying so, not a connection closed without a word', async () => {
    // Servers start as usable; the health checks take it out within a few seconds.
    await waitFor(async () => (await psql({ ...proxy, user: 'app', db: 'offline', command: 'SELECT 1', timeoutMs: 5_000 })).stderr.includes('not available right now'), {
      timeoutMs: 15_000,
      intervalMs: 200,
      what: 'offline refused as unavailable',
    });
    const err = await pgQuery({ ...proxy, user: 'app', database: 'offline' }, 'SELECT 1').catch((e: unknown) => e as pg.DatabaseError);
    expect((err as pg.DatabaseError).code).toBe('57P03');
    expect((err as pg.DatabaseError).message).toContain("the tenant's database server is not available right now");
    // The others are not affected.
    expect((await psql({ ...proxy, user: 'app', db: 'acme', command: 'SHOW cluster_name' })).stdout.trim()).toBe('acme');
  });

  it('oversized length: refused at once with 08P01, even with only its 4 length bytes sent', async () => {
    // Over HAProxy's 16384-byte buffer, and under it but over the limit (10000): there the whole
    // packet could still come, so a rule waiting for it would wait. With 4 bytes, no later rule may
    // wait for the 8 bytes that tell a CancelRequest or an SSLRequest either.
    const heads = [20_000, 12_000].map((length) => {
      const head = Buffer.alloc(8);
      head.writeUInt32BE(length, 0);
      head.writeUInt32BE(0x00030000, 4);
      return head;
    });
    for (const bytes of heads.flatMap((head) => [head, head.subarray(0, 4)])) {
      const r = await exchange(ports.haproxy, [bytes], { timeoutMs: 5_000 });
      expect(r.closedByServer).toBe(true);
      expect(r.msAfterLastWrite).toBeLessThan(AT_ONCE_MS);
      const e = errorResponseOf(r.received);
      expect(e.sqlstate).toBe('08P01');
      expect(e.message).toMatch(/invalid length of startup packet/);
    }
  });

  it('garbage (an HTTP request) and TLS-first bytes: refused at once', async () => {
    for (const bytes of [Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'), Buffer.from('160301020001000200', 'hex')]) {
      const r = await exchange(ports.haproxy, [bytes], { timeoutMs: 5_000 });
      expect(r.msAfterLastWrite).toBeLessThan(AT_ONCE_MS);
      expect(errorResponseOf(r.received).sqlstate).toBe('08P01');
    }
  });

  it('truncated packet followed by EOF: refused at once', async () => {
    const packet = encodeStartupMessage({ user: 'app', database: 'acme' });
    const r = await exchange(ports.haproxy, [packet.subarray(0, packet.length - 6)], { halfClose: true, timeoutMs: 5_000 });
    expect(r.msAfterLastWrite).toBeLessThan(AT_ONCE_MS);
    // Not only "within the startup timeout": the client ended it at once.
    expect(errorResponseOf(r.received).message).toBe(`incomplete startup packet: the whole packet did not arrive within ${STARTUP_TIMEOUT_MS}ms, or the client closed its side first`);
  });

  it('a well-framed but malformed packet (no user): the agent refuses it with 08P01', async () => {
    const r = await exchange(ports.haproxy, [encodeStartupMessage({ database: 'acme' })], { timeoutMs: 5_000 });
    const e = errorResponseOf(r.received);
    expect(e.sqlstate).toBe('08P01');
    expect(e.severity).toBe('FATAL');
  });

  it('half a packet, then silence: closed after the startup timeout with a clear error', async () => {
    const packet = encodeStartupMessage({ user: 'app', database: 'acme' });
    const r = await exchange(ports.haproxy, [packet.subarray(0, 10)], { timeoutMs: STARTUP_TIMEOUT_MS * 4 });
    expect(r.closedByServer).toBe(true);
    expect(r.msAfterLastWrite).toBeGreaterThanOrEqual(STARTUP_TIMEOUT_MS - 100);
    expect(r.msAfterLastWrite).toBeLessThan(STARTUP_TIMEOUT_MS + 1_500);
    expect(errorResponseOf(r.received).message).toMatch(/incomplete startup packet/);
  });
});

describe('the wait for the whole packet', () => {
  it('a startup packet split 5 bytes + rest, 300 ms apart, routes', async () => {
    const packet = encodeStartupMessage({ user: 'app', database: 'globex' });
    const r = await exchange(ports.haproxy, [packet.subarray(0, 5), packet.subarray(5)], { gapMs: 300, timeoutMs: 5_000, untilBytes: 1 });
    // trust auth: AuthenticationOk ... ReadyForQuery arrive from globex's server.
    expect(r.received[0]).toBe('R'.charCodeAt(0));
  });

  it('byte by byte with gaps, then a query answered by the right server', async () => {
    const packet = encodeStartupMessage({ user: 'app', database: 'initech', application_name: 'split' });
    const chunks = [...packet].map((b) => Buffer.from([b]));
    const r = await exchange(ports.haproxy, chunks, { gapMs: 5, timeoutMs: 8_000, untilBytes: 1 });
    expect(messageTypes(r.received)[0]).toBe('R');
  });
});

describe('negotiation requests in clear text (no TLS configured)', () => {
  const SSL = Buffer.from('0000000804d2162f', 'hex');
  const GSS = Buffer.from('0000000804d21630', 'hex');

  it("GSSENCRequest, then SSLRequest, each after its answer, then the startup: 'N', 'N', and routed (libpq with a Kerberos ticket)", async () => {
    const startup = encodeStartupMessage({ user: 'app', database: 'globex' });
    const r = await exchange(ports.haproxy, [GSS, SSL, startup], { gapMs: 200, timeoutMs: 8_000, untilBytes: 3 });
    expect(r.received.subarray(0, 2).toString('latin1')).toBe('NN');
    expect(r.received[2]).toBe('R'.charCodeAt(0));
  });

  // PostgreSQL refuses bytes sent after a negotiation request before its answer (CVE-2021-23214);
  // so does pgroute, with PostgreSQL's words, whatever the bytes are (a length of 2 GB here was
  // refused as an incomplete packet "within the startup timeout", at once).
  for (const [kind, request, words] of [
    ['SSLRequest', SSL, 'received unencrypted data after SSL request'],
    ['GSSENCRequest', GSS, 'received unencrypted data after GSSAPI encryption request'],
  ] as const) {
    for (const after of [encodeStartupMessage({ user: 'app', database: 'globex' }), Buffer.from('7fffffff', 'hex')]) {
      it(`${kind} + ${after.length} more bytes in one write: 08P01 "${words}", never an 'N' and a routed startup`, async () => {
        const r = await exchange(ports.haproxy, [Buffer.concat([request, after])], { timeoutMs: 5_000 });
        expect(r.msAfterLastWrite).toBeLessThan(AT_ONCE_MS);
        const e = errorResponseOf(r.received);
        expect([e.sqlstate, e.message]).toEqual(['08P01', words]);
      });
    }
  }
});

describe('cancel', () => {
  it("psql's Ctrl-C cancels the running query on the tenant's server", async () => {
    const args = ['-X', '-h', '127.0.0.1', '-p', String(ports.haproxy), '-U', 'app', '-d', 'globex', '-c', 'SELECT pg_sleep(30)'];
    const p = spawnLogged(PSQL_BIN, args, { name: 'psql-sleep', processGroup: false });
    await waitFor(
      async () => (await pgQuery<{ n: string }>(server('globex').connectionString('postgres'), "SELECT count(*) AS n FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(30)' AND state = 'active'"))[0]?.n === '1',
      { timeoutMs: 10_000, what: 'the sleeping query on globex' },
    );
    const started = Date.now();
    p.child.kill('SIGINT');
    const exit = await p.exited;
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(exit.code).not.toBe(0);
    expect(p.output()).toContain('canceling statement due to user request');
  });

  it('a cancel is only ever sent to a backend its client address was routed to', async () => {
    // A session on acme from 127.0.0.1 ...
    const client = new pg.Client({ ...proxy, user: 'app', database: 'acme' });
    await client.connect();
    try {
      const pid = (client as unknown as { processID: number }).processID;
      const secret = (client as unknown as { secretKey: number }).secretKey;
      const key = Buffer.alloc(4);
      key.writeInt32BE(secret, 0);
      const running = client.query('SELECT pg_sleep(3) AS slept').then(
        () => 'finished',
        (e: Error) => e.message,
      );
      await sleep(300);
      // ... is not cancelled by a cancel from an address that was never routed anywhere.
      const stranger = await exchange(ports.haproxy, [encodeCancelRequest(pid, key)], { localAddress: '127.0.0.2', timeoutMs: 3_000 });
      expect(stranger.closedByServer).toBe(true);
      expect(await running).toBe('finished');
      // From its own address, the same cancel reaches acme's server and stops the query.
      const again = client.query('SELECT pg_sleep(10)').then(
        () => 'finished',
        (e: Error) => e.message,
      );
      await sleep(300);
      await exchange(ports.haproxy, [encodeCancelRequest(pid, key)], { timeoutMs: 3_000 });
      expect(await again).toMatch(/canceling statement due to user request/);
    } finally {
      await client.end();
    }
  });
});
