// Storm isolation (#12): another tenant's connect latency while one tenant storms. One run, side
// by side in rotating order: for each variant, an idle window then a storm window (a pair), many
// rounds; the figure is each pair's ratio storm/idle of the calm tenant's median connect time
// (node-postgres: connect, SHOW cluster_name, end), and the median of those ratios. Where the time
// goes is measured in the same windows: CPU of every process (the storm client, HAProxy, the
// pgroute process that runs the agent, each PostgreSQL, this process) and HAProxy's log timers of
// the calm connections (spoe_ms: the agent's answer; Tc: the server's connect).
//
// Storms: (a) `refused`: 8 reconnect loops (STORM_CLIENT, bench/src/storm-client.ts) on a tenant limited to 10/s,
// nearly every connection refused over the rate; (b) `admitted`: pgbench -C -c 8 on a tenant with
// the default limits, every connection admitted. Where the storm runs: `same` (normal priority),
// `nice` (nice -n 19 and its autogroup's nice 19; for (b) the stormy PostgreSQL lowered too), `cgroup`
// (a CPU cgroup with cpu.shares 2), `hosts` (the default with `same`: emulated hosts, STORM_HOSTS in
// storm-client.ts): the storm stands for other machines. `pooler`: the hosts, and (b) goes to tenant
// `pooled`, the stormy server behind its own PgBouncer (test/support/pgbouncer.ts, on the stormy
// server's host), so that no connection forks a backend, and the router on its own host
// (ROUTER_HOST: no quota, its CPU first); `pooler-root`: the same with the router left in the root
// group, as in `hosts`.
// Deployments: pgroute as it is (`--refusal-delay 0`) and each defence variant (DEPLOYMENTS below).
//
//   bench/storm.sh [rounds, default 4] [probes per window, default 25]
// Writes bench/results/2026-12-06-session8-pooler-storm.md (STORM_RESULT). Ports 22800-22899.

import { mkdirSync, mkdtempSync, chmodSync, readFileSync, rmSync, writeFileSync, statSync, openSync, readSync, closeSync } from 'node:fs';
import { tmpdir, loadavg } from 'node:os';
import type { Socket } from 'node:net';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import pg from 'pg';
import { openRouterHost, openStormHosts, PROBE_CLIENT, probeWindow, STORM_CLIENT, STORM_SHARES, stormCounts } from './storm-client.js';
import { startPgBouncer, type PgBouncer } from '../../test/support/pgbouncer.js';
import { BenchPostgres, PGBIN } from './postgres.js';
import { cpuHostsAvailable, openCpuHost, type CpuHost } from './cpu-host.js';
import { Procs, killRunning, machineCpu, mustRun, procCpu, processName, processTree, run, sleep, type Started } from './procs.js';

const ROOT = resolve(import.meta.dirname, '..', '..', '..');
const CLI = join(ROOT, 'dist', 'cli', 'pgroute.js');
const BASE = 22800;
const PG_PORTS = { stormy: BASE + 90, calm: BASE + 91 };
/** The `pooler` places' PgBouncer in front of the stormy server. */
const PGBOUNCER_PORT = BASE + 92;
/** Tenant `pooled`'s rate: above the default 1000 a second, so that its admitted storm is not cut. */
const POOLED_RATE = 5_000;
const ROUNDS = Number(process.argv[2] ?? 4);
const PROBES = Number(process.argv[3] ?? 25);
const STORM_RATE = 10;
const RESULT = process.env['STORM_RESULT'] ?? '2026-12-06-session8-pooler-storm.md';
/** Emulated hosts opened by pair() (closed there; main() closes any an error left open), and calm clients started. */
const openedHosts: CpuHost[] = [];
let probers = 0;
const LOOPS = 8;

/** pgroute deployments compared: the flags beyond the common ones. Each gets 10 ports from BASE. */
const DEPLOYMENTS: readonly { readonly name: string; readonly flags: readonly string[] }[] = (process.env['STORM_DEPLOYMENTS'] ?? 'none:--refusal-delay=0,delay-1s:--refusal-delay=1s')
  .split(',')
  .map((d) => {
    const [name, ...flags] = d.split(':');
    return { name: name ?? 'none', flags: flags.flatMap((f) => f.split('=')) };
  });
