import fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assertPortFree, isPortFree, portBlock, waitForPortFree } from '../support/ports.js';
import { reapStalePostgres, startPostgresMany, type PgServer } from '../support/postgres.js';
import { registeredCleanups, spawnLogged, stopAll, waitFor, waitForPort } from '../support/process.js';
import { pgQuery, psql, psqlOk } from '../support/psql.js';

const ports = portBlock(90);
const NAMES = ['tenant-a', 'tenant-b', 'tenant-c'] as const;

beforeAll(async () => {
  // Servers left behind by a killed earlier run (startPostgres also reaps its own port).
  const reaped = await reapStalePostgres();
  if (reaped.length > 0) console.log(`reaped stale servers: ${reaped.join(', ')}`);
});

afterAll(async () => {
  await stopAll();
});

describe('port blocks', () => {
  it('lays out block 90', () => {
    expect(ports.base).toBe(29000);
    expect(ports.haproxy).toBe(29000);
    expect(ports.agent).toBe(29010);
    expect(ports.pg[0]).toBe(29020);
    expect(ports.pg[9]).toBe(29029);
    expect(ports.spare[0]).toBe(29050);
    expect(ports.spare.length).toBe(50);
    expect(new Set(ports.all()).size).toBe(ports.all().length);
    expect(() => portBlock(127)).toThrow(RangeError);
    expect(portBlock(126).at(99)).toBeLessThan(32768);
  });
});

describe('process helpers', () => {
  it('spawns, captures output, waits for a port and stops with escalation', async () => {
    const port = ports.spare[0]!;
    await assertPortFree(port);
    // A server that ignores SIGTERM, so stop() must escalate to SIGKILL.
    const script = `
      process.on('SIGTERM', () => console.log('ignoring SIGTERM'));
      require('net').createServer().listen(${port}, '127.0.0.1', () => console.log('listening'));
      console.error('to stderr');`;
    const p = spawnLogged(process.execPath, ['-e', script], { name: 'stubborn' });
    await waitForPort(port, '127.0.0.1', 5000, { process: p });
    await p.waitForOutput(/listening/);
    await waitFor(() => p.output().includes('err| to stderr'), { what: 'stderr line' });
    expect(registeredCleanups().some((n) => n.startsWith('process stubborn'))).toBe(true);
    const t0 = Date.now();
    const exit = await p.stop('SIGTERM', 300);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(250);
    expect(exit.signal).toBe('SIGKILL');
    expect(p.output()).toContain('ignoring SIGTERM');
    await waitForPortFree(port);
  });

  it('waitFor names what it waited for', async () => {
    await expect(waitFor(() => false, { timeoutMs: 100, what: 'the impossible' })).rejects.toThrow(
      /timed out after 100 ms waiting for the impossible/,
    );
  });
});

describe('PostgreSQL servers', () => {
  let servers: PgServer[] = [];

  it('starts 3 servers in parallel', async () => {
    for (const p of ports.pg.slice(0, 3)) await assertPortFree(p);
    const t0 = Date.now();
    servers = await startPostgresMany(NAMES.map((name, i) => ({ name, port: ports.pg[i]! })));
    const ms = Date.now() - t0;
    console.log(`started 3 PostgreSQL servers in ${ms} ms (each: ${servers.map((s) => `${s.startMs} ${JSON.stringify(s.startPhases)}`).join(", ")})`);
    expect(servers.map((s) => s.port)).toEqual([ports.pg[0], ports.pg[1], ports.pg[2]]);
  });

  it('reports cluster_name via psql', async () => {
    for (const s of servers) {
      const r = await psql({ port: s.port, user: 'app', db: s.name, command: 'SHOW cluster_name' });
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout.trim()).toBe(s.name);
    }
    // A failing statement gives a non-zero exit code and stderr.
    const bad = await psql({ port: servers[0]!.port, command: 'SELECT * FROM no_such_table' });
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/no_such_table/);
    // Options reach the server.
    const opt = await psqlOk({ port: servers[0]!.port, options: '-c search_path=zzz', command: 'SHOW search_path' });
    expect(opt).toBe('zzz');
  });

  it('reports cluster_name via node-postgres', async () => {
    for (const s of servers) {
      const rows = await pgQuery<{ cluster_name: string }>(s.connectionString(), 'SHOW cluster_name');
      expect(rows[0]?.cluster_name).toBe(s.name);
      const who = await pgQuery<{ u: string; d: string }>(s.connectionConfig(), 'SELECT current_user AS u, current_database() AS d');
      expect(who[0]).toEqual({ u: 'app', d: s.name });
    }
  });

  it('uses its own socket dir and only 127.0.0.1', async () => {
    const s = servers[0]!;
    expect(fs.existsSync(`${s.dataDir}/.s.PGSQL.${s.port}`)).toBe(true);
    const rows = await pgQuery<{ listen_addresses: string }>(s.connectionString('postgres', 'postgres'), 'SHOW listen_addresses');
    expect(rows[0]?.listen_addresses).toBe('127.0.0.1');
    const viaSocket = await psqlOk({ host: s.socketDir, port: s.port, command: 'SELECT 1' });
    expect(viaSocket).toBe('1');
  });

  it('stops them, frees the ports and removes the dirs', async () => {
    await Promise.all(servers.map((s) => s.stop()));
    for (const s of servers) {
      expect(await isPortFree(s.port)).toBe(true);
      expect(fs.existsSync(s.dataDir)).toBe(false);
    }
    await Promise.all(servers.map((s) => s.stop())); // idempotent
    expect(registeredCleanups()).toEqual([]);
  });
});
