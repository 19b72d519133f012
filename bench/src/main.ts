// pgroute benchmarks: every path side by side in one run (runs on these machines vary by 15-30%,
// so only ratios within one run count). Started by bench/run.sh, which builds everything first.
//
//   (a) router-only connection rate (concurrency 8) and connect latency (concurrency 1) against a
//       fake PostgreSQL that answers at once (bench/c/fakepg.c), load from bench/c/connload.c;
//   (b) real PostgreSQL 15: pgbench -S with a new connection per transaction (-C) and persistent;
//   (c) agent decisions/s on one core: a synthetic SPOP client against `pgroute agent`.
//
// Paths: direct PostgreSQL, HAProxy static backend, HAProxy + Lua router (bench/baselines), pgroute.
//
// usage: node dist-bench/bench/src/main.js [quick] [--only a,b,c] [--no-profile]
// env:   BENCH_RUN_DIR (scratch dir made by run.sh), BENCH_BIN_DIR (compiled C programs)

import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { summariseProfile, type ProfileSummary } from './cpuprofile.js';
import { machineInfo } from './machine.js';
import { BenchPostgres, PGBIN, pgbenchFigures } from './postgres.js';
import { machineCpu, mustRun, procCpu, processTree, Procs, run, sleep, type Started } from './procs.js';
import { waitForTcp } from '../../generator/src/index.js';
import { renderMarkdown, renderText, type Results } from './report.js';
import { freeBase, logger, resultStamp, runDirs, runMain, treeName, writeResults } from './runner.js';

export const PATHS = ['direct', 'static', 'lua', 'pgroute'] as const;
export type PathName = (typeof PATHS)[number];

const PORT = {
  static: 29001,
  lua: 29002,
  pgroute: 29003,
  agent: 29004,
  agentHttp: 29005,
  tenant: 29010, // PostgreSQL during (b), the fake backend during (a)
  soloAgent: 29020,
  soloAgentHttp: 29021,
} as const;
const pathPort: Record<PathName, number> = { direct: PORT.tenant, static: PORT.static, lua: PORT.lua, pgroute: PORT.pgroute };

// Compiled to dist-bench/bench/src/ (bench/tsconfig.json): the repository is three levels up.
const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
/** run.sh benchmarks a snapshot of dist/ and haproxy/ taken at the start of the run. */
const CLI = join(process.env.BENCH_PGROUTE_ROOT ?? ROOT, 'dist/cli/pgroute.js');

// ---- options ----
const argv = process.argv.slice(2);
const quick = argv.includes('quick');
const onlyIdx = argv.indexOf('--only');
const only = new Set((onlyIdx >= 0 ? (argv[onlyIdx + 1] ?? '') : 'a,b,c').split(',').map((s) => s.trim()));
const profile = !quick && !argv.includes('--no-profile');
const { runDir, binDir } = runDirs('bench/run.sh');

export interface Plan {
  readonly rounds: number; // (a): each path runs once per round, the order rotating between rounds
  readonly rateSeconds: number;
  readonly latencySeconds: number;
  readonly warmupSeconds: number;
  readonly concurrency: number;
  readonly pgbenchSeconds: number;
  readonly pgbenchRounds: number;
  readonly pgbenchClients: number;
  readonly spopSeconds: number;
  readonly spopInflight: number;
  readonly profileSeconds: number;
}
const plan: Plan = quick
  ? { rounds: 1, rateSeconds: 2, latencySeconds: 1.5, warmupSeconds: 0.5, concurrency: 8, pgbenchSeconds: 3, pgbenchRounds: 1, pgbenchClients: 8, spopSeconds: 3, spopInflight: 64, profileSeconds: 0 }
  : { rounds: 2, rateSeconds: 5, latencySeconds: 3, warmupSeconds: 1, concurrency: 8, pgbenchSeconds: 10, pgbenchRounds: 2, pgbenchClients: 8, spopSeconds: 10, spopInflight: 64, profileSeconds: profile ? 5 : 0 };

const procs = new Procs(runDir);
const log = logger('bench');

// ---- the pieces ----

interface ConnloadResult {
  ok: number;
  errors: number;
  errConnect: number;
  errRefused: number;
  errEof: number;
  errStall: number;
  cpuSeconds: number;
  seconds: number;
  rate: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  meanMs: number;
  maxMs: number;
}

