// Three replicas (`pgroute up` from dist/ with --name/--peer, each on its own port block, state dir
// and tenants file of the same content) behind a round-robin HAProxy standing in for the load
// balancer, real PostgreSQL. They route alike; a tenant added to the source routes on every
// replica within 2 s; `tenant disable` given to one replica is obeyed by all three within 2 s (and
// enable likewise); a replica killed with SIGKILL while the switch changed learns it before it
// reports running, and its old access.json overwrites nothing; a forged table entry changes no
// routing. Also: a bad peer list is refused in one line, exit 2.

import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { haproxyCli } from '../../generator/src/index.js';
import { runCliOnce, startUp, type TenantSpec } from '../support/pgroute.js';
import { portBlock, type PortBlock } from '../support/ports.js';
import { startPostgresMany, type PgServer } from '../support/postgres.js';
import { sleep, spawnLogged, stopAll, waitFor, waitForPort, type ProcessHandle } from '../support/process.js';
import { connectedPeers } from '../support/replicas.js';
import { routedClients } from '../support/routed.js';

const NAMES = ['r1', 'r2', 'r3'] as const;
const blocks: readonly PortBlock[] = [portBlock(100), portBlock(101), portBlock(102)];
const shared = portBlock(103);
/** Each replica's peers listener: the first spare port of its block. */
const peerPort = (i: number): number => blocks[i]?.spare[0] ?? 0;
const PEERS = NAMES.map((n, i) => `${n}=127.0.0.1:${peerPort(i)}`).join(',');

let tmp = '';
let servers: PgServer[] = [];
const replicas: (ProcessHandle | undefined)[] = [];
let balancer: ProcessHandle | undefined;
const timings: Record<string, number> = {};

const stateDir = (i: number): string => join(tmp, NAMES[i] ?? '', 'state');
const tenantsPath = (i: number): string => join(tmp, NAMES[i] ?? '', 'tenants.yaml');
const adminSocket = (i: number): string => join(stateDir(i), 'haproxy-admin.sock');
const via = (i: number) => routedClients({ port: blocks[i]?.haproxy ?? 0, timings, showOnTimeout: () => replicas[i] });
const lb = () => routedClients({ port: shared.haproxy, timings, showOnTimeout: () => balancer });

/** The same tenants file on every replica (each watches its own copy, as separate hosts would). */
function writeTenants(tenants: readonly TenantSpec[]): void {
  const doc = JSON.stringify({ tenants: tenants.map((t) => ({ host: '127.0.0.1', ...t })) }, null, 2);
  for (let i = 0; i < NAMES.length; i++) writeFileSync(tenantsPath(i), doc);
}

function startReplica(i: number): Promise<ProcessHandle> {
  return startUp(blocks[i] as PortBlock, tenantsPath(i), stateDir(i), ['--name', NAMES[i] ?? '', '--peer', PEERS]);
}

/** The load balancer: plain HAProxy, round robin over the three replicas' public ports. */
async function startBalancer(): Promise<ProcessHandle> {
  const cfg = join(tmp, 'balancer.cfg');
  writeFileSync(
    cfg,
    [
      'defaults',
      '    mode tcp',
      '    timeout connect 2s',
      '    timeout client 1m',
      '    timeout server 1m',
      'frontend lb',
      `    bind 127.0.0.1:${shared.haproxy}`,
      '    default_backend replicas',
      'backend replicas',
      '    balance roundrobin',
      ...NAMES.map((n, i) => `    server ${n} 127.0.0.1:${blocks[i]?.haproxy} check inter 500ms fall 1 rise 1`),
      '',
    ].join('\n'),
  );
  const p = spawnLogged(process.env['PGROUTE_HAPROXY'] ?? 'haproxy', ['-db', '-f', cfg], { name: 'balancer' });
  await waitForPort(shared.haproxy, '127.0.0.1', 10_000, { process: p, what: 'balancer listening' });
  return p;
}

/** What a client is told for a tenant no replica serves: a disabled tenant looks the same. */
let refusal = '';

/** Polls every replica until each answers `want` for `tenant`; the slowest time since `since`. */
async function allReach(what: string, tenant: string, want: string, since: number, limitMs: number): Promise<number> {
  const ms = await Promise.all(NAMES.map((n, i) => via(i).reaches(`${what} (${n})`, tenant, want, since, limitMs)));
  const slowest = Math.max(...ms);
  timings[what] = slowest;
  return slowest;
}

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'pgroute-replicas-'));
  for (let i = 0; i < NAMES.length; i++) mkdirSync(stateDir(i), { recursive: true });
  servers = await startPostgresMany([
    { name: 'alpha', port: shared.pg[0] },
    { name: 'bravo', port: shared.pg[1] },
  ]);
  writeTenants([{ id: 'alpha', port: shared.pg[0] }]);
  const started = await Promise.all(NAMES.map((_, i) => startReplica(i)));
  started.forEach((p, i) => (replicas[i] = p));
  balancer = await startBalancer();
  refusal = await via(0).outcome('nosuch');
}, 180_000);

