// A cancel reaches its query whichever replica receives it: three `pgroute up` replicas peered
// with --name/--peer (cancel records replicated by HAProxy's peers protocol), a round-robin HAProxy
// in front as the load balancer, two real PostgreSQL servers, sessions from distinct 127.0.0.x.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CANCELLED, cancelFrom, sessionFrom } from '../support/cancel.js';
import { portBlock } from '../support/ports.js';
import { startPostgresMany, type PgServer } from '../support/postgres.js';
import { writeTenantsFile } from '../support/pgroute.js';
import { stopAll, waitFor, type ProcessHandle } from '../support/process.js';
import { pgQuery } from '../support/psql.js';
import { peersConnected, showTable, startBalancer, startReplicas, type Replica } from '../support/replicas.js';
import { errorResponseOf } from '../support/wire.js';

const shared = portBlock(106);
const BALANCER = shared.haproxy;
const TENANTS = ['acme', 'globex'] as const;
let servers: PgServer[] = [];
let replicas: Replica[] = [];
let balancer: ProcessHandle;
let tmp: string;
let dir: string;

function server(id: (typeof TENANTS)[number]): PgServer {
  const s = servers[TENANTS.indexOf(id)];
  if (!s) throw new Error(`no server for ${id}`);
  return s;
}

function replica(i: number): Replica {
  const r = replicas[i];
  if (!r) throw new Error(`no replica ${i}`);
  return r;
}

function running(id: (typeof TENANTS)[number], query: string): Promise<true> {
  return waitFor(
    async () => (await pgQuery<{ n: string }>(server(id).connectionString('postgres'), `SELECT count(*) AS n FROM pg_stat_activity WHERE query = '${query}' AND state = 'active'`))[0]?.n === '1',
    { timeoutMs: 10_000, what: `${query} running on ${id}` },
  );
}

/** The record of `address` in one table as `show table` prints it: gpc0 and the words, or '(none)'. */
async function entryIn(r: Replica, table: string, address: string): Promise<string> {
  const line = (await showTable(r, table)).split('\n').find((l) => l.includes(`key=::ffff:${address} `));
  return line === undefined ? '(none)' : (line.match(/\b(?:gpc0|gpt\d+)=\d+/g) ?? []).join(' ');
}

/**
 * Resolves once `written` ids were recorded for `address` in the replicas' own tables (each replica
 * writes only pgroute-cancels-<its name>) and every replica holds each table's entry exactly as its
 * owner does (replication takes well under a second once the peers are connected; a loaded machine
 * may take longer).
 */
async function recordedEverywhere(address: string, written: number): Promise<void> {
  const tables = replicas.map((owner) => ({ owner, table: `pgroute-cancels-${owner.name}` }));
  const view = async (): Promise<{ owned: string[]; lines: string[] }> => {
    const owned = await Promise.all(tables.map(({ owner, table }) => entryIn(owner, table, address)));
    const lines = await Promise.all(replicas.flatMap((r) => tables.map(async ({ table }) => `${r.name} ${table}: ${await entryIn(r, table, address)}`)));
    return { owned, lines };
  };
  const complete = ({ owned, lines }: { owned: string[]; lines: string[] }): boolean =>
    owned.reduce((sum, e) => sum + Number(/gpc0=(\d+)/.exec(e)?.[1] ?? 0), 0) === written &&
    lines.every((l, k) => l.endsWith(`: ${owned[k % tables.length]}`));
  try {
    await waitFor(async () => complete(await view()), { timeoutMs: 15_000, what: `the cancel record of ${address}` });
  } catch (err) {
    throw new Error(`${(err as Error).message}: expected ${written} ids written in the owners' tables and each table alike on every replica, found\n${(await view()).lines.join('\n')}`);
  }
}

beforeAll(async () => {
  servers = await startPostgresMany(TENANTS.map((name, i) => ({ name, port: shared.pg[i] as number })));
  const file = writeTenantsFile(TENANTS.map((id) => ({ id, port: server(id).port })));
  tmp = file.dir;
  dir = mkdtempSync(join(tmpdir(), 'pgroute-replicas-'));
  replicas = await startReplicas([portBlock(107), portBlock(108), portBlock(109)], [shared.spare[0]!, shared.spare[1]!, shared.spare[2]!], file.file, dir);
  balancer = await startBalancer(BALANCER, replicas, dir);
  await peersConnected(replicas);
}, 90_000);