const KINDS = (process.env['STORM_KINDS'] ?? 'refused,admitted').split(',') as readonly Kind[];
const PLACES = (process.env['STORM_PLACES'] ?? 'same,nice').split(',') as readonly Place[];
type Kind = 'refused' | 'admitted';
type Place = 'same' | 'nice' | 'cgroup' | 'hosts' | 'pooler' | 'pooler-root';
const pooled = (place: Place): boolean => place === 'pooler' || place === 'pooler-root';
/** Started by main() when a pooler place runs. */
let pgbouncer: PgBouncer | undefined;

const log = (m: string): void => console.error(`[storm-bench] ${m}`);
const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : ((s[Math.floor((s.length - 1) / 2)] as number) + (s[Math.ceil((s.length - 1) / 2)] as number)) / 2;
};

interface Deployment {
  readonly name: string;
  readonly port: number;
  readonly up: Started;
  readonly logFile: string;
  logOffset: number;
}

interface Probe {
  readonly ms: number;
  readonly port: number;
}

async function probe(port: number): Promise<Probe> {
  const t = performance.now();
  const client = new pg.Client({ host: '127.0.0.1', port, user: 'postgres', database: 'calm', connectionTimeoutMillis: 10_000 });
  await client.connect();
  const local = (client as unknown as { connection: { stream: Socket } }).connection.stream.localPort ?? 0;
  await client.query('SHOW cluster_name');
  await client.end();
  return { ms: performance.now() - t, port: local };
}

/** HAProxy log lines written since the last call (pgroute up --log all: one line per connection). */
function newLogLines(d: Deployment): string[] {
  const size = statSync(d.logFile).size;
  if (size <= d.logOffset) return [];
  const buf = Buffer.alloc(size - d.logOffset);
  const fd = openSync(d.logFile, 'r');
  readSync(fd, buf, 0, buf.length, d.logOffset);
  closeSync(fd);
  d.logOffset = size;
  return buf.toString('utf8').split('\n');
}

interface Timers {
  spoe: number[];
  tc: number[];
  tt: number[];
}
const LINE = /^127\.0\.0\.1:(\d+) \[[^\]]+\] \S+ \S+ (-?\d+)\/(-?\d+)\/(-?\d+) .*tenant="([^"]*)".* spoe_ms=(-?\d*)/;

/** The calm probes' log timers, and the storm tenants' connections by outcome, from a window's lines. */
function readLog(lines: readonly string[], probePorts: ReadonlySet<number>): { timers: Timers; stormRouted: number; stormRefused: number } {
  const timers: Timers = { spoe: [], tc: [], tt: [] };
  let stormRouted = 0;
  let stormRefused = 0;
  for (const l of lines) {
    const m = LINE.exec(l);
    if (m === null) continue;
    const [, cp, , tc, tt, tenant, spoe] = m;
    if (tenant === 'calm' && probePorts.has(Number(cp))) {
      if (spoe !== '') timers.spoe.push(Number(spoe));
      timers.tc.push(Number(tc));
      timers.tt.push(Number(tt));
    } else if (tenant === 'stormy' || tenant === 'busy' || tenant === 'pooled') {
      if (/ pgroute\/<NOSRV> /.test(l) || Number(tc) < 0) stormRefused++;
      else stormRouted++;
    }
  }
  return { timers, stormRouted, stormRefused };
}

/**
 * With autogroup scheduling (kernel.sched_autogroup_enabled, on here) nice only orders the
 * processes of one session: a process in its own session (the storm, started detached; the
 * postmaster) is lowered by its autogroup's nice. Not when it shares this process's autogroup.
 */
function lowestAutogroup(pid: number, nice = 19): void {
  try {
    const own = readFileSync('/proc/self/autogroup', 'utf8').split(' ')[0];
    const theirs = readFileSync(`/proc/${pid}/autogroup`, 'utf8').split(' ')[0];
    if (own !== theirs) writeFileSync(`/proc/${pid}/autogroup`, String(nice));
  } catch {
    /* no autogroup: nice alone */
  }
}

/** utime+stime+cutime+cstime: a server's CPU including its children that have exited (PostgreSQL backends). */
function cpuWithChildren(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ').slice(11, 15).map(Number);
    return f.reduce((a, b) => a + b, 0) / 100;
  } catch {
    return 0;
  }
}