async function connload(port: number, concurrency: number, seconds: number, warmup: number, user: string, db = 'bench'): Promise<ConnloadResult> {
  const r = await mustRun(join(binDir, 'connload'), [String(port), String(concurrency), String(seconds), String(warmup), user, db], {
    timeoutMs: (seconds + warmup + 30) * 1000,
  });
  return JSON.parse(r.stdout) as ConnloadResult;
}

/** Waits until a connection through `port` reaches ReadyForQuery. */
async function probe(name: string, port: number, user: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last: ConnloadResult | undefined;
  while (Date.now() < deadline) {
    last = await connload(port, 1, 0.2, 0, user);
    if (last.ok > 0 && last.errors === 0) return;
    await sleep(250);
  }
  throw new Error(`path ${name} (port ${port}) does not answer: ${JSON.stringify(last)}`);
}

const tenantsFile = join(runDir, 'tenants.yaml');

interface Stack {
  baseline: Started;
  pgroute: Started;
}

async function startStack(): Promise<Stack> {
  writeFileSync(tenantsFile, `tenants:\n  - id: bench\n    host: 127.0.0.1\n    port: ${PORT.tenant}\n`);
  const env = {
    ...process.env,
    BENCH_LUA: join(ROOT, 'bench/baselines/lua-router.lua'),
    BENCH_STATIC_PORT: String(PORT.static),
    BENCH_LUA_PORT: String(PORT.lua),
    BENCH_TENANT_PORT: String(PORT.tenant),
    BENCH_PIDFILE: join(runDir, 'baseline-haproxy.pid'),
  };
  const cfg = join(ROOT, 'bench/baselines/haproxy-baseline.cfg');
  await mustRun('haproxy', ['-c', '-q', '-f', cfg], { env });
  const baseline = procs.start('baseline-haproxy', 'haproxy', ['-db', '-f', cfg], env);
  await waitForTcp('127.0.0.1', PORT.lua, 10_000, baseline.exited);
  log(`baseline HAProxy up (static :${PORT.static}, lua :${PORT.lua}), pid ${baseline.pid}`);

  const pgroute = await startPgroute('pgroute-up', []);
  return { baseline, pgroute };
}

async function startPgroute(name: string, nodeFlags: readonly string[]): Promise<Started> {
  const pgroute = procs.start(name, 'node', [
    ...nodeFlags,
    CLI, 'up',
    '--tenants', tenantsFile,
    '--port', String(PORT.pgroute),
    '--bind', '127.0.0.1',
    '--agent-port', String(PORT.agent),
    '--agent-http-port', String(PORT.agentHttp),
    '--stats-port', '0',
    '--log', 'off',
    '--state-dir', join(runDir, 'pgroute-state'),
  ]);
  await waitForTcp('127.0.0.1', PORT.pgroute, 30_000, pgroute.exited);
  log(`pgroute up (:${PORT.pgroute}, agent :${PORT.agent}), pid ${pgroute.pid}`);
  return pgroute;
}

/**
 * Restarts pgroute under `node --cpu-prof` and loads it like the rate runs of (a): where does the
 * pgroute process (CLI + agent) spend its CPU when HAProxy asks it one decision at a time?
 */
async function profileUp(stack: Stack): Promise<{ rate: number; profile: ProfileSummary; file: string } | null> {
  await procs.stop(stack.pgroute);
  const dir = join(runDir, 'cpuprofile-up');
  mkdirSync(dir, { recursive: true });
  const spawned = Date.now();
  stack.pgroute = await startPgroute('pgroute-up-profiled', ['--cpu-prof', `--cpu-prof-dir=${dir}`]);
  await probe('pgroute', PORT.pgroute, 'app');
  const skipMs = Date.now() - spawned + plan.warmupSeconds * 1000;
  const r = await connload(PORT.pgroute, plan.concurrency, plan.profileSeconds, plan.warmupSeconds, 'app');
  await procs.stop(stack.pgroute);
  const file = readdirSync(dir).find((f) => f.endsWith('.cpuprofile'));
  if (file === undefined) {
    log('(a) no .cpuprofile written by pgroute up');
    return null;
  }
  log(`(a) profiled pgroute: ${Math.round(r.rate)} conn/s under the profiler`);
  return { rate: Math.round(r.rate), profile: summariseProfile(join(dir, file), skipMs), file: join(dir, file) };
}

