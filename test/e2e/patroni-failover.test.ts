// A tenant whose primary (and replica) target is a Patroni cluster follows a failover by itself:
// HAProxy's HTTP health checks against each member's Patroni REST API pick the leader for
// `primary` and the running replicas for `replica`; pgroute does nothing (no reload, no runtime
// API command, no apply). The old leader's open sessions are shut down (on-marked-down
// shutdown-sessions). Two real PostgreSQL servers stand in for the members; Patroni and its DCS
// are emulated by two tiny HTTP servers that answer the health endpoints as Patroni does.

import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { haproxyCli } from '../../generator/src/haproxy/master.js';
import { statePaths } from '../../generator/src/index.js';
import { portBlock } from '../support/ports.js';
import { startPostgresMany, type PgServer } from '../support/postgres.js';
import { reloadCount, startUp } from '../support/pgroute.js';
import { sleep, stopAll, waitFor, type ProcessHandle } from '../support/process.js';
import { psql } from '../support/psql.js';

const ports = portBlock(7);
/** One Patroni REST port for the whole cluster: HAProxy's `check port` is one per server line, so
 * every member's API listens on the same port, each on the member's own address. */
const PATRONI_PORT = ports.spare[0] as number;
const NODES = [
  { name: 'node1', address: '127.0.0.2', pgPort: ports.pg[0] },
  { name: 'node2', address: '127.0.0.3', pgPort: ports.pg[1] },
] as const;
/** The bound the brief sets for a failover to be followed (inter 2s, fall 3, rise 2 ≈ 4..6 s). */
const FAILOVER_BOUND_MS = 15_000;

type Role = 'primary' | 'replica';

/**
 * The part of Patroni's REST API a load balancer uses (Patroni docs, "REST API" → "Health check
 * endpoints"; patroni.readthedocs.io/en/latest/rest_api.html):
 *  - GET / , /primary, /read-write: 200 only on the node running as primary with the leader lock;
 *  - GET /leader: 200 on the node holding the leader lock;
 *  - GET /replica: 200 only when the node's state is `running`, its role is `replica` and the
 *    `noloadbalance` tag is not set;
 *  - GET /read-only: like /replica, but the primary also answers 200;
 *  - GET /health: 200 when PostgreSQL is up and running;
 *  - otherwise 503. Every GET carries a JSON status document; HEAD and OPTIONS the same status
 *    without a body. GET /patroni always answers 200 with the document (monitoring).
 * The emulation keeps the state and role in memory; `role` is flipped by the test to fail over.
 */
class FakePatroni {
  role: Role;
  state: 'running' | 'stopped' = 'running';
  noloadbalance = false;
  readonly requests: { at: number; method: string; path: string; status: number }[] = [];
  readonly #server: http.Server;

  constructor(
    readonly name: string,
    readonly address: string,
    role: Role,
  ) {
    this.role = role;
    this.#server = http.createServer((req, res) => this.#handle(req, res));
  }

  listen(port: number): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen({ port, host: this.address, exclusive: true }, () => resolve());
    });
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.#server.closeAllConnections();
      this.#server.close(() => resolve());
    });
  }

  #status(path: string): number {
    const running = this.state === 'running';
    const leader = running && this.role === 'primary';
    switch (path) {
      case '/':
      case '/primary':
      case '/master':
      case '/read-write':
      case '/leader':
        return leader ? 200 : 503;
      case '/replica':
        return running && this.role === 'replica' && !this.noloadbalance ? 200 : 503;
      case '/read-only':
        return running && (this.role === 'primary' || !this.noloadbalance) ? 200 : 503;
      case '/health':
        return running ? 200 : 503;
      case '/patroni':
        return 200;
      default:
        return 404;
    }
  }

  #handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    const method = req.method ?? 'GET';
    const status = ['GET', 'HEAD', 'OPTIONS'].includes(method) ? this.#status(path) : 405;
    this.requests.push({ at: Date.now(), method, path, status });
    const body = JSON.stringify({
      state: this.state,
      role: this.role,
      server_version: 150000,
      timeline: 1,
      ...(this.noloadbalance ? { tags: { noloadbalance: true } } : {}),
      patroni: { version: '3.3.0', scope: 'acme', name: this.name },
    });
    res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) });
    res.end(method === 'GET' ? body : undefined);
  }
}