interface Cpu {
  readonly [who: string]: number;
}

/** CPU seconds by role, read from /proc: measured around a window. */
function cpuSnapshot(deps: readonly Deployment[], storm: number | undefined, pgs: Record<'stormy' | 'calm', BenchPostgres>): Record<string, number> {
  const sum = (pids: readonly number[]): number => pids.reduce((a, p) => a + procCpu(p), 0);
  const out: Record<string, number> = { bench: procCpu(process.pid), machine: machineCpu().busy };
  let haproxy = 0;
  let agent = 0;
  for (const d of deps) {
    for (const p of processTree(d.up.pid)) {
      if (processName(p) === 'haproxy') haproxy += procCpu(p);
      else agent += procCpu(p);
    }
  }
  out['haproxy'] = haproxy;
  out['pgroute (agent)'] = agent;
  out['storm client'] = storm === undefined ? 0 : sum(processTree(storm));
  // The postmaster with its reaped children, plus the backends alive now.
  const server = (pm: number): number => cpuWithChildren(pm) + sum(processTree(pm).filter((p) => p !== pm));
  out['stormy PG'] = server(pgs.stormy.postmasterPid());
  out['pgbouncer'] = pgbouncer === undefined ? 0 : procCpu(pgbouncer.pid);
  out['calm PG'] = server(pgs.calm.postmasterPid());
  return out;
}

function cpuDelta(a: Record<string, number>, b: Record<string, number>, seconds: number): Cpu {
  const out: Record<string, number> = {};
  for (const k of Object.keys(b)) out[k] = ((b[k] ?? 0) - (a[k] ?? 0)) / seconds;
  return out;
}

interface Pair {
  readonly idle: number;
  readonly storm: number;
  /** Median ms straight to the calm server in the same windows (NaN where the calm client is this process). */
  readonly idleDirect: number;
  readonly stormDirect: number;
  readonly idleTimers: Timers;
  readonly stormTimers: Timers;
  readonly cpu: Cpu;
  readonly idleCpu: Cpu;
  readonly stormConnPerS: number;
  readonly stormRefusedPerS: number;
  readonly failed: number;
}

/** A window of the calm tenant's connects: here, or by the PROBE_CLIENT `prober` on its emulated host. */
async function window(d: Deployment, prober?: { readonly p: Started; n: number }): Promise<{ probes: Probe[]; direct: number[]; seconds: number }> {
  const t = performance.now();
  if (prober !== undefined) {
    const n = ++prober.n;
    process.kill(prober.p.pid, 'SIGUSR1');
    for (const end = Date.now() + 120_000; Date.now() < end; await sleep(10)) {
      const w = readFileSync(prober.p.logFile, 'utf8').split('\n').map((l) => probeWindow(l, n)).find((x) => x !== undefined);
      if (w !== undefined) return { probes: w.probes, direct: w.direct, seconds: (performance.now() - t) / 1_000 };
    }
    throw new Error(`the calm client (${prober.p.logFile}) printed no window ${n} within 120 s`);
  }
  const probes: Probe[] = [];
  for (let i = 0; i < PROBES; i++) probes.push(await probe(d.port));
  return { probes, direct: [], seconds: (performance.now() - t) / 1_000 };
}