// ---- PostgreSQL ----

const postgres = new BenchPostgres(join(runDir, 'pg'), PORT.tenant, log); // owned by postgres: data, log and socket

// ---- CPU attribution ----

interface CpuProbe {
  readonly names: Record<string, () => number[]>;
}

function cpuSnapshot(p: CpuProbe): { per: Record<string, number>; machine: { busy: number; total: number } } {
  const per: Record<string, number> = {};
  for (const [name, pids] of Object.entries(p.names)) per[name] = pids().reduce((a, pid) => a + procCpu(pid), 0);
  return { per, machine: machineCpu() };
}

// ---- (b) pgbench ----

export interface PgbenchRow {
  readonly path: PathName;
  readonly mode: 'connect' | 'persistent';
  readonly tps: number;
  /** tps of each round (merged rows only). */
  readonly roundTps?: number[];
  readonly connMs: number | null;
  readonly latencyMs: number | null;
  readonly failed: number;
  readonly transactions: number;
}

async function pgbench(path: PathName, mode: 'connect' | 'persistent'): Promise<PgbenchRow> {
  const args = ['-h', '127.0.0.1', '-p', String(pathPort[path]), '-U', 'postgres', '-n', '-S', ...(mode === 'connect' ? ['-C'] : []), '-c', String(plan.pgbenchClients), '-T', String(plan.pgbenchSeconds), 'bench'];
  const r = await run(join(PGBIN, 'pgbench'), args, { env: { ...process.env, PGSSLMODE: 'prefer', PGCONNECT_TIMEOUT: '10' }, timeoutMs: (plan.pgbenchSeconds + 60) * 1000 });
  return pgbenchFigures(r, path, mode);
}

/** One row per path and mode: tps averaged over rounds (each round ran every path once). */
function mergePgbench(runs: readonly PgbenchRow[]): PgbenchRow[] {
  const out: PgbenchRow[] = [];
  const avg = (xs: (number | null)[]): number | null => {
    const v = xs.filter((x): x is number => x !== null);
    return v.length === 0 ? null : Number((v.reduce((a, b) => a + b, 0) / v.length).toFixed(3));
  };
  for (const mode of ['connect', 'persistent'] as const) {
    for (const path of PATHS) {
      const rs = runs.filter((r) => r.path === path && r.mode === mode);
      if (rs.length === 0) continue;
      out.push({
        path,
        mode,
        tps: avg(rs.map((r) => r.tps)) ?? 0,
        roundTps: rs.map((r) => Math.round(r.tps)),
        connMs: avg(rs.map((r) => r.connMs)),
        latencyMs: avg(rs.map((r) => r.latencyMs)),
        failed: rs.reduce((a, r) => a + r.failed, 0),
        transactions: rs.reduce((a, r) => a + r.transactions, 0),
      });
    }
  }
  return out;
}

/** Rotates the path order by `k`, so no path always runs first or last. */
function rotated(k: number): PathName[] {
  return PATHS.map((_, i) => PATHS[(i + k) % PATHS.length] as PathName);
}

// ---- (a) router-only ----

export interface RateRow {
  readonly path: PathName;
  readonly rate: number;
  readonly ok: number;
  readonly errors: number;
  readonly seconds: number;
  readonly roundRates: number[];
  /** CPU microseconds per connection, by process group, summed over rounds. */
  readonly cpuUsPerConn: Record<string, number>;
  /** Share of both cores busy during the runs; `othersPct` = busy time not in any process of ours. */
  readonly machineBusyPct: number;
  readonly othersPct: number;
}

export interface LatencyRow {
  readonly path: PathName;
  readonly p50Ms: number;
  readonly p90Ms: number;
  readonly p99Ms: number;
  readonly meanMs: number;
  readonly ok: number;
  readonly errors: number;
  readonly roundP50s: number[];
}