afterAll(async () => {
  await Promise.all(replicas.map((p) => p?.stop('SIGINT', 10_000)));
  await balancer?.stop();
  await stopAll();
  await Promise.all(servers.map((s) => s.stop()));
  if (tmp) rmSync(tmp, { recursive: true, force: true });
  console.log(`replicas timings (ms): ${JSON.stringify(timings)}`);
});

describe('three replicas with --name/--peer (pgroute up, real HAProxy peers)', () => {
  it('route alike, directly and through the balancer; an unknown tenant is refused alike', async () => {
    expect(refusal).toMatch(/^refused [0-9A-Z]{5}$/);
    for (let i = 0; i < NAMES.length; i++) {
      expect(await via(i).outcome('alpha')).toBe('alpha');
      expect(await via(i).outcome('nosuch')).toBe(refusal);
    }
    for (let k = 0; k < 6; k++) expect(await lb().outcome('alpha')).toBe('alpha');
  });

  it('each HAProxy is connected to the two others over the peers protocol, and the sessions stay up while the tables are idle', async () => {
    // Connected as `pgroute status` says it (a session established now), with how many sessions
    // each peer has had so far (show peers' new_conn).
    const sessions = async (i: number): Promise<Map<string, number> | undefined> => {
      const up = await connectedPeers(adminSocket(i));
      if (up.length !== 2) return undefined;
      const text = await haproxyCli(adminSocket(i), 'show peers');
      const counts = new Map(up.map((name) => [name, Number(new RegExp(`id=${name}\\(remote[^]*?new_conn=(\\d+)`).exec(text)?.[1] ?? -1)]));
      // A count show peers no longer prints would make the comparison below vacuous.
      for (const [name, n] of counts) expect(n, `new_conn of ${name} in show peers`).toBeGreaterThanOrEqual(1);
      return counts;
    };
    const connected = (i: number) => waitFor(() => sessions(i), { timeoutMs: 15_000, intervalMs: 100, what: `${NAMES[i]} connected to both peers` });
    const before = await Promise.all(NAMES.map((_, i) => connected(i)));
    // HAProxy closes a peers session it heard nothing on since its liveness flag was cleared (a
    // lost dial collision clears it too): idle, they flapped every few seconds before pgroute sent
    // its keepalive entry. Over two heartbeat periods, no session is closed or replaced.
    await sleep(7_000);
    const after = await Promise.all(NAMES.map((_, i) => sessions(i)));
    expect(after.map((m) => (m === undefined ? 'not all connected' : Object.fromEntries(m)))).toEqual(before.map((m) => Object.fromEntries(m)));
  });

  it('`pgroute status --json` on a replica names it and lists the two others as connected, resync finished', async () => {
    const r = await runCliOnce(['status', '--json', '--state-dir', stateDir(0)]);
    expect(r.code, r.stderr).toBe(0);
    const replica = (JSON.parse(r.stdout) as { replica?: { name: string; resynced: boolean; peers: { name: string; address: string; connected: boolean }[] } }).replica;
    expect(replica?.name).toBe('r1');
    expect(replica?.resynced).toBe(true);
    expect(replica?.peers.map((p) => [p.name, p.address, p.connected])).toEqual([
      ['r2', `127.0.0.1:${peerPort(1)}`, true],
      ['r3', `127.0.0.1:${peerPort(2)}`, true],
    ]);
  });

  it('a tenant added to the source routes on every replica within 2 s', async () => {
    const t = Date.now();
    writeTenants([
      { id: 'alpha', port: shared.pg[0] },
      { id: 'bravo', port: shared.pg[1] },
    ]);
    expect(await allReach('bravo added: routed on every replica', 'bravo', 'bravo', t, 10_000)).toBeLessThan(2_000);
  });

  it('`tenant disable` on one replica refuses the tenant on all three within 2 s; enable on another restores it', async () => {
    // Timed from the command's answer (the switch is written); the command itself (a Node start
    // that loads the CLI) is timed apart.
    const d = await runCliOnce(['tenant', 'disable', 'alpha', '--state-dir', stateDir(0)]);
    const t = Date.now();
    timings['tenant disable (command)'] = d.ms;
    expect(d.stderr.split('\n').filter((l) => l.startsWith('pgroute:'))).toEqual([]);
    expect(d.code).toBe(0);
    expect(d.stdout).toBe(`tenant alpha disabled: written to ${stateDir(0)}/access.json and HAProxy's table pgroute-access; replicated to peers r2, r3 through HAProxy peers (a peer that is down learns it when it reconnects)\n`);
    expect(await allReach('disable on r1: refused on every replica', 'alpha', refusal, t, 10_000)).toBeLessThan(2_000);
    expect(await lb().outcome('alpha')).toBe(refusal);
    expect(await lb().outcome('bravo')).toBe('bravo');
    // Every replica persisted it (a restart keeps it).
    for (let i = 0; i < NAMES.length; i++) expect(JSON.parse(readFileSync(join(stateDir(i), 'access.json'), 'utf8')).disabled).toEqual(['alpha']);

    const e = await runCliOnce(['tenant', 'enable', 'alpha', '--state-dir', stateDir(1)]);
    const t2 = Date.now();
    timings['tenant enable (command)'] = e.ms;
    expect(e.code).toBe(0);
    expect(e.stdout).toMatch(/^tenant alpha enabled: written to .*; replicated to peers r1, r3 through HAProxy peers /);
    expect(await allReach('enable on r2: routed on every replica', 'alpha', 'alpha', t2, 10_000)).toBeLessThan(2_000);
  });

  it('a replica killed (SIGKILL) while the switch changed learns it before it reports running; its old file overwrites nothing', async () => {
    const victim = replicas[2] as ProcessHandle;
    // The whole replica dies at once: pgroute and its HAProxy (one process group, as in a pod).
    process.kill(-(victim.pid ?? 0), 'SIGKILL');
    await victim.exited;
    await waitFor(async () => (/ECONNREFUSED|^error/.test(await via(2).outcome('alpha')) ? true : undefined), { timeoutMs: 10_000, intervalMs: 100, what: 'r3 down' });

    const t = Date.now();
    const d = await runCliOnce(['tenant', 'disable', 'alpha', '--state-dir', stateDir(1)]);
    expect(d.code).toBe(0);
    expect(d.stdout).toMatch(/^tenant alpha disabled: written to .*; replicated to peers r1, r3 through HAProxy peers \(a peer that is down learns it when it reconnects\)\n$/);
    await Promise.all([0, 1].map((i) => via(i).reaches(`disable on r2 while r3 is down (${NAMES[i]})`, 'alpha', refusal, t, 10_000)));
    // r3's access.json still says enabled (older).
    expect(JSON.parse(readFileSync(join(stateDir(2), 'access.json'), 'utf8')).disabled).toEqual([]);

    const t2 = Date.now();
    replicas[2] = await startReplica(2);
    timings['r3 restart until running'] = Date.now() - t2;
    // Reported running: the switch is already obeyed, with no wait.
    expect(await via(2).outcome('alpha')).toBe(refusal);
    expect(await via(2).outcome('bravo')).toBe('bravo');
    expect(JSON.parse(readFileSync(join(stateDir(2), 'access.json'), 'utf8')).disabled).toEqual(['alpha']);
    // And the others still refuse (r3's older file was not taught over the newer switch).
    await sleep(1_500);
    for (let i = 0; i < NAMES.length; i++) expect(await via(i).outcome('alpha')).toBe(refusal);
  });

  it('a forged table entry (unknown state, bad key, far-future version) changes no routing and is logged once', async () => {
    const v = Math.floor((Date.now() - Date.UTC(2025, 0, 1)) / 1000);
    const answer = await haproxyCli(
      adminSocket(0),
      [`set table pgroute-access key bravo data.gpt0 ${(v + 10) * 4 + 3}`, `set table pgroute-access key Not_A_Tenant data.gpt0 ${(v + 10) * 4 + 1}`, `set table pgroute-access key alpha data.gpt0 ${(v + 100_000) * 4}`].join('; '),
    );
    expect(answer.trim()).toBe('');
    await Promise.all(
      NAMES.map((n, i) => replicas[i]?.waitForOutput(/ignored an entry of the replicated access table[^\n]*unknown state code 3|unknown state code 3[^\n]*ignored an entry/, 5_000)),
    );
    await sleep(1_500);
    for (let i = 0; i < NAMES.length; i++) {
      expect(await via(i).outcome('bravo')).toBe('bravo');
      expect(await via(i).outcome('alpha')).toBe(refusal);
    }
  });
});