async function pair(d: Deployment, kind: Kind, place: Place, procs: Procs, pgs: Record<'stormy' | 'calm', BenchPostgres>, deps: readonly Deployment[]): Promise<Pair> {
  // Emulated hosts (bench/src/cpu-host.ts): the servers moved in, the calm client started on its host.
  const hosts = place === 'hosts' || pooled(place) ? openStormHosts() : undefined;
  if (hosts !== undefined) openedHosts.push(...Object.values(hosts));
  const router = place === 'pooler' ? openRouterHost() : undefined;
  if (router !== undefined) {
    openedHosts.push(router);
    router.add(d.up.pid);
  }
  if (pooled(place) && pgbouncer !== undefined) hosts?.stormyPg.add(pgbouncer.pid);
  // The `cgroup` place: the storm (and for an admitted one the stormy server) at a small weight, no quota.
  const group = place === 'cgroup' && cpuHostsAvailable() ? openCpuHost('storm-shares', Infinity, { shares: STORM_SHARES }) : undefined;
  if (group !== undefined) openedHosts.push(group);
  let prober: { readonly p: Started; n: number } | undefined;
  if (hosts !== undefined) {
    hosts.stormyPg.add(pgs.stormy.postmasterPid());
    hosts.calmPg.add(pgs.calm.postmasterPid());
    // Each connect through the router followed by the same straight to the calm server.
    prober = { p: procs.start(`calm-client-${++probers}`, ...hosts.calm.command(process.execPath, ['-e', PROBE_CLIENT, String(d.port), 'calm', 'postgres', String(PROBES), String(PG_PORTS.calm)])), n: 0 };
    for (const end = Date.now() + 30_000; !readFileSync(prober.p.logFile, 'utf8').includes('probing'); await sleep(10)) {
      if (Date.now() > end) throw new Error(`the calm client did not start: ${readFileSync(prober.p.logFile, 'utf8')}`);
    }
    await window(d, prober); // warm up
  }
  newLogLines(d);
  const c0 = cpuSnapshot(deps, undefined, pgs);
  const idle = await window(d, prober);
  const c1 = cpuSnapshot(deps, undefined, pgs);
  const idleLog = readLog(newLogLines(d), new Set(idle.probes.map((p) => p.port)));

  const stormyPg = pgs.stormy.postmasterPid();
  const nice = place === 'nice' ? ['nice', '-n', '19'] : [];
  const [cmd, ...args] = kind === 'refused'
    ? [...nice, process.execPath, '-e', STORM_CLIENT, String(d.port), String(LOOPS), 'stormy']
    : [...nice, join(PGBIN, 'pgbench'), '-n', '-C', '-c', String(LOOPS), '-j', '2', '-T', '600', '-f', join(procs.runDir, 'select1.sql'), '-h', '127.0.0.1', '-p', String(d.port), '-U', 'postgres', pooled(place) ? 'pooled' : 'busy'];
  if (kind === 'admitted' && place === 'nice') {
    await mustRun('renice', ['-n', '19', '-p', String(stormyPg)]);
    lowestAutogroup(stormyPg);
  }
  if (kind === 'admitted') group?.add(stormyPg);
  const stormHost = hosts?.storm ?? group;
  const storm = procs.start(`storm-${kind}`, ...(stormHost === undefined ? [cmd as string, args] as const : stormHost.command(cmd as string, args)));
  if (place === 'nice') lowestAutogroup(storm.pid);
  if (kind === 'refused') {
    const end = Date.now() + 10_000;
    while (!readFileSync(storm.logFile, 'utf8').includes('storming') && Date.now() < end) await sleep(10);
  }
  await sleep(700); // the storm under way (and the rate's previous second full)
  newLogLines(d);
  const s0 = cpuSnapshot(deps, storm.pid, pgs);
  const during = await window(d, prober);
  const s1 = cpuSnapshot(deps, storm.pid, pgs);
  const stormLog = readLog(newLogLines(d), new Set(during.probes.map((p) => p.port)));
  await procs.stop(storm, 5_000);
  let failed = 0;
  if (kind === 'refused') failed = stormCounts(readFileSync(storm.logFile, 'utf8')).failed;
  if (kind === 'admitted' && place === 'nice') {
    await mustRun('renice', ['-n', '0', '-p', String(stormyPg)]);
    lowestAutogroup(stormyPg, 0);
  }
  if (prober !== undefined) await procs.stop(prober.p, 5_000);
  for (const h of [...Object.values(hosts ?? {}), ...(group === undefined ? [] : [group]), ...(router === undefined ? [] : [router])]) h.close(); // back to the root group
  await sleep(300); // the storm's last connections closed before the next idle window
  return {
    idle: median(idle.probes.map((p) => p.ms)),
    storm: median(during.probes.map((p) => p.ms)),
    idleDirect: median(idle.direct),
    stormDirect: median(during.direct),
    idleTimers: idleLog.timers,
    stormTimers: stormLog.timers,
    idleCpu: cpuDelta(c0, c1, idle.seconds),
    cpu: cpuDelta(s0, s1, during.seconds),
    stormConnPerS: (stormLog.stormRouted + stormLog.stormRefused) / during.seconds,
    stormRefusedPerS: stormLog.stormRefused / during.seconds,
    failed,
  };
}

