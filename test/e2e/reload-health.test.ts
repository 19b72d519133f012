// A reload must not make a healthy tenant one failed check away from refusal. A new HAProxy worker
// starts every server "UP, but down at the first failure"; on a loaded machine that one failure
// (a check that times out) refused healthy tenants with 57P03 right after reloads. pgroute hands
// the servers' state to the new worker (server-state-file), so it takes `fall` failures in a row.

import { once } from 'node:events';
import { spawn, type ChildProcess } from 'node:child_process';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { rmSync, writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { showProc } from '../../generator/src/haproxy/reload.js';
import { portBlock } from '../support/ports.js';
import { PG_BIN, startPostgres, type PgServer } from '../support/postgres.js';
import { startUp, writeTenantsFile } from '../support/pgroute.js';
import { sleep, spawnLogged, stopAll, waitFor, type ProcessHandle } from '../support/process.js';
import { psql } from '../support/psql.js';

const ports = portBlock(46);
const CHECK_USER = 'pgroute_check';
const SPARE = ports.spare[0] as number;
let server: PgServer;
let dir: string;
let file: string;
let state: string;
let up: ProcessHandle | undefined;

/**
 * Between HAProxy and PostgreSQL: passes every connection through, except that it fails (closes
 * unanswered) the next `failChecks` health checks, recognised by their user name.
 */
class CheckBreaker {
  failChecks = 0;
  failed = 0;
  readonly server: Server;
  readonly #sockets = new Set<Socket>();

  constructor(target: number) {
    this.server = createServer((client) => {
      this.#sockets.add(client);
      client.on('close', () => this.#sockets.delete(client));
      client.on('error', () => client.destroy());
      client.once('data', (first: Buffer) => {
        if (first.includes(Buffer.from(`user\0${CHECK_USER}\0`)) && this.failChecks > 0) {
          this.failChecks--;
          this.failed++;
          client.destroy();
          return;
        }
        const upstream = createConnection(target, '127.0.0.1');
        this.#sockets.add(upstream);
        upstream.on('close', () => this.#sockets.delete(upstream));
        upstream.on('error', () => client.destroy());
        client.on('close', () => upstream.destroy());
        upstream.on('close', () => client.destroy());
        upstream.write(first);
        client.pipe(upstream);
        upstream.pipe(client);
      });
    });
  }

  async close(): Promise<void> {
    for (const s of this.#sockets) s.destroy();
    await new Promise((r) => this.server.close(r));
  }
}

let breaker: CheckBreaker;

function writeTenants(secondListener: boolean): void {
  const listeners = [{ port: ports.haproxy, address: '127.0.0.1' }, ...(secondListener ? [{ port: ports.haproxyAlt, address: '127.0.0.1' }] : [])];
  const doc = { listeners, tenants: [{ id: 'steady', host: '127.0.0.1', port: SPARE, check: { kind: 'pgsql', user: CHECK_USER } }] };
  writeFileSync(`${file}.tmp`, JSON.stringify(doc));
  rmSync(file, { force: true });
  writeFileSync(file, JSON.stringify(doc));
}

async function clusterName(): Promise<string> {
  const r = await psql({ port: ports.haproxy, user: 'app', db: 'postgres', options: '-c pgroute.tenant=steady', command: 'SHOW cluster_name', timeoutMs: 5_000 });
  return r.code === 0 ? r.stdout.trim() : `error: ${r.stderr.trim()}`;
}

async function reloadNow(secondListener: boolean): Promise<void> {
  const before = (await showProc(`${state}/haproxy-master.sock`)).reloads;
  writeTenants(secondListener);
  await waitFor(async () => (await showProc(`${state}/haproxy-master.sock`)).reloads > before, { timeoutMs: 15_000, intervalMs: 20, what: 'the reload' });
}

beforeAll(async () => {
  server = await startPostgres({ name: 'steady', port: ports.pg[0] });
  await psql({ port: server.port, user: 'postgres', command: `CREATE ROLE ${CHECK_USER} LOGIN` });
  breaker = new CheckBreaker(server.port);
  breaker.server.listen(SPARE, '127.0.0.1');
  await once(breaker.server, 'listening');
  ({ dir, file } = writeTenantsFile([]));
  state = `${dir}/state`;
  writeTenants(false);
  // Checks every 10 s: a new worker's first check comes well after the reload, as on a slow machine.
  up = await startUp(ports, file, state, ['--check-interval', '10s']);
  await waitFor(async () => (await clusterName()) === 'steady', { timeoutMs: 10_000, what: 'steady routable' });
});

afterAll(async () => {
  await up?.stop('SIGINT', 15_000);
  await stopAll();
  await breaker?.close();
  await server?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('health across reloads', () => {
  it('one failed check right after a reload does not refuse a healthy tenant', async () => {
    for (const second of [true, false]) {
      // The old worker checks every 10 s; the new one checks as it starts: that check fails.
      const failedBefore = breaker.failed;
      breaker.failChecks = 1;
      await reloadNow(second);
      await waitFor(async () => breaker.failed > failedBefore, { timeoutMs: 25_000, intervalMs: 10, what: 'the first health check after the reload (failed on purpose)' });
      // Right after that single failure: still served.
      expect(await clusterName()).toBe('steady');
      expect(await clusterName()).toBe('steady');
    }
  }, 90_000);

  it('several failed checks in a row still mark the server down (the evidence is heeded)', async () => {
    breaker.failChecks = 1_000;
    try {
      await waitFor(async () => (await clusterName()).includes('57P03') || (await clusterName()).includes('not available'), { timeoutMs: 30_000, intervalMs: 200, what: 'steady refused as unavailable' });
    } finally {
      breaker.failChecks = 0;
    }
    await waitFor(async () => (await clusterName()) === 'steady', { timeoutMs: 30_000, intervalMs: 200, what: 'steady back once checks pass' });
  }, 90_000);
});

describe('under CPU pressure on every core', () => {
  it('pgbench through 6 reloads while busy loops hog both cores: no failed transaction, no refused connection', async () => {
    const hogs: ChildProcess[] = [0, 1].map(() => spawn(process.execPath, ['-e', 'for (;;) {}'], { stdio: 'ignore' }));
    writeFileSync(`${dir}/select.sql`, 'SELECT 1;\n');
    const bench = spawnLogged(`${PG_BIN}/pgbench`, ['-h', '127.0.0.1', '-p', String(ports.haproxy), '-U', 'app', '-C', '-c', '4', '-T', '20', '-n', '-f', `${dir}/select.sql`, '--max-tries=1', 'postgres'], {
      name: 'pgbench',
      env: { PGOPTIONS: '-c pgroute.tenant=steady' },
    });
    try {
      for (let i = 0; i < 6; i++) {
        await reloadNow(i % 2 === 0);
        await sleep(1_500);
      }
      const exit = await bench.exited;
      const out = bench.output();
      expect(exit.code, out).toBe(0);
      expect(out).toMatch(/number of failed transactions: 0 /);
      expect(out).not.toMatch(/FATAL|connection .* failed/);
    } finally {
      for (const h of hogs) h.kill('SIGKILL');
      await bench.stop();
    }
  }, 120_000);
});