async function routerOnly(stack: Stack, fake: Started): Promise<{ rate: RateRow[]; latency: LatencyRow[] }> {
  const tree = (pid: number) => () => processTree(pid);
  const cpuProbe: CpuProbe = {
    names: {
      fakepg: () => [fake.pid],
      'baseline haproxy': tree(stack.baseline.pid),
      'pgroute agent (node)': () => [stack.pgroute.pid],
      'pgroute haproxy': () => processTree(stack.pgroute.pid).filter((p) => p !== stack.pgroute.pid),
    },
  };
  const acc = new Map<PathName, { ok: number; errors: number; seconds: number; rates: number[]; cpu: Record<string, number>; client: number; busy: number; total: number }>();
  for (let round = 0; round < plan.rounds; round++) {
    for (const path of rotated(round)) {
      const before = cpuSnapshot(cpuProbe);
      const r = await connload(pathPort[path], plan.concurrency, plan.rateSeconds, plan.warmupSeconds, 'app');
      const after = cpuSnapshot(cpuProbe);
      const a = acc.get(path) ?? { ok: 0, errors: 0, seconds: 0, rates: [], cpu: {}, client: 0, busy: 0, total: 0 };
      a.ok += r.ok;
      a.errors += r.errors;
      a.seconds += r.seconds;
      a.rates.push(Math.round(r.rate));
      // The snapshots include the warm-up; scale them to the measured window.
      const scale = r.seconds / (r.seconds + plan.warmupSeconds);
      for (const k of Object.keys(after.per)) a.cpu[k] = (a.cpu[k] ?? 0) + ((after.per[k] ?? 0) - (before.per[k] ?? 0)) * scale;
      a.client += r.cpuSeconds;
      a.busy += (after.machine.busy - before.machine.busy) * scale;
      a.total += (after.machine.total - before.machine.total) * scale;
      acc.set(path, a);
      log(`(a) round ${round + 1} ${path}: ${Math.round(r.rate)} conn/s, ${r.errors} errors`);
    }
  }
  const rate: RateRow[] = PATHS.map((path) => {
    const a = acc.get(path);
    if (a === undefined) throw new Error(`no rate for ${path}`);
    const per: Record<string, number> = {};
    let ours = a.client;
    for (const [k, v] of Object.entries(a.cpu)) {
      ours += v;
      if (v / a.seconds > 0.01) per[k] = Number(((v / Math.max(a.ok, 1)) * 1e6).toFixed(1));
    }
    per['connload (client)'] = Number(((a.client / Math.max(a.ok, 1)) * 1e6).toFixed(1));
    return {
      path,
      rate: Math.round(a.ok / a.seconds),
      ok: a.ok,
      errors: a.errors,
      seconds: Number(a.seconds.toFixed(2)),
      roundRates: a.rates,
      cpuUsPerConn: per,
      machineBusyPct: Number(((100 * a.busy) / Math.max(a.total, 1e-9)).toFixed(1)),
      othersPct: Number(((100 * Math.max(0, a.busy - ours)) / Math.max(a.total, 1e-9)).toFixed(1)),
    };
  });

  const lat = new Map<PathName, ConnloadResult[]>();
  for (let round = 0; round < plan.rounds; round++) {
    for (const path of rotated(round + 1)) {
      const r = await connload(pathPort[path], 1, plan.latencySeconds, plan.warmupSeconds / 2, 'app');
      lat.set(path, [...(lat.get(path) ?? []), r]);
      log(`(a) latency round ${round + 1} ${path}: p50 ${r.p50Ms.toFixed(3)} ms, p99 ${r.p99Ms.toFixed(3)} ms`);
    }
  }
  const mean = (xs: number[]): number => Number((xs.reduce((a, b) => a + b, 0) / Math.max(xs.length, 1)).toFixed(4));
  const latency: LatencyRow[] = PATHS.map((path) => {
    const rs = lat.get(path) ?? [];
    return {
      path,
      p50Ms: mean(rs.map((r) => r.p50Ms)),
      p90Ms: mean(rs.map((r) => r.p90Ms)),
      p99Ms: mean(rs.map((r) => r.p99Ms)),
      meanMs: mean(rs.map((r) => r.meanMs)),
      ok: rs.reduce((a, r) => a + r.ok, 0),
      errors: rs.reduce((a, r) => a + r.errors, 0),
      roundP50s: rs.map((r) => r.p50Ms),
    };
  });
  return { rate, latency };
}

// ---- (c) agent decisions/s ----

export interface AgentResult {
  readonly rate: number;
  readonly acks: number;
  readonly seconds: number;
  readonly inflight: number;
  readonly agentCpuFraction: number | null;
  readonly perCoreRate: number | null;
  readonly clientCpuFraction: number;
  readonly sampleAck: unknown;
  /** Share of both cores busy in processes other than the agent and the client. */
  readonly othersPct: number | null;
  readonly profile: ProfileSummary | null;
  readonly profileFile: string | null;
}

