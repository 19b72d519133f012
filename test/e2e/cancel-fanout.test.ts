// A cancel reaches its query whichever tenants its client address reached meanwhile: real HAProxy
// and agent (`pgroute up`), two real PostgreSQL servers, sessions bound to distinct loopback
// addresses, psql's own Ctrl-C, and raw packets for forged cancels.

import { rmSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeCancelRequest } from '../../agent/src/pg/frontend.js';
import { CANCELLED, cancelFrom, sessionFrom } from '../support/cancel.js';
import { portBlock } from '../support/ports.js';
import { startPostgresMany, type PgServer } from '../support/postgres.js';
import { startUp, writeTenantsFile } from '../support/pgroute.js';
import { spawnLogged, stopAll, waitFor, type ProcessHandle } from '../support/process.js';
import { pgQuery, PSQL_BIN } from '../support/psql.js';
import { errorResponseOf, exchange } from '../support/wire.js';

const ports = portBlock(105);
const TENANTS = ['acme', 'globex'] as const;
let servers: PgServer[] = [];
let up: ProcessHandle;
let tmp: string;

function server(id: (typeof TENANTS)[number]): PgServer {
  const s = servers[TENANTS.indexOf(id)];
  if (!s) throw new Error(`no server for ${id}`);
  return s;
}

/** Resolves once `query` runs (state active) on the tenant's server. */
function running(id: (typeof TENANTS)[number], query: string): Promise<true> {
  return waitFor(
    async () => (await pgQuery<{ n: string }>(server(id).connectionString('postgres'), `SELECT count(*) AS n FROM pg_stat_activity WHERE query = '${query}' AND state = 'active'`))[0]?.n === '1',
    { timeoutMs: 10_000, what: `${query} running on ${id}` },
  );
}

beforeAll(async () => {
  servers = await startPostgresMany(TENANTS.map((name, i) => ({ name, port: ports.pg[i] as number })));
  const file = writeTenantsFile(TENANTS.map((id) => ({ id, port: server(id).port })));
  tmp = file.dir;
  up = await startUp(ports, file.file, `${tmp}/state`);
});

afterAll(async () => {
  await up?.stop('SIGINT', 10_000);
  await stopAll();
  for (const s of servers) await s.stop();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

describe('one client address with sessions to two tenants', () => {
  it("psql's Ctrl-C on acme stops its query after the same host connected to globex", async () => {
    const sleeper = spawnLogged(PSQL_BIN, ['-X', '-h', '127.0.0.1', '-p', String(ports.haproxy), '-U', 'app', '-d', 'acme', '-c', 'SELECT pg_sleep(10)'], {
      name: 'psql-acme',
      processGroup: false,
      env: { PGPASSWORD: 'app' },
    });
    await running('acme', 'SELECT pg_sleep(10)');
    const other = spawnLogged(PSQL_BIN, ['-X', '-h', '127.0.0.1', '-p', String(ports.haproxy), '-U', 'app', '-d', 'globex', '-c', 'SELECT pg_sleep(11)'], {
      name: 'psql-globex',
      processGroup: false,
      env: { PGPASSWORD: 'app' },
    });
    try {
      await running('globex', 'SELECT pg_sleep(11)');
      const started = Date.now();
      sleeper.child.kill('SIGINT');
      const exit = await sleeper.exited;
      expect(sleeper.output()).toMatch(CANCELLED);
      expect(exit.code).not.toBe(0);
      expect(Date.now() - started).toBeLessThan(5_000);
    } finally {
      other.child.kill('SIGINT');
      await other.exited;
    }
  });

  it('a cancel from the address reaches each of its sessions, the older one included', async () => {
    const at = '127.0.0.21';
    const acme = await sessionFrom(at, ports.haproxy, 'acme');
    const globex = await sessionFrom(at, ports.haproxy, 'globex');
    try {
      const onAcme = acme.sleep(10);
      await running('acme', 'SELECT pg_sleep(10)');
      await cancelFrom(at, ports.haproxy, acme);
      expect(await onAcme).toMatch(CANCELLED);
      const onGlobex = globex.sleep(10);
      await running('globex', 'SELECT pg_sleep(10)');
      await cancelFrom(at, ports.haproxy, globex);
      expect(await onGlobex).toMatch(CANCELLED);
    } finally {
      await acme.end();
      await globex.end();
    }
  });
});

describe('refused and routed nowhere', () => {
  it('a cancel from an address with no record, a malformed one and a forged key leave the query running', async () => {
    const at = '127.0.0.22';
    const acme = await sessionFrom(at, ports.haproxy, 'acme');
    try {
      const onAcme = acme.sleep(3);
      await running('acme', 'SELECT pg_sleep(3)');
      // The right key from an address that was never routed: refused with a PostgreSQL error.
      const stranger = await cancelFrom('127.0.0.23', ports.haproxy, acme);
      expect(stranger.closedByServer).toBe(true);
      expect(errorResponseOf(stranger.received).sqlstate).toBe('08004');
      // A CancelRequest without a key: malformed.
      const short = Buffer.from('0000000c04d2162e00000001', 'hex');
      const malformed = await exchange(ports.haproxy, [short], { localAddress: at, timeoutMs: 5_000 });
      expect(errorResponseOf(malformed.received).sqlstate).toBe('08P01');
      // A forged key from the right address reaches the server, which ignores it.
      await exchange(ports.haproxy, [encodeCancelRequest(acme.pid, Buffer.from([1, 2, 3, 4]))], { localAddress: at, timeoutMs: 5_000 });
      expect(await onAcme).toBe('finished');
    } finally {
      await acme.end();
    }
  });
});