async function main(): Promise<void> {
  const started = new Date().toISOString();
  const scratch = mkdtempSync(join(tmpdir(), 'pgroute-storm-bench-'));
  chmodSync(scratch, 0o755);
  const procs = new Procs(scratch);
  const pgs = {
    stormy: new BenchPostgres(join(scratch, 'pg-stormy'), PG_PORTS.stormy, log),
    calm: new BenchPostgres(join(scratch, 'pg-calm'), PG_PORTS.calm, log),
  };
  if (PLACES.includes('cgroup') && !cpuHostsAvailable()) log('no cgroup v1 cpu controller: the cgroup variant runs like `same`');
  const deps: Deployment[] = [];
  try {
    for (const [name, p] of Object.entries(pgs)) {
      mkdirSync(join(scratch, `pg-${name}`), { recursive: true });
      await p.start();
    }
    await mustRun(join(PGBIN, 'createdb'), ['-h', '127.0.0.1', '-p', String(PG_PORTS.stormy), '-U', 'postgres', 'stormy']);
    await mustRun(join(PGBIN, 'createdb'), ['-h', '127.0.0.1', '-p', String(PG_PORTS.stormy), '-U', 'postgres', 'busy']);
    await mustRun(join(PGBIN, 'createdb'), ['-h', '127.0.0.1', '-p', String(PG_PORTS.calm), '-U', 'postgres', 'calm']);
    writeFileSync(join(scratch, 'select1.sql'), 'SELECT 1;\n');
    const tenants = join(scratch, 'tenants.yaml');
    writeFileSync(tenants, JSON.stringify({ tenants: [
      { id: 'stormy', host: '127.0.0.1', port: PG_PORTS.stormy, maxConnectionRate: STORM_RATE },
      { id: 'busy', host: '127.0.0.1', port: PG_PORTS.stormy },
      { id: 'calm', host: '127.0.0.1', port: PG_PORTS.calm },
      { id: 'pooled', host: '127.0.0.1', port: PGBOUNCER_PORT, maxConnectionRate: POOLED_RATE },
    ] }));
    if (PLACES.some(pooled)) {
      pgbouncer = await startPgBouncer({ port: PGBOUNCER_PORT, databases: { pooled: { host: '127.0.0.1', port: PG_PORTS.stormy, dbname: 'busy', user: 'postgres' } }, poolSize: 2 });
      log(`PgBouncer up on :${PGBOUNCER_PORT} (pid ${pgbouncer.pid})`);
    }
    for (const [i, dep] of DEPLOYMENTS.entries()) {
      const b = BASE + i * 10;
      const stateDir = join(scratch, `state-${dep.name}`);
      const up = procs.start(`up-${dep.name}`, process.execPath, [
        CLI, 'up', '--tenants', tenants, '--state-dir', stateDir, '--bind', '127.0.0.1', '--port', String(b),
        '--agent-port', String(b + 1), '--agent-http-port', String(b + 2), '--stats-port', String(b + 3), '--log', 'all', ...dep.flags,
      ], { ...process.env, PGROUTE_DRAIN_DELAY: '0s' });
      const end = Date.now() + 60_000;
      while (!readFileSync(up.logFile, 'utf8').includes('pgroute is running')) {
        if (Date.now() > end) throw new Error(`pgroute up (${dep.name}) did not start:\n${readFileSync(up.logFile, 'utf8')}`);
        await sleep(50);
      }
      deps.push({ name: dep.name, port: b, up, logFile: up.logFile, logOffset: 0 });
      for (let k = 0; k < 20; k++) await probe(b); // warm
    }

    const variants = deps.flatMap((d) => KINDS.flatMap((k) => PLACES.map((p) => ({ d, kind: k, place: p }))));
    const pairs = new Map<string, Pair[]>();
    for (let r = 0; r < ROUNDS; r++) {
      const shift = (r * 5) % variants.length;
      const order = [...variants.slice(shift), ...variants.slice(0, shift)];
      for (const v of order) {
        const key = `${v.d.name} ${v.kind} ${v.place}`;
        const p = await pair(v.d, v.kind, v.place, procs, pgs, deps);
        log(`round ${r + 1}/${ROUNDS} ${key}: idle ${p.idle.toFixed(1)} ms, storm ${p.storm.toFixed(1)} ms (x${(p.storm / p.idle).toFixed(2)}), storm ${p.stormConnPerS.toFixed(0)} conn/s`);
        pairs.set(key, [...(pairs.get(key) ?? []), p]);
      }
    }
    const text = report(started, pairs, cpuHostsAvailable());
    process.stdout.write(`${text}\n`);
    writeFileSync(join(ROOT, 'bench', 'results', RESULT), text);
    for (const d of deps) await procs.stop(d.up, 15_000);
  } finally {
    await procs.stopAll();
    await pgbouncer?.stop();
    for (const h of openedHosts) h.close();
    for (const p of Object.values(pgs)) await p.stop();
    killRunning();
    if (process.env['BENCH_KEEP'] !== '1') rmSync(scratch, { recursive: true, force: true });
    else log(`scratch kept: ${scratch}`);
  }
}