interface SpopClientResult {
  acks: number;
  seconds: number;
  rate: number;
  agentCpuSeconds: number | null;
  agentCpuFraction: number | null;
  clientCpuFraction: number;
  sampleAck: unknown;
  error: string | null;
  othersPct?: number;
}

async function agentBench(): Promise<AgentResult> {
  const stateDir = join(runDir, 'agent-state');
  writeFileSync(tenantsFile, `tenants:\n  - id: bench\n    host: 127.0.0.1\n    port: ${PORT.tenant}\n`);
  await mustRun('node', [CLI, 'generate', '--tenants', tenantsFile, '--state-dir', stateDir, '--port', String(PORT.pgroute), '--bind', '127.0.0.1', '--agent-port', String(PORT.soloAgent), '--stats-port', '0', '--log', 'off']);
  const routes = join(stateDir, 'routes.json');
  const client = join(ROOT, 'dist-bench/bench/src/spop-client.js');
  const agentArgs = [CLI, 'agent', '--routes', routes, '--port', String(PORT.soloAgent), '--http-port', String(PORT.soloAgentHttp)];

  const once = async (name: string, nodeFlags: string[], seconds: number): Promise<{ r: SpopClientResult; agent: Started; warmMs: number }> => {
    const spawned = Date.now();
    const agent = procs.start(name, 'taskset', ['-c', '1', 'node', ...nodeFlags, ...agentArgs]);
    await waitForTcp('127.0.0.1', PORT.soloAgent, 15_000, agent.exited);
    const warmMs = Date.now() - spawned + 1_300; // start-up, client start and its 1 s warm-up
    const m0 = machineCpu();
    const out = await run('taskset', ['-c', '0', 'node', client, '--port', String(PORT.soloAgent), '--seconds', String(seconds), '--warmup', '1', '--inflight', String(plan.spopInflight), '--dport', String(PORT.pgroute), '--agent-pid', String(agent.pid)], { timeoutMs: (seconds + 30) * 1000 });
    let r: SpopClientResult;
    try {
      r = JSON.parse(out.stdout) as SpopClientResult;
    } catch {
      throw new Error(`SPOP client failed (${out.code}): ${out.stderr}${out.stdout}`);
    }
    if (r.error !== null || out.code !== 0) throw new Error(`SPOP client: ${r.error ?? out.stderr}`);
    const m1 = machineCpu();
    // Busy time not spent in the agent or the client (whole client process lifetime: ~ +1.5 s).
    const ours = (r.agentCpuSeconds ?? 0) + r.clientCpuFraction * (seconds + 1.5);
    r.othersPct = Number(((100 * Math.max(0, m1.busy - m0.busy - ours)) / Math.max(m1.total - m0.total, 1e-9)).toFixed(1));
    return { r, agent, warmMs };
  };

  const { r, agent } = await once('agent', [], plan.spopSeconds);
  await procs.stop(agent);
  log(`(c) ${Math.round(r.rate)} decisions/s, agent CPU ${r.agentCpuFraction ?? '?'} of a core`);

  let prof: ProfileSummary | null = null;
  let profileFile: string | null = null;
  if (plan.profileSeconds > 0) {
    try {
      ({ prof, profileFile } = await profileAgent(once));
    } catch (err) {
      log(`(c) profiled pass failed: ${(err as Error).message}`);
    }
  }
  const perCore = r.agentCpuFraction !== null && r.agentCpuFraction > 0.05 ? Math.round(r.rate / Math.min(1, r.agentCpuFraction)) : null;
  return {
    rate: Math.round(r.rate),
    acks: r.acks,
    seconds: r.seconds,
    inflight: plan.spopInflight,
    agentCpuFraction: r.agentCpuFraction,
    perCoreRate: perCore,
    clientCpuFraction: r.clientCpuFraction,
    sampleAck: r.sampleAck,
    othersPct: r.othersPct ?? null,
    profile: prof,
    profileFile,
  };
}

type Once = (name: string, nodeFlags: string[], seconds: number) => Promise<{ r: SpopClientResult; agent: Started; warmMs: number }>;

