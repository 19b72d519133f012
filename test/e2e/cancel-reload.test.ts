// Cancel records across a graceful reload of a peered replica: the new worker learns its own cancel
// table from the old worker (HAProxy's local peer) and then writes the next records into those
// entries; those writes must reach the other replicas like any other. Three `pgroute up` replicas
// peered with --name/--peer, two real PostgreSQL servers, sessions from distinct 127.0.0.x:
// a session routed by r1, r1 reloaded, a session to the other tenant routed by r1 right after the
// reload, its query cancelled through r2 (and the first one's too). Also with a second reload
// within HAProxy's ~3 s hand-over window (the new worker then learns nothing from the old one).
// Ports: portBlock(32..34).

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { reloadMaster } from '../../generator/src/index.js';
import { CANCELLED, cancelFrom, sessionFrom, type AddressedSession } from '../support/cancel.js';
import { portBlock, type PortBlock } from '../support/ports.js';
import { startPostgresMany, type PgServer } from '../support/postgres.js';
import { writeTenantsFile } from '../support/pgroute.js';
import { stopAll, waitFor } from '../support/process.js';
import { pgQuery } from '../support/psql.js';
import { peersConnected, showTable, startReplicas, type Replica } from '../support/replicas.js';

const blocks: readonly PortBlock[] = [portBlock(32), portBlock(33), portBlock(34)];
const TENANTS = ['acme', 'globex'] as const;
let servers: PgServer[] = [];
let replicas: Replica[] = [];
let tmp = '';
let dir = '';
const timings: Record<string, number> = {};

const server = (id: (typeof TENANTS)[number]): PgServer => servers[TENANTS.indexOf(id)] as PgServer;
const r = (i: number): Replica => replicas[i] as Replica;

function running(id: (typeof TENANTS)[number], query: string): Promise<true> {
  return waitFor(
    async () => (await pgQuery<{ n: string }>(server(id).connectionString('postgres'), `SELECT count(*) AS n FROM pg_stat_activity WHERE query = '${query}' AND state = 'active'`))[0]?.n === '1',
    { timeoutMs: 10_000, what: `${query} running on ${id}` },
  );
}

/** The record of `address` in r1's table as replica `on` holds it: gpc0 and the words, or '(none)'. */
async function entryOn(on: Replica, address: string): Promise<string> {
  const line = (await showTable(on, `pgroute-cancels-${r(0).name}`)).split('\n').find((l) => l.includes(`key=::ffff:${address} `));
  return line === undefined ? '(none)' : (line.match(/\b(?:gpc0|gpt\d+)=\d+/g) ?? []).join(' ');
}

/** Resolves once r1's table holds `written` ids for `address`, on r1 and alike on r2 and r3. */
async function recordedEverywhere(address: string, written: number): Promise<void> {
  const view = async (): Promise<string[]> => Promise.all(replicas.map(async (x) => `${x.name}: ${await entryOn(x, address)}`));
  try {
    await waitFor(
      async () => {
        const lines = await view();
        const own = lines[0]!.slice(lines[0]!.indexOf(':'));
        return own.endsWith(` gpc0=${written}`) && lines.every((l) => l.endsWith(own));
      },
      { timeoutMs: 15_000, what: `r1's cancel record of ${address} (${written} ids) on every replica` },
    );
  } catch (err) {
    throw new Error(`${(err as Error).message}; found\n${(await view()).join('\n')}`);
  }
}

/** The query of `session` on `tenant` stops when its CancelRequest is sent through replica `via`. */
async function cancelledThrough(session: AddressedSession, at: string, tenant: (typeof TENANTS)[number], via: Replica): Promise<void> {
  const query = session.sleep(10);
  await running(tenant, 'SELECT pg_sleep(10)');
  await cancelFrom(at, via.ports.haproxy, session);
  expect(await query, `the ${tenant} query cancelled through ${via.name}`).toMatch(CANCELLED);
}

async function reload(x: Replica): Promise<void> {
  const t = Date.now();
  const outcome = await reloadMaster(join(x.stateDir, 'haproxy-master.sock'));
  expect(outcome.ok, outcome.detail).toBe(true);
  timings[`reload ${x.name} (longest)`] = Math.max(timings[`reload ${x.name} (longest)`] ?? 0, Date.now() - t);
}

beforeAll(async () => {
  servers = await startPostgresMany(TENANTS.map((name, i) => ({ name, port: blocks[0]!.pg[i] as number })));
  const file = writeTenantsFile(TENANTS.map((id) => ({ id, port: server(id).port })));
  tmp = file.dir;
  dir = mkdtempSync(join(tmpdir(), 'pgroute-cancel-reload-'));
  replicas = await startReplicas(blocks, blocks.map((b) => b.spare[0] as number), file.file, dir);
  await peersConnected(replicas);
}, 120_000);

afterAll(async () => {
  for (const x of replicas) await x.process.stop('SIGINT', 10_000);
  await stopAll();
  for (const s of servers) await s.stop();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
  if (dir) rmSync(dir, { recursive: true, force: true });
  console.log(`cancel-reload timings (ms): ${JSON.stringify(timings)}`);
});

describe('cancel records across a graceful reload of a peered replica', () => {
  it('a session routed by r1 right after its reload is cancelled through r2, and so is the one routed before', async () => {
    const at = '127.0.0.61';
    const acme = await sessionFrom(at, r(0).ports.haproxy, 'acme');
    await recordedEverywhere(at, 1);
    // The worker has run for seconds: it hands its tables to the new one.
    await reload(r(0));
    const globex = await sessionFrom(at, r(0).ports.haproxy, 'globex');
    try {
      await recordedEverywhere(at, 2);
      await cancelledThrough(globex, at, 'globex', r(1));
      await cancelledThrough(acme, at, 'acme', r(1));
    } finally {
      await acme.end();
      await globex.end();
    }
  });

  it('two reloads within HAProxy\'s hand-over window: the records routed before and after still cancel through r2', async () => {
    const at = '127.0.0.62';
    const acme = await sessionFrom(at, r(0).ports.haproxy, 'acme');
    await recordedEverywhere(at, 1);
    await reload(r(0));
    // The second reload comes before the first new worker has run ~3 s.
    await reload(r(0));
    const globex = await sessionFrom(at, r(0).ports.haproxy, 'globex');
    try {
      await recordedEverywhere(at, 2);
      await cancelledThrough(globex, at, 'globex', r(1));
      await cancelledThrough(acme, at, 'acme', r(2));
    } finally {
      await acme.end();
      await globex.end();
    }
  });

  it('sessions opened while the reload happens (old or new worker, first writes of the new one): every record reaches the others', async () => {
    for (let k = 0; k < 5; k++) {
      const at = `127.0.0.${70 + k}`;
      const acme = await sessionFrom(at, r(0).ports.haproxy, 'acme');
      let globex: AddressedSession | undefined;
      try {
        await recordedEverywhere(at, 1);
        const reloading = reload(r(0));
        // Staggered over the reload: before, during and just after the new worker starts.
        await new Promise((res) => setTimeout(res, k * 100));
        globex = await sessionFrom(at, r(0).ports.haproxy, 'globex');
        await reloading;
        await recordedEverywhere(at, 2);
        await cancelledThrough(globex, at, 'globex', r(1 + (k % 2)));
        await cancelledThrough(acme, at, 'acme', r(2 - (k % 2)));
      } finally {
        await acme.end();
        await globex?.end();
      }
    }
  }, 120_000);
});
