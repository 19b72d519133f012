// Several replicas behind a balancer that follows readiness (a round-robin HAProxy health-checking
// each replica's /readyz): a rolling restart of all of them fails no new connection, a draining
// replica still serves its open sessions, and a replica killed with SIGKILL costs only the
// connections it held.
//
// The replicas are peers of each other (--name/--peer): a restarted one reports ready only after
// its replicated tables resynced from the others.
//
// Each replica reaches the one PostgreSQL server through its own loopback address (127.0.0.2, .3,
// .4), so `inet_server_addr()` on a connection names the replica that routed it.

import { rmSync } from 'node:fs';
import { Socket } from 'node:net';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectLoop, startBalancer, type Attempt, type Balancer } from '../support/balancer.js';
import { portBlock, type PortBlock } from '../support/ports.js';
import { startPostgres, type PgServer } from '../support/postgres.js';
import { startUp, writeTenantsFile } from '../support/pgroute.js';
import { stopAll, waitFor, type ProcessHandle } from '../support/process.js';

const shared = portBlock(113);
const TENANT = 'acme';
const DRAIN = ['--drain-delay', '1s', '--drain-timeout', '20s'];

interface Replica {
  readonly name: string;
  /** The address this replica reaches PostgreSQL on: what inet_server_addr() says. */
  readonly address: string;
  readonly ports: PortBlock;
  readonly stateDir: string;
  readonly tenantsFile: string;
  proc?: ProcessHandle;
}

let server: PgServer;
let balancer: Balancer;
const dirs: string[] = [];
const replicas: Replica[] = [0, 1, 2].map((i) => ({ name: `r${i}`, address: `127.0.0.${i + 2}`, ports: portBlock(110 + i), stateDir: '', tenantsFile: '' }));

/** Every replica names all three as its peers (HAProxy's peers protocol, on a spare port each). */
const PEERS = replicas.map((r) => `${r.name}=127.0.0.1:${r.ports.spare[0]}`).join(',');

async function start(r: Replica, extra: readonly string[] = []): Promise<void> {
  r.proc = await startUp(r.ports, r.tenantsFile, r.stateDir, [...DRAIN, '--name', r.name, '--peer', PEERS, ...extra]);
}

const byAddress = (address: string): string => replicas.find((r) => r.address === address)?.name ?? `unknown ${address}`;

/** A session through the balancer held open on replica `r` (the balancer round-robins: a few tries). */
async function sessionOn(r: Replica): Promise<pg.Client> {
  for (let i = 0; i < 20; i++) {
    const c = new pg.Client({ host: '127.0.0.1', port: balancer.port, user: 'app', database: 'postgres', options: `-c pgroute.tenant=${TENANT}`, connectionTimeoutMillis: 10_000 });
    c.on('error', () => {});
    await c.connect();
    const row = (await c.query<{ a: string }>('SELECT host(inet_server_addr()) AS a')).rows[0];
    if (row?.a === r.address) return c;
    await c.end();
  }
  throw new Error(`no session through the balancer landed on ${r.name} in 20 tries`);
}

async function alive(c: pg.Client): Promise<boolean> {
  try {
    await c.query('SELECT 1');
    return true;
  } catch {
    return false;
  }
}

function refused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = new Socket();
    s.once('connect', () => {
      s.destroy();
      resolve(false);
    });
    s.once('error', () => resolve(true));
    s.connect(port, '127.0.0.1');
  });
}

const failures = (attempts: readonly Attempt[]): Attempt[] => attempts.filter((a) => a.served === undefined);
const served = (attempts: readonly Attempt[]): Record<string, number> => {
  const out: Record<string, number> = {};
  for (const a of attempts) if (a.served !== undefined) out[byAddress(a.served)] = (out[byAddress(a.served)] ?? 0) + 1;
  return out;
};

beforeAll(async () => {
  server = await startPostgres({
    name: 'rolling',
    port: shared.pg[0],
    settings: { listen_addresses: '127.0.0.1,127.0.0.2,127.0.0.3,127.0.0.4', max_connections: 200 },
    hba: ['local all all trust', 'host all all 127.0.0.0/8 trust'],
  });
  for (const r of replicas) {
    const { dir, file } = writeTenantsFile([{ id: TENANT, host: r.address, port: server.port }]);
    dirs.push(dir);
    Object.assign(r, { stateDir: `${dir}/state`, tenantsFile: file });
  }
  await Promise.all(replicas.map((r) => start(r)));
  balancer = await startBalancer(shared.haproxy, replicas.map((r) => ({ name: r.name, port: r.ports.haproxy, readyPort: r.ports.agentHealth })));
}, 120_000);