let servers: PgServer[] = [];
let patroni: FakePatroni[] = [];
let up: ProcessHandle;
let dir: string;
let state: string;

function node(i: 0 | 1): FakePatroni {
  const p = patroni[i];
  if (!p) throw new Error(`no fake Patroni ${i}`);
  return p;
}

/** The cluster a new connection lands on through the given public port (primary or replica listener). */
async function clusterVia(port: number): Promise<string> {
  const r = await psql({ port, db: 'postgres', options: '-c pgroute.tenant=acme', command: 'SHOW cluster_name', timeoutMs: 5_000, connectTimeoutSec: 3 });
  return r.code === 0 ? r.stdout.trim() : `error: ${r.stderr.trim()}`;
}
const primaryCluster = (): Promise<string> => clusterVia(ports.haproxy);
const replicaCluster = (): Promise<string> => clusterVia(ports.haproxyAlt);

/** HAProxy's view of the tenant's servers, e.g. { 'pg.acme.primary/s1': 'UP', ... } (from `show stat`). */
async function serverStatus(): Promise<Record<string, string>> {
  const csv = await haproxyCli(`${state}/haproxy-admin.sock`, 'show stat');
  const lines = csv.split('\n');
  const header = (lines[0] ?? '').replace(/^# /, '').split(',');
  const statusAt = header.indexOf('status');
  const out: Record<string, string> = {};
  for (const line of lines.slice(1)) {
    const f = line.split(',');
    if (f[0]?.startsWith('pg.acme.') && f[1] !== 'BACKEND' && f[1] !== undefined) out[`${f[0]}/${f[1]}`] = f[statusAt] ?? '?';
  }
  return out;
}

const isUp = (s: string | undefined): boolean => s === 'UP' || (s?.startsWith('UP ') ?? false);
const isDown = (s: string | undefined): boolean => s === 'DOWN' || (s?.startsWith('DOWN ') ?? false);

beforeAll(async () => {
  servers = await startPostgresMany(
    NODES.map((n) => ({ name: n.name, port: n.pgPort, createDatabase: false, settings: { listen_addresses: `127.0.0.1,${n.address}` } })),
  );
  patroni = [new FakePatroni('node1', NODES[0].address, 'primary'), new FakePatroni('node2', NODES[1].address, 'replica')];
  for (const p of patroni) await p.listen(PATRONI_PORT);

  dir = mkdtempSync(join(tmpdir(), 'pgroute-e2e-'));
  state = `${dir}/state`;
  const members = NODES.map((n) => ({ host: n.address, port: n.pgPort }));
  const doc = {
    listeners: [
      { port: ports.haproxy, address: '127.0.0.1', target: 'primary' },
      { port: ports.haproxyAlt, address: '127.0.0.1', target: 'replica' },
    ],
    tenants: [
      {
        id: 'acme',
        members,
        check: { kind: 'patroni', port: PATRONI_PORT }, // path: /primary (the default for primary)
        targets: { replica: { members, check: { kind: 'patroni', port: PATRONI_PORT } } }, // path: /replica
      },
    ],
  };
  writeFileSync(`${dir}/tenants.yaml`, JSON.stringify(doc, null, 2));
  up = await startUp(ports, `${dir}/tenants.yaml`, state);
});

afterAll(async () => {
  await up?.stop('SIGINT', 15_000);
  await stopAll();
  for (const s of servers) await s.stop();
  for (const p of patroni) await p.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('a tenant on a Patroni cluster', () => {
  it('renders HTTP checks against the members\' Patroni API', async () => {
    const cfg = readFileSync(`${state}/haproxy.cfg`, 'utf8');
    expect(cfg).toContain('option httpchk GET /primary');
    expect(cfg).toContain('option httpchk GET /replica');
    expect(cfg).toContain(`server s1 ${NODES[0].address}:${NODES[0].pgPort} check inter 2s fastinter 250ms downinter 250ms port ${PATRONI_PORT} fall 1 rise 1 on-marked-down shutdown-sessions`);
  });

  it('sends primary connections to the leader and replica connections to the replica', async () => {
    const t0 = Date.now();
    // HAProxy starts every server UP and marks it DOWN at its first failed check.
    const settled = await waitFor(
      async () => {
        const s = await serverStatus();
        return isUp(s['pg.acme.primary/s1']) && isDown(s['pg.acme.primary/s2']) && isDown(s['pg.acme.replica/s1']) && isUp(s['pg.acme.replica/s2']) && s;
      },
      { timeoutMs: 10_000, intervalMs: 100, what: 'HAProxy to see node1 as leader and node2 as replica', process: up },
    );
    console.log(`initial checks settled ${Date.now() - t0} ms after the public port opened:`, settled);
    for (let i = 0; i < 5; i++) {
      expect(await primaryCluster()).toBe('node1');
      expect(await replicaCluster()).toBe('node2');
    }
  });

  it('follows a failover within the bound, shuts the old leader\'s sessions, and pgroute does nothing', async () => {
    const reloadsBefore = await reloadCount(statePaths(state).masterSocket);
    const cfgVersionLine = readFileSync(`${state}/haproxy.cfg`, 'utf8').split('\n')[0];

    // pgroute's own output from now on (its JSON logs on stderr, HAProxy's traffic log on stdout).
    const after: string[] = [];
    const collect = (chunk: string): void => {
      for (const l of chunk.split('\n')) if (l.trim() !== '') after.push(l);
    };
    up.child.stdout?.on('data', collect);
    up.child.stderr?.on('data', collect);

    // An open session on the leader, and one on the replica.
    const onLeader = new pg.Client({ host: '127.0.0.1', port: ports.haproxy, user: 'app', database: 'postgres', options: '-c pgroute.tenant=acme' });
    const onReplica = new pg.Client({ host: '127.0.0.1', port: ports.haproxyAlt, user: 'app', database: 'postgres', options: '-c pgroute.tenant=acme' });
    let leaderEnded: number | undefined;
    let leaderError: string | undefined;
    onLeader.on('error', (err) => {
      leaderError ??= err.message;
      leaderEnded ??= Date.now();
    });
    onLeader.on('end', () => {
      leaderEnded ??= Date.now();
    });
    onReplica.on('error', () => {});
    await onLeader.connect();
    await onReplica.connect();
    expect((await onLeader.query<{ cluster_name: string }>('SHOW cluster_name')).rows[0]?.cluster_name).toBe('node1');
    expect((await onReplica.query<{ cluster_name: string }>('SHOW cluster_name')).rows[0]?.cluster_name).toBe('node2');

    // Watch HAProxy's view while the failover happens (for the report).
    const transitions: string[] = [];
    let watching = true;
    let last: Record<string, string> = await serverStatus();
    const flipAt = { t: 0 };
    const watcher = (async () => {
      while (watching) {
        const now = await serverStatus().catch(() => undefined);
        if (now) {
          for (const [k, v] of Object.entries(now)) if (last[k] !== v) transitions.push(`+${Date.now() - flipAt.t} ms ${k}: ${last[k]} -> ${v}`);
          last = now;
        }
        await sleep(50);
      }
    })();

    // Failover: node2 takes the leader lock, node1 is demoted to a running replica.
    flipAt.t = Date.now();
    node(0).role = 'replica';
    node(1).role = 'primary';

    // Primary connections: poll until they land on node2.
    const seen: string[] = [];
    let primaryOnNode2 = -1;
    while (Date.now() - flipAt.t < FAILOVER_BOUND_MS) {
      const c = await primaryCluster();
      seen.push(c);
      if (c === 'node2') {
        primaryOnNode2 = Date.now() - flipAt.t;
        break;
      }
      await sleep(100);
    }
    expect(primaryOnNode2, `primary connections never reached node2 within ${FAILOVER_BOUND_MS} ms; saw ${seen.slice(-5).join(' | ')}`).toBeGreaterThan(0);

    // The old leader leaves the primary backend: its session is shut down.
    await waitFor(() => leaderEnded !== undefined, { timeoutMs: Math.max(1, FAILOVER_BOUND_MS - (Date.now() - flipAt.t)), intervalMs: 50, what: 'the old leader\'s session to be shut down' });
    const sessionKilled = (leaderEnded as number) - flipAt.t;
    await expect(onLeader.query('SELECT 1')).rejects.toThrow();

    // Replica connections settle on node1 once node2 leaves the replica backend.
    await waitFor(
      async () => {
        const s = await serverStatus();
        return isDown(s['pg.acme.replica/s2']) && isUp(s['pg.acme.replica/s1']) && isDown(s['pg.acme.primary/s1']) && isUp(s['pg.acme.primary/s2']);
      },
      { timeoutMs: Math.max(1, FAILOVER_BOUND_MS - (Date.now() - flipAt.t)), intervalMs: 50, what: 'HAProxy to see node2 as leader and node1 as replica', process: up },
    );
    const settled = Date.now() - flipAt.t;
    let replicaOnNode1 = -1;
    for (let i = 0; i < 5; i++) {
      expect(await primaryCluster()).toBe('node2');
      const r = await replicaCluster();
      expect(r).toBe('node1');
      if (replicaOnNode1 < 0) replicaOnNode1 = Date.now() - flipAt.t;
    }
    watching = false;
    await watcher;

    // The replica-target session opened on node2 is not shut down: it now sits on the new leader.
    const replicaSessionNow = await onReplica.query<{ cluster_name: string }>('SHOW cluster_name').then(
      (r) => r.rows[0]?.cluster_name ?? '?',
      (err: Error) => `error: ${err.message}`,
    );

    // pgroute did nothing: no reload, no apply, same configuration files.
    expect(await reloadCount(statePaths(state).masterSocket)).toBe(reloadsBefore);
    expect(readFileSync(`${state}/haproxy.cfg`, 'utf8').split('\n')[0]).toBe(cfgVersionLine);
    up.child.stdout?.off('data', collect);
    up.child.stderr?.off('data', collect);
    const own = after.filter((l) => !l.includes('"msg":"haproxy"') && l.startsWith('{'));
    expect(own.filter((l) => /tenants applied|reload|runtime API|apply/i.test(l))).toEqual([]);

    // Check cadence the fake Patroni saw (HAProxy: inter 2s).
    const gaps = patroni.flatMap((p) =>
      ['/primary', '/replica'].map((path) => {
        const at = p.requests.filter((r) => r.path === path).map((r) => r.at);
        const d = at.slice(1).map((t, i) => t - (at[i] as number));
        return `${p.name}${path}: ${at.length} checks, mean gap ${d.length ? Math.round(d.reduce((a, b) => a + b, 0) / d.length) : 0} ms`;
      }),
    );
    console.log(
      [
        `failover followed without pgroute: primary on node2 after ${primaryOnNode2} ms, old leader session shut at ${sessionKilled} ms (${leaderError ?? 'end'}),`,
        `both backends settled at ${settled} ms, replica on node1 by ${replicaOnNode1} ms; primary connections after the flip: ${seen.join(', ')}`,
        `replica-target session opened on node2 now answers: ${replicaSessionNow}`,
        `HAProxy transitions:`,
        ...transitions.map((t) => `  ${t}`),
        `check cadence: ${gaps.join('; ')}`,
        `pgroute output after the flip (${after.length} lines):`,
        ...after.map((l) => `  ${l.slice(0, 300)}`),
      ].join('\n'),
    );
    expect(sessionKilled).toBeLessThan(FAILOVER_BOUND_MS);
    await onLeader.end().catch(() => {});
    await onReplica.end().catch(() => {});
  }, 40_000);
});