function report(started: string, pairs: ReadonlyMap<string, readonly Pair[]>, cgroup: boolean): string {
  const f1 = (x: number): string => (Number.isFinite(x) ? x.toFixed(1) : '-');
  const f2 = (x: number): string => (Number.isFinite(x) ? x.toFixed(2) : '-');
  const pct = (x: number): string => (Number.isFinite(x) ? `${x >= 1 ? '+' : ''}${((x - 1) * 100).toFixed(0)} %` : '-');
  const rows: string[] = [];
  const cpuRows: string[] = [];
  const timerRows: string[] = [];
  const roles = ['storm client', 'haproxy', 'pgroute (agent)', 'stormy PG', 'pgbouncer', 'calm PG', 'bench', 'machine'];
  for (const [key, ps] of pairs) {
    const ratios = ps.map((p) => p.storm / p.idle);
    const sorted = [...ratios].sort((a, b) => a - b);
    const direct = ps.map((p) => p.stormDirect / p.idleDirect);
    const routerPart = ps.map((p, i) => p.storm / p.idle / (direct[i] as number));
    rows.push(`| ${key} | **${pct(median(ratios))}** | ${sorted.map(pct).join(', ')} | ${pct(median(direct))} | ${pct(median(routerPart))} | ${f1(median(ps.map((p) => p.idle)))} | ${f1(median(ps.map((p) => p.storm)))} | ${median(ps.map((p) => p.stormConnPerS)).toFixed(0)} | ${median(ps.map((p) => p.stormRefusedPerS)).toFixed(0)} | ${ps.reduce((a, p) => a + p.failed, 0)} |`);
    cpuRows.push(`| ${key} | ${roles.map((r) => `${f2(median(ps.map((p) => p.idleCpu[r] ?? 0)))} → ${f2(median(ps.map((p) => p.cpu[r] ?? 0)))}`).join(' | ')} |`);
    const t = (sel: (p: Pair) => number[]): string => f1(median(ps.flatMap(sel)));
    timerRows.push(`| ${key} | ${t((p) => p.idleTimers.spoe)} → ${t((p) => p.stormTimers.spoe)} | ${t((p) => p.idleTimers.tc)} → ${t((p) => p.stormTimers.tc)} | ${t((p) => p.idleTimers.tt)} → ${t((p) => p.stormTimers.tt)} |`);
  }
  const machine = readFileSync('/proc/loadavg', 'utf8').trim();
  return [
    `# Storm isolation: the calm tenant\'s connect latency during another tenant\'s storm (${RESULT.includes('session7') ? 'session 7' : 'session 8'}, #12)`,
    '',
    `bench/storm.sh ${ROUNDS} ${PROBES}, started ${started}; ${ROUNDS} rounds of paired windows (idle, then storm), variants in rotating order, ${PROBES} calm connects per window; 2 cores, loopback, HAProxy 2.6, PostgreSQL 15 (the stormy tenants on one server, calm on another); load average at the end: ${loadavg().map((x) => x.toFixed(2)).join(' ')} (${machine}). cgroup v1 cpu: ${cgroup ? 'yes' : 'no (cgroup rows ran like same)'}.`,
    '',
    'Variant: `<deployment> <storm> <where the storm runs>`. Storms: `refused` = 8 reconnect loops (node) on `stormy`, limited to 10 connections/s, so nearly every connection is refused over the rate; `admitted` = pgbench -C -c 8 -j 2 (SELECT 1) on `busy`, default limits, every connection admitted. Where: `same` = normal priority; `nice` = nice -n 19 and its autogroup\'s nice 19 (autogroup scheduling is on here: nice alone only orders processes of one session; admitted: the stormy PostgreSQL lowered the same way), i.e. the storm stands for other machines; `cgroup` (when run) = a CPU cgroup with cpu.shares 2; `hosts` = emulated hosts (bench/src/storm-client.ts STORM_HOSTS, bench/src/cpu-host.ts): the stormy PostgreSQL on a host of 0.5 CPU and the storm client on one of 0.2 (hard cgroup CPU quotas, ordinary weight), the calm PostgreSQL (0.9 CPU) and the calm client (0.3, a node-postgres process of its own instead of this process) on hosts that get their CPU first (cpu.shares 10240); HAProxy and the agent stay in the root group with everything else on the machine (the router host); `pooler-root` = `hosts`, and the admitted storm goes to tenant `pooled` (rate limit 5000/s, above the default 1000), the stormy PostgreSQL behind its own PgBouncer 1.18 (transaction pooling, 2 server connections, on the stormy server\'s host): no fork per connection; `pooler` = `pooler-root` with HAProxy and the pgroute process on a router host of their own (ROUTER_HOST: no quota, cpu.shares 10240, their CPU first as a machine of their own).',
    '',
    `Deployments (each its own \`pgroute up --log all\`): ${DEPLOYMENTS.map((d) => `\`${d.name}\` = ${d.flags.length === 0 ? 'no extra flag' : `\`${d.flags.join(' ')}\``}`).join('; ')}.`,
    '',
    '## Ratios first: calm connect time, storm / idle (median of the pairs\' ratios)',
    '',
    '| variant | storm vs idle | every pair | straight to the calm server, storm vs idle | the router\'s part (through / straight) | idle median ms | storm median ms | storm conn/s at the router | of which refused /s | storm closes without answer |',
    '|---|---|---|---|---|---|---|---|---|---|',
    ...rows,
    '',
    '## Where the CPU goes (cores busy, median of windows: idle → storm)',
    '',
    `| variant | ${roles.join(' | ')} |`,
    `|---|${roles.map(() => '---').join('|')}|`,
    ...cpuRows,
    '',
    '## HAProxy\'s timers of the calm connections (ms, median: idle → storm)',
    '',
    '| variant | spoe_ms (agent\'s answer) | Tc (server connect) | Tt (whole session) |',
    '|---|---|---|---|',
    ...timerRows,
    '',
    '## Reading it',
    '',
    '- A pair is an idle window and the storm window right after it, so a drift of the machine\'s load (other work on the same cores) moves both sides alike; the first table\'s figure is the median of the pairs\' ratios, and every pair is listed.',
    '- CPU is in cores (CPU seconds per second of window) from /proc: `pgroute (agent)` is the `pgroute up` process (agent and generator), `stormy PG` / `calm PG` a server with its backends (exited ones included), `machine` every process on it, ours or not.',
    '- HAProxy counts its timers in whole milliseconds: `spoe_ms` 0 means the agent answered within the millisecond, so the calm tenant\'s decision did not wait behind the storm\'s.',
    '- Storm conn/s and refusals are counted from HAProxy\'s log (`--log all`) during the storm windows.',
    '- `nice` lowers the storm to the least CPU share the scheduler gives: on a machine whose cores are already busy (see `machine`) that starves it (few conn/s), which then says nothing about a storm from a machine of its own.',
    '- `hosts`, `pooler*`: each calm connect through the router is followed by the same connect straight to the calm server (no router): its ratio is what the calm server alone did in the same windows, and the router\'s part is the quotient of the two ratios, pair by pair.',
    '- `hosts`: the calm connects are made by a node-postgres process on the calm client\'s host (PROBE_CLIENT in bench/src/storm-client.ts), the same connect as this process makes for the other variants; its CPU is not in `bench`. The storm\'s rate there is what its 0.5-CPU host forks at ~35 ms of CPU per backend on this VM, at ordinary weight on a loaded machine.',
    '',
  ].join('\n');
}

main().catch((err: unknown) => {
  console.error(err);
  killRunning();
  process.exit(1);
});