async function profileAgent(once: Once): Promise<{ prof: ProfileSummary | null; profileFile: string | null }> {
  let prof: ProfileSummary | null = null;
  let profileFile: string | null = null;
  {
    const dir = join(runDir, 'cpuprofile');
    mkdirSync(dir, { recursive: true });
    const p = await once('agent-profiled', ['--cpu-prof', `--cpu-prof-dir=${dir}`], plan.profileSeconds);
    await procs.stop(p.agent);
    const file = readdirSync(dir).find((f) => f.endsWith('.cpuprofile'));
    if (file === undefined) log('(c) no .cpuprofile written (did the agent exit cleanly on SIGTERM?)');
    else {
      profileFile = join(dir, file);
      prof = summariseProfile(profileFile, p.warmMs);
      log(`(c) profiled run: ${Math.round(p.r.rate)} decisions/s under the profiler; profile ${profileFile}`);
    }
  }
  return { prof, profileFile };
}

// ---- main ----

async function main(): Promise<void> {
  const started = new Date();
  const results: Results = {
    started: started.toISOString(),
    mode: quick ? 'quick' : 'full',
    plan,
    machine: await machineInfo(ROOT, PGBIN),
    rate: null,
    latency: null,
    pgbench: null,
    agent: null,
    upProfile: null,
    notes: [],
  };
  log(`mode ${results.mode}, sections ${[...only].join(',')}, run dir ${runDir}`);

  if (only.has('a') || only.has('b')) {
    let stack: Stack | undefined;
    try {
      if (only.has('b')) {
        await postgres.start();
        stack = await startStack();
        for (const p of PATHS) await probe(p, pathPort[p], 'postgres');
        const runs: PgbenchRow[] = [];
        for (let round = 0; round < plan.pgbenchRounds; round++) {
          for (const [k, mode] of (['connect', 'persistent'] as const).entries()) {
            for (const path of rotated(round + k * 2)) {
              const row = await pgbench(path, mode);
              runs.push(row);
              log(`(b) round ${round + 1} ${mode} ${path}: ${row.tps.toFixed(0)} tps`);
            }
          }
        }
        results.pgbench = mergePgbench(runs);
        await postgres.stop();
      }
      if (only.has('a')) {
        const fake = procs.start('fakepg', join(binDir, 'fakepg'), [String(PORT.tenant)]);
        await waitForTcp('127.0.0.1', PORT.tenant, 5_000, fake.exited);
        stack ??= await startStack();
        for (const p of PATHS) await probe(p, pathPort[p], 'app');
        const { rate, latency } = await routerOnly(stack, fake);
        results.rate = rate;
        results.latency = latency;
        if (plan.profileSeconds > 0) {
          try {
            results.upProfile = await profileUp(stack);
          } catch (err) {
            results.notes.push(`the profiled pgroute pass of (a) failed: ${(err as Error).message}`);
            log(`(a) profiled pass failed: ${(err as Error).message}`);
          }
        }
        await procs.stop(fake);
      }
    } finally {
      await postgres.stop();
      if (stack) {
        await procs.stop(stack.pgroute);
        await procs.stop(stack.baseline);
      }
    }
  }
  if (only.has('c')) results.agent = await agentBench();
  await procs.stopAll();

  results.finished = new Date().toISOString();
  const busiest = Math.max(...(results.rate ?? []).map((x) => x.othersPct), results.agent?.othersPct ?? 0);
  if (busiest >= 15) {
    results.notes.push(
      `Other processes on this machine used up to ${busiest.toFixed(0)}% of both cores during the measurements (see the CPU table): absolute numbers are depressed and noisier; ratios within the run are less affected.`,
    );
  }
  // A run with BENCH_HAPROXY_TEMPLATES (run.sh) is an experiment: say so in the file name.
  const experiment = (process.env.BENCH_HAPROXY_TEMPLATES ?? '') !== '' ? '-haproxy-experiment' : '';
  if (experiment !== '') results.notes.push(`pgroute ran with the HAProxy templates of ${process.env.BENCH_HAPROXY_TEMPLATES ?? ''} (an experiment), not haproxy/.`);
  const base = freeBase(join(ROOT, 'bench/results', `${resultStamp(started)}-${treeName(results.machine)}${quick ? '-quick' : ''}${experiment}`));
  writeResults(base, results, renderMarkdown(results), renderText(results));
}

runMain(main, procs, log, () => Promise.allSettled([postgres.stop(), procs.stopAll()]));