afterAll(async () => {
  await balancer?.stop('SIGTERM', 5_000);
  for (const r of replicas) await r.process.stop('SIGINT', 10_000);
  await stopAll();
  for (const s of servers) await s.stop();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('cancels across replicas', () => {
  it('a session through replica 1, another tenant through replica 3, the cancel through replica 2: both queries stop', async () => {
    const at = '127.0.0.31';
    const acme = await sessionFrom(at, replica(0).ports.haproxy, 'acme');
    const globex = await sessionFrom(at, replica(2).ports.haproxy, 'globex');
    try {
      await recordedEverywhere(at, 2);
      const onAcme = acme.sleep(10);
      await running('acme', 'SELECT pg_sleep(10)');
      await cancelFrom(at, replica(1).ports.haproxy, acme);
      expect(await onAcme).toMatch(CANCELLED);
      const onGlobex = globex.sleep(10);
      await running('globex', 'SELECT pg_sleep(10)');
      await cancelFrom(at, replica(1).ports.haproxy, globex);
      expect(await onGlobex).toMatch(CANCELLED);
    } finally {
      await acme.end();
      await globex.end();
    }
  });

  it('through the round-robin balancer, every cancel stops its query', async () => {
    for (let i = 0; i < 6; i++) {
      const at = `127.0.0.${40 + i}`;
      const acme = await sessionFrom(at, BALANCER, 'acme');
      const globex = await sessionFrom(at, BALANCER, 'globex');
      try {
        await recordedEverywhere(at, 2);
        const onAcme = acme.sleep(10);
        await running('acme', 'SELECT pg_sleep(10)');
        await cancelFrom(at, BALANCER, acme);
        expect(await onAcme, `round ${i + 1}`).toMatch(CANCELLED);
      } finally {
        await acme.end();
        await globex.end();
      }
    }
  });

  it('a cancel from an address no replica routed is refused on every replica and routes nowhere', async () => {
    const at = '127.0.0.51';
    const acme = await sessionFrom(at, BALANCER, 'acme');
    try {
      await recordedEverywhere(at, 1);
      const onAcme = acme.sleep(2);
      await running('acme', 'SELECT pg_sleep(2)');
      for (const r of replicas) {
        const stranger = await cancelFrom('127.0.0.52', r.ports.haproxy, acme);
        expect(errorResponseOf(stranger.received).sqlstate).toBe('08004');
      }
      expect(await onAcme).toBe('finished');
    } finally {
      await acme.end();
    }
  });

  it('a startup to a target already recorded does not send the record to the peers again; a new target does', async () => {
    // HAProxy pushes an entry to every peer whenever it is tracked or written, changed or not
    // (docs/cancel.md): the rules track it only for a new id or the hourly refresh. A push shows on
    // the receiving replica as its copy's expiry restarting at 24 h.
    const at = '127.0.0.61';
    const table = `pgroute-cancels-${replica(0).name}`;
    const expiry = async (r: Replica, address: string): Promise<number | undefined> => {
      const line = (await showTable(r, table)).split('\n').find((l) => l.includes(`key=::ffff:${address} `));
      const m = line === undefined ? null : / exp=(\d+)/.exec(line);
      return m ? Number(m[1]) : undefined;
    };
    const routed = async (address: string, tenant: (typeof TENANTS)[number]): Promise<void> => (await sessionFrom(address, replica(0).ports.haproxy, tenant)).end();
    const hour = (): number => Math.floor(Date.now() / 3_600_000);
    for (let attempt = 0; ; attempt++) {
      const h = hour();
      await routed(at, 'acme');
      await recordedEverywhere(at, 1 + attempt);
      const first = (await expiry(replica(1), at))!;
      await waitFor(async () => (await expiry(replica(1), at))! < first - 2_000, { timeoutMs: 10_000, what: `the copy of ${at}'s record on r2 ageing` });
      await routed(at, 'acme');
      // A barrier: another address's new record through the same replica. Pushes go out in the
      // order the entries were updated, so once r2 holds it, a push of the first entry would be there.
      const barrier = `127.0.0.${62 + attempt}`;
      await routed(barrier, 'acme');
      await waitFor(async () => (await expiry(replica(1), barrier)) !== undefined, { timeoutMs: 15_000, what: `${barrier}'s record on r2` });
      if (hour() !== h) continue; // the clock hour turned: the refresh pushed by design; again
      expect(await expiry(replica(1), at)).toBeLessThan(first - 2_000);
      await routed(at, 'globex');
      await waitFor(async () => (await expiry(replica(1), at))! > first - 1_000, { timeoutMs: 15_000, what: `${at}'s record with a new target on r2` });
      expect(await entryIn(replica(1), table, at)).toBe(await entryIn(replica(0), table, at));
      expect(await entryIn(replica(1), table, at)).toMatch(/gpc0=2\b/);
      return;
    }
  });
});
