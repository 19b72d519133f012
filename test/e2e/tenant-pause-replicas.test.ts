// Pause and resume with two replicas (`pgroute up --name/--peer`, real HAProxy, PostgreSQL 15): a
// pause given to one replica holds the tenant's new connections on both (the replicated access
// switch), the tenant is moved, and a resume given to the OTHER replica releases the connections
// held on both, to the new server.

import { rmSync, writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { haproxyCli } from '../../generator/src/index.js';
import { runCliOnce } from '../support/pgroute.js';
import { portBlock } from '../support/ports.js';
import { startPostgresMany, type PgServer } from '../support/postgres.js';
import { peersConnected, startReplicas, type Replica } from '../support/replicas.js';
import { stopAll, waitFor } from '../support/process.js';

const blocks = [portBlock(27), portBlock(28)];
const OLD = blocks[0]?.pg[0] as number;
const NEW = blocks[0]?.pg[1] as number;
let tmp = '';
let tenantsFile = '';
let servers: PgServer[] = [];
let replicas: Replica[] = [];

function writeTenants(port: number): void {
  writeFileSync(tenantsFile, JSON.stringify({ tenants: [{ id: 'acme', host: '127.0.0.1', port }] }, null, 2));
}

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'pgroute-pause-replicas-'));
  tenantsFile = join(tmp, 'tenants.yaml');
  writeTenants(OLD);
  servers = await startPostgresMany([
    { name: 'prold', port: OLD, database: 'acme' },
    { name: 'prnew', port: NEW, database: 'acme' },
  ]);
  replicas = await startReplicas(blocks, blocks.map((b) => b.spare[0] as number), tenantsFile, tmp);
  await peersConnected(replicas);
}, 120_000);

afterAll(async () => {
  for (const r of replicas) await r.process.stop('SIGINT', 10_000);
  await stopAll();
  for (const s of servers) await s.stop();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

async function serverPort(r: Replica): Promise<number> {
  const c = new pg.Client({ host: '127.0.0.1', port: r.ports.haproxy, user: 'app', password: 'app', database: 'acme', connectionTimeoutMillis: 60_000 });
  try {
    await c.connect();
    return Number((await c.query<{ port: number }>('SELECT inet_server_port() AS port')).rows[0]?.port);
  } finally {
    await c.end().catch(() => undefined);
  }
}

async function held(r: Replica): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${r.ports.agentHealth}/metrics`)).text();
  return Number(text.split('\n').find((l) => l.startsWith('pgroute_agent_held_connections '))?.split(' ')[1]);
}

async function cli(r: Replica, ...args: string[]): Promise<string> {
  const run = await runCliOnce([...args, '--state-dir', r.stateDir]);
  if (run.code !== 0) throw new Error(`pgroute ${args.join(' ')} on ${r.name} exited ${run.code}: ${run.stderr}`);
  return run.stdout;
}

describe('pause and resume across replicas', () => {
  it('a pause on one replica holds on both; a resume on the other releases both, to the moved tenant', async () => {
    const [r1, r2] = replicas as [Replica, Replica];
    expect(await serverPort(r1)).toBe(OLD);
    expect(await serverPort(r2)).toBe(OLD);

    expect(await cli(r1, 'tenant', 'pause', 'acme')).toMatch(/paused: .*replicated to peers r2/);
    await waitFor(async () => /"paused": true/.test(await import('node:fs/promises').then((fs) => fs.readFile(join(r2.stateDir, 'routes.json'), 'utf8'))), {
      what: 'r2 to apply the pause it learnt from r1',
      timeoutMs: 10_000,
    });
    const onR1 = [serverPort(r1), serverPort(r1)];
    const onR2 = [serverPort(r2), serverPort(r2)];
    await waitFor(async () => (await held(r1)) === 2 && (await held(r2)) === 2, { what: 'two connections held on each replica', timeoutMs: 10_000, intervalMs: 20 });

    writeTenants(NEW);
    for (const r of replicas) {
      await waitFor(
        async () => {
          const csv = (await haproxyCli(r.adminSocket, 'show stat')).split('\n');
          const header = (csv[0] ?? '').replace(/^# /, '').split(',');
          const row = csv.find((l) => l.startsWith('pg.acme.primary,s1,'))?.split(',') ?? [];
          return row[header.indexOf('addr')] === `127.0.0.1:${NEW}` && row[header.indexOf('status')] === 'UP';
        },
        { what: `${r.name} to serve acme at its new address`, timeoutMs: 20_000 },
      );
    }
    expect(await held(r1)).toBe(2);
    expect(await held(r2)).toBe(2);

    expect(await cli(r2, 'tenant', 'resume', 'acme')).toMatch(/^tenant acme resumed:/);
    expect(await Promise.all([...onR1, ...onR2])).toEqual([NEW, NEW, NEW, NEW]);
    expect(await serverPort(r1)).toBe(NEW);
    expect(await serverPort(r2)).toBe(NEW);
  }, 120_000);
});