describe('bad peer lists', () => {
  it('a replica named twice, a malformed entry, --name missing from the list: one line, exit 2, nothing started', async () => {
    const dir = join(tmp, 'bad');
    const cases: [string[], RegExp][] = [
      [['--name', 'a', '--peer', 'a=127.0.0.1:7001', '--peer', 'a=127.0.0.1:7002'], /^pgroute: --peer \(PGROUTE_PEERS\) must be a list naming each replica once \(a is listed twice\), got "a=127.0.0.1:7001,a=127.0.0.1:7002"$/],
      [['--name', 'a', '--peer', 'a=127.0.0.1:7001,b=127.0.0.1'], /^pgroute: --peer \(PGROUTE_PEERS\) must be a peer of the form <name>=<host>:<port> .*, got "b=127.0.0.1"$/],
      [['--name', 'c', '--peer', 'a=127.0.0.1:7001,b=127.0.0.1:7002'], /^pgroute: --peer \(PGROUTE_PEERS\) must be a list that includes this replica's own name c/],
    ];
    for (const [flags, line] of cases) {
      const r = await runCliOnce(['up', '--tenants', tenantsPath(0), '--state-dir', dir, '--port', String(shared.haproxyAlt), ...flags], 20_000);
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr.trimEnd().split('\n')).toHaveLength(1);
      expect(r.stderr.trimEnd()).toMatch(line);
    }
  });
});