afterAll(async () => {
  await Promise.all(replicas.map((r) => r.proc?.stop('SIGINT', 25_000)));
  await balancer?.stop();
  await stopAll();
  await server?.stop();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe('rolling restart behind a balancer that follows /readyz', () => {
  it('restarting every replica in turn fails no new connection; a draining replica serves its open session', async () => {
    const loop = connectLoop({ port: balancer.port, tenant: TENANT, sql: 'SELECT host(inet_server_addr())' });
    try {
      await loop.moreSuccesses(30);
      for (const r of replicas) {
        const held = await sessionOn(r);
        const proc = r.proc!;
        process.kill(proc.pid!, 'SIGTERM'); // what an orchestrator sends: to pgroute, not to its HAProxy
        // Readiness goes first; the listener closes only after the drain delay...
        await balancer.waitState(r.name, 'DOWN', 10_000);
        await waitFor(() => refused(r.ports.haproxy), { timeoutMs: 15_000, what: `${r.name} to stop listening`, process: proc });
        // ...and the session it holds is still served: the replica waits for it to end.
        expect(await alive(held), `${r.name}'s open session during the drain`).toBe(true);
        expect(proc.running()).toBe(true);
        await held.end();
        const exit = await proc.exited;
        expect(exit.code, proc.output(30)).toBe(0);
        await start(r);
        await balancer.waitState(r.name, 'UP');
        // Ready came after the replicated tables resynced from the other two.
        await r.proc!.waitForOutput(/resynced from the other replicas/, 1_000);
        await loop.moreSuccesses(30);
      }
    } finally {
      await loop.stop();
    }
    const attempts = loop.attempts;
    console.info(`rolling restart: ${attempts.length} new connections, served ${JSON.stringify(served(attempts))}`);
    expect(failures(attempts), JSON.stringify(failures(attempts).slice(0, 5))).toEqual([]);
    const counts = served(attempts);
    for (const r of replicas) expect(counts[r.name] ?? 0, `connections served by ${r.name}: ${JSON.stringify(counts)}`).toBeGreaterThan(0);
  }, 240_000);

  it('a replica killed with SIGKILL costs only its own sessions and the new connections sent to it', async () => {
    const [a, victim, c] = replicas as [Replica, Replica, Replica];
    const held = new Map<Replica, pg.Client>([
      [a, await sessionOn(a)],
      [victim, await sessionOn(victim)],
      [c, await sessionOn(c)],
    ]);
    const loop = connectLoop({ port: balancer.port, tenant: TENANT, sql: 'SELECT host(inet_server_addr())' });
    let downAt = 0;
    try {
      await loop.moreSuccesses(20);
      process.kill(-victim.proc!.pid!, 'SIGKILL'); // pgroute and its HAProxy: the whole replica
      await balancer.waitState(victim.name, 'DOWN', 10_000);
      downAt = Date.now();
      await loop.moreSuccesses(60);
    } finally {
      await loop.stop();
    }
    expect(await alive(held.get(a)!), `${a.name}'s session`).toBe(true);
    expect(await alive(held.get(c)!), `${c.name}'s session`).toBe(true);
    expect(await alive(held.get(victim)!), `${victim.name}'s session died with it`).toBe(false);
    for (const s of held.values()) await s.end().catch(() => undefined);

    // Every failed new connection was one the balancer had sent to the killed replica before its
    // check noticed; after that, none failed.
    const failed = failures(loop.attempts);
    console.info(`kill -9 of ${victim.name}: ${loop.attempts.length} new connections, ${failed.length} failed; served ${JSON.stringify(served(loop.attempts))}`);
    await waitFor(() => failed.every((f) => f.localPort !== undefined && balancer.connection(f.localPort, f.at) !== undefined), { timeoutMs: 5_000, what: "the balancer's log lines of the failed connections" });
    for (const f of failed) expect(balancer.connection(f.localPort!, f.at)?.replica, JSON.stringify(f)).toBe(victim.name);
    expect(failed.filter((f) => f.at > downAt + 1_000)).toEqual([]);
    const after = served(loop.attempts.filter((x) => x.at > downAt));
    expect(after[victim.name] ?? 0).toBe(0);
    expect(after[a.name] ?? 0).toBeGreaterThan(0);
    expect(after[c.name] ?? 0).toBeGreaterThan(0);

    // Started again, it rejoins.
    await start(victim, ['--drain-timeout', '2s']);
    await balancer.waitState(victim.name, 'UP');
  }, 120_000);

  it('a session still open after --drain-timeout is closed, and the replica exits', async () => {
    const victim = replicas[1]!; // restarted above with --drain-timeout 2s
    const held = await sessionOn(victim);
    const t = Date.now();
    process.kill(victim.proc!.pid!, 'SIGTERM');
    const exit = await victim.proc!.exited;
    const ms = Date.now() - t;
    expect(exit.code, victim.proc!.output(30)).toBe(0);
    // 1 s of drain delay, then at most the 2 s drain timeout (and the hard stop's own seconds).
    expect(ms).toBeGreaterThanOrEqual(3_000);
    expect(ms).toBeLessThan(12_000);
    expect(await alive(held)).toBe(false);
    await held.end().catch(() => undefined);
    await start(victim);
    await balancer.waitState(victim.name, 'UP');
  }, 60_000);
});
