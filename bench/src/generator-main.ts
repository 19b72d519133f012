// pgroute generator benchmarks: how fast and how gently tenant changes reach the data path.
// Started by `bench/run.sh generator [quick]`, which builds everything first.
//
//   (l) event-to-routable latency per source: file (tenants file edited), Kubernetes (the fake
//       apiserver of test/support, a Service created), Docker (a labelled container started; only
//       when dockerd answers): time from the event until a raw StartupMessage for the new tenant
//       through pgroute's port gets AuthenticationOk from the fake backend (bench/c/fakepg.c);
//   (r) reloads per 100 tenant events (adds, moves, disables, removes) while spare backends last,
//       then 100 adds once they are used up; reloads read from the master CLI (`show proc`);
//   (s) scale at 100 / 1,000 / 10,000 tenants: pure render and the other in-process steps of an
//       apply, `haproxy -c`, cold start (`pgroute up` until the port routes), HAProxy memory and idle
//       CPU, one added tenant (runtime API) and one forced reload at N; in full mode a profiled
//       pass at the largest N shows where the time goes.
//
// usage: node dist-bench/bench/src/generator-main.js [quick] [--only l,r,s] [--sources file,kubernetes,docker] [--no-profile]
// env:   BENCH_RUN_DIR, BENCH_BIN_DIR (fakepg, fakepg-static, fake-kube-apiserver.mjs), BENCH_PGROUTE_ROOT

import { mkdirSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import Dockerode from 'dockerode';
import { summariseProfile, type ProfileSummary } from './cpuprofile.js';
import { renderGeneratorMarkdown, renderGeneratorText, type ApplySample, type GeneratorResults, type IdleCpu, type LatencySource, type Live, type Memory, type ReloadPhase, type ScaleRow } from './generator-report.js';
import { machineInfo } from './machine.js';
import { loadPgroute, type Layout, type PgrouteModules, type ProcStatus, type Settings } from './pgroute-modules.js';
import { probeOnce, untilRoutable } from './pgwire.js';
import { machineCpu, mustRun, procCpu, processTree, Procs, run, sleep, type Started } from './procs.js';
import { waitForTcp } from '../../generator/src/index.js';
import { logger, resultStamp, runDirs, runMain, treeName, writeResults } from './runner.js';

const PORT = {
  pgroute: 29103,
  agent: 29104,
  agentHttp: 29105,
  fake: 29110,
  fake2: 29111,
  kube: 29120,
} as const;

// Compiled to dist-bench/bench/src/ (bench/tsconfig.json): the repository is three levels up.
const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const PGROUTE_ROOT = process.env.BENCH_PGROUTE_ROOT ?? ROOT;
const CLI = join(PGROUTE_ROOT, 'dist/cli/pgroute.js');

// ---- options ----
const argv = process.argv.slice(2);
const quick = argv.includes('quick');
const argOf = (flag: string, dflt: string): string => {
  const i = argv.indexOf(flag);
  return i >= 0 ? (argv[i + 1] ?? '') : dflt;
};
const only = new Set(argOf('--only', 'l,r,s').split(',').map((s) => s.trim()));
const sources = argOf('--sources', 'file,kubernetes,docker').split(',').map((s) => s.trim());
const profile = !quick && !argv.includes('--no-profile');
const { runDir, binDir } = runDirs('bench/run.sh generator');

export interface GeneratorPlan {
  /** (l) events per source. */
  readonly latencyEvents: number;
  /** (l) tenants present before the first event. */
  readonly latencyBaseTenants: number;
  /** (s) tenant counts. */
  readonly scale: readonly number[];
  /** (s) repetitions of the pure steps, by N (median reported). */
  readonly pureReps: (n: number) => number;
  /** (s) seconds of idle CPU measurement after start. */
  readonly idleSeconds: number;
  readonly profile: boolean;
}
const plan: GeneratorPlan = quick
  ? { latencyEvents: 30, latencyBaseTenants: 20, scale: [100, 1_000, 10_000], pureReps: (n) => (n >= 10_000 ? 2 : n >= 1_000 ? 5 : 10), idleSeconds: 2, profile: false }
  : { latencyEvents: 40, latencyBaseTenants: 20, scale: [100, 1_000, 10_000], pureReps: (n) => (n >= 10_000 ? 3 : n >= 1_000 ? 7 : 15), idleSeconds: 3, profile };

const procs = new Procs(runDir);
const log = logger('bench-gen');
let pg: PgrouteModules;

// ---- tenants ----

interface TenantDef {
  host: string;
  port: number;
  enabled: boolean;
}

function tenantsYaml(tenants: ReadonlyMap<string, TenantDef>): string {
  const out: string[] = ['tenants:'];
  for (const [id, t] of tenants) {
    out.push(`  - id: ${id}`, `    host: ${t.host}`, `    port: ${t.port}`);
    if (!t.enabled) out.push('    enabled: false');
  }
  return `${out.join('\n')}\n`;
}

/** Write + rename, as editors and config management do. */
function writeTenants(file: string, tenants: ReadonlyMap<string, TenantDef>): void {
  writeFileSync(`${file}.tmp`, tenantsYaml(tenants));
  renameSync(`${file}.tmp`, file);
}

function manyTenants(prefix: string, n: number): Map<string, TenantDef> {
  const m = new Map<string, TenantDef>();
  for (let i = 0; i < n; i++) m.set(`${prefix}${i}`, { host: '127.0.0.1', port: PORT.fake, enabled: true });
  return m;
}

// ---- pgroute processes ----

interface Instance {
  readonly proc: Started;
  readonly state: string;
  readonly spawnedAt: number;
  readonly masterSocket: string;
  readonly adminSocket: string;
}

const DEPLOYMENT_FLAGS = (state: string): string[] => [
  '--port', String(PORT.pgroute),
  '--bind', '127.0.0.1',
  '--agent-port', String(PORT.agent),
  '--agent-http-port', String(PORT.agentHttp),
  '--stats-port', '0',
  '--log', 'off',
  '--state-dir', state,
];

async function portFree(port: number): Promise<boolean> {
  const r = await probeOnce(port, 'x', '127.0.0.1', 500);
  return !r.routed && (r.why === 'ECONNREFUSED');
}

async function startPgroute(name: string, command: string[], state: string, opts: { env?: NodeJS.ProcessEnv; nodeFlags?: string[]; timeoutMs?: number } = {}): Promise<Instance> {
  for (const port of [PORT.pgroute, PORT.agent, PORT.agentHttp]) {
    if (!(await portFree(port))) throw new Error(`port ${port} is in use: another run, or something else; the generator benchmark needs 29100-29199`);
  }
  mkdirSync(state, { recursive: true });
  const spawnedAt = Date.now();
  const proc = procs.start(name, 'node', [...(opts.nodeFlags ?? []), CLI, ...command, ...DEPLOYMENT_FLAGS(state)], opts.env);
  await waitForTcp('127.0.0.1', PORT.pgroute, opts.timeoutMs ?? 60_000, proc.exited);
  const paths = pg.statePaths(state);
  return { proc, state, spawnedAt, masterSocket: paths.masterSocket, adminSocket: paths.adminSocket };
}

async function stopPgroute(i: Instance | undefined): Promise<void> {
  if (i !== undefined) await procs.stop(i.proc, 15_000);
}

/** `pgroute_apply_latency_seconds_count` by kind: observed once per apply, after it completed. */
async function applyCounts(): Promise<Record<string, number>> {
  const res = await fetch(`http://127.0.0.1:${PORT.agentHttp}/metrics`);
  const text = await res.text();
  const out: Record<string, number> = {};
  for (const line of text.split('\n')) {
    const m = /^pgroute_apply_latency_seconds_count\{kind="([^"]+)"\} (\d+)/.exec(line);
    if (m?.[1] !== undefined) out[m[1]] = Number(m[2]);
  }
  return out;
}

const total = (c: Record<string, number>): number => Object.values(c).reduce((a, b) => a + b, 0);

async function waitApplied(before: Record<string, number>, timeoutMs: number): Promise<{ at: number; kind: string }> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const now = await applyCounts().catch(() => before);
    if (total(now) > total(before)) {
      const kinds = Object.keys(now).filter((k) => (now[k] ?? 0) > (before[k] ?? 0));
      return { at: Date.now(), kind: kinds.join('+') };
    }
    await sleep(20);
  }
  throw new Error(`no apply completed within ${timeoutMs} ms`);
}

/**
 * One tenant event: `act` makes it happen (t0 is just before), then (when `db` is given) the
 * routability probe, then the wait for the apply to complete (files written, `haproxy -c` done),
 * then `show proc` for the master's reload counter.
 */
async function tenantEvent(inst: Instance, type: string, act: () => Promise<void> | void, db: string | null, timeoutMs = 60_000): Promise<ApplySample> {
  const before = await applyCounts();
  const procBefore = await pg.showProc(inst.masterSocket);
  const t0 = Date.now();
  await act();
  const actMs = Date.now() - t0;
  const routed = db === null ? null : await untilRoutable(PORT.pgroute, db, timeoutMs);
  const applied = await waitApplied(before, timeoutMs);
  const procAfter = await pg.showProc(inst.masterSocket);
  return {
    type,
    actMs,
    routableMs: routed === null ? null : routed.at - t0,
    appliedMs: applied.at - t0,
    kind: applied.kind,
    reloads: procAfter.reloads - procBefore.reloads,
    failedReloads: procAfter.failed - procBefore.failed,
    probes: routed?.attempts ?? 0,
  };
}

// ---- (l) event-to-routable per source ----

interface FakeKube {
  start(): Promise<void>;
  stop(): Promise<void>;
  createService(input: { namespace: string; name: string; labels?: Record<string, string>; clusterIP?: string; ports?: { name?: string; port: number }[] }): unknown;
}
type FakeKubeCtor = new (o: { port: number; host?: string }) => FakeKube;

async function latencyFile(): Promise<LatencySource> {
  const dir = join(runDir, 'l-file');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, 'tenants.yaml');
  const tenants = manyTenants('f', plan.latencyBaseTenants);
  writeTenants(file, tenants);
  const inst = await startPgroute('l-file', ['up', '--tenants', file], join(dir, 'state'));
  try {
    await untilRoutable(PORT.pgroute, 'f0', 20_000);
    const samples: ApplySample[] = [];
    for (let i = 0; i < plan.latencyEvents; i++) {
      const id = `fn${i}`;
      samples.push(
        await tenantEvent(inst, 'add', () => {
          tenants.set(id, { host: '127.0.0.1', port: PORT.fake, enabled: true });
          writeTenants(file, tenants);
        }, id),
      );
    }
    log(`(l) file: ${summaryLine(samples)}`);
    return { source: 'file', skipped: null, event: 'tenants file rewritten (write + rename) with one more tenant', samples };
  } finally {
    await stopPgroute(inst);
  }
}

async function latencyKubernetes(): Promise<LatencySource> {
  const dir = join(runDir, 'l-kube');
  mkdirSync(dir, { recursive: true });
  const modPath = join(binDir, 'fake-kube-apiserver.mjs');
  let Fake: FakeKubeCtor;
  try {
    Fake = ((await import(pathToFileURL(modPath).href)) as { FakeKubeApiServer: FakeKubeCtor }).FakeKubeApiServer;
  } catch (err) {
    return { source: 'kubernetes', skipped: `cannot load the fake apiserver (${modPath}): ${(err as Error).message}`, event: '', samples: [] };
  }
  const fake = new Fake({ port: PORT.kube, host: '127.0.0.1' });
  await fake.start();
  const service = (name: string): void => {
    fake.createService({ namespace: 'bench', name, labels: { 'pgroute.tenant': name }, clusterIP: '127.0.0.1', ports: [{ name: 'postgres', port: PORT.fake }] });
  };
  for (let i = 0; i < plan.latencyBaseTenants; i++) service(`k${i}`);
  const kubeconfig = join(dir, 'kubeconfig');
  writeFileSync(
    kubeconfig,
    [
      'apiVersion: v1',
      'kind: Config',
      'clusters:',
      '- name: fake',
      '  cluster:',
      `    server: http://127.0.0.1:${PORT.kube}`,
      '    insecure-skip-tls-verify: true', // client-node refuses plain http otherwise
      'users:',
      '- name: nobody',
      '  user: {}',
      'contexts:',
      '- name: fake',
      '  context:',
      '    cluster: fake',
      '    user: nobody',
      'current-context: fake',
      '',
    ].join('\n'),
  );
  let inst: Instance | undefined;
  try {
    inst = await startPgroute('l-kube', ['watch', '--source', 'kubernetes', '--kube-address', 'cluster-ip', '--spawn-haproxy'], join(dir, 'state'), {
      env: { ...process.env, KUBECONFIG: kubeconfig },
      timeoutMs: 30_000,
    });
    await untilRoutable(PORT.pgroute, 'k0', 20_000);
    const samples: ApplySample[] = [];
    for (let i = 0; i < plan.latencyEvents; i++) {
      const id = `kn${i}`;
      samples.push(await tenantEvent(inst, 'add', () => service(id), id));
    }
    log(`(l) kubernetes: ${summaryLine(samples)}`);
    return { source: 'kubernetes', skipped: null, event: 'Service created in the fake apiserver (watch event to the informer), clusterIP 127.0.0.1, --kube-address cluster-ip', samples };
  } finally {
    await stopPgroute(inst);
    await fake.stop();
  }
}

async function latencyDocker(): Promise<LatencySource> {
  const docker = new Dockerode({ timeout: 20_000 });
  try {
    await new Dockerode({ timeout: 1_000 }).ping();
  } catch (err) {
    return { source: 'docker', skipped: `dockerd does not answer on /var/run/docker.sock (${(err as Error).message}); not measured`, event: '', samples: [] };
  }
  const staticBin = join(binDir, 'fakepg-static');
  try {
    readFileSync(staticBin);
  } catch {
    return { source: 'docker', skipped: 'no statically linked fakepg (gcc -static failed in run.sh); not measured', event: '', samples: [] };
  }
  const dir = join(runDir, 'l-docker');
  const img = join(dir, 'image');
  mkdirSync(img, { recursive: true });
  await mustRun('cp', [staticBin, join(img, 'fakepg')]);
  const image = `pgroute-bench/fakepg:${process.pid}`;
  const prefix = `pgroute-bench-${process.pid}-`;
  writeFileSync(join(runDir, 'docker-cleanup'), `${prefix}\n${image}\n`); // run.sh's trap removes them if we die
  await mustRun('sh', ['-c', `tar -C '${img}' -c fakepg | docker import -c 'ENTRYPOINT ["/fakepg", "5432", "0.0.0.0"]' - '${image}'`]);
  let inst: Instance | undefined;
  const containers: Dockerode.Container[] = [];
  try {
    inst = await startPgroute('l-docker', ['watch', '--source', 'docker', '--spawn-haproxy'], join(dir, 'state'));
    const samples: ApplySample[] = [];
    for (let i = 0; i < plan.latencyEvents; i++) {
      const id = `dn${process.pid % 1000}x${i}`;
      const c = await docker.createContainer({ name: `${prefix}${i}`, Image: image, Labels: { 'pgroute.tenant': id, 'pgroute.port': '5432' }, HostConfig: { AutoRemove: false } });
      containers.push(c);
      const s = await tenantEvent(inst, 'start', () => c.start(), id);
      samples.push(s);
    }
    log(`(l) docker: ${summaryLine(samples)}`);
    return { source: 'docker', skipped: null, event: 'labelled container (static fakepg) started on the default bridge; t0 = the start API call (actMs = until dockerd answered it)', samples };
  } finally {
    await stopPgroute(inst);
    await Promise.allSettled(containers.map((c) => c.remove({ force: true })));
    await run('docker', ['rmi', '-f', image]);
  }
}

function summaryLine(samples: readonly ApplySample[]): string {
  const r = samples.map((s) => s.routableMs).filter((x): x is number => x !== null);
  return `${samples.length} events, routable p50 ${pct(r, 50)} ms, p99 ${pct(r, 99)} ms, kinds ${JSON.stringify(countBy(samples.map((s) => s.kind)))}, reloads ${samples.reduce((a, s) => a + s.reloads, 0)}`;
}

export function pct(xs: readonly number[], p: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))] as number;
}

export function countBy(xs: readonly string[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const x of xs) out[x] = (out[x] ?? 0) + 1;
  return out;
}

// ---- (r) reloads per 100 events ----

async function reloads(): Promise<{ phases: ReloadPhase[]; spares: number }> {
  const dir = join(runDir, 'r');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, 'tenants.yaml');
  const tenants = manyTenants('r', 60);
  writeTenants(file, tenants);
  const inst = await startPgroute('r-file', ['up', '--tenants', file], join(dir, 'state'));
  const spares = pg.defaultSettings().spares;
  try {
    await untilRoutable(PORT.pgroute, 'r0', 20_000);
    const phases: ReloadPhase[] = [];
    const change = (type: string, mutate: () => void, db: string | null): Promise<ApplySample> =>
      tenantEvent(inst, type, () => {
        mutate();
        writeTenants(file, tenants);
      }, db);

    // Phase A: 100 events within the spares: adds take spares, moves/limits/removes/disables are runtime or agent-only.
    const quota: Record<string, number> = { move: 28, disable: 28, remove: 28, add: spares };
    quota.move = Math.max(0, 100 - spares - 56);
    const order = ['move', 'disable', 'remove', 'add'];
    const a: ApplySample[] = [];
    let moved = 0;
    let toggled = 0;
    let removed = 0;
    let added = 0;
    const startA = await pg.showProc(inst.masterSocket);
    while (a.length < 100) {
      for (const type of order) {
        if (a.length >= 100 || (quota[type] ?? 0) <= 0) continue;
        quota[type] = (quota[type] ?? 0) - 1;
        if (type === 'move') {
          const id = `r${12 + (moved++ % 12)}`;
          const t = tenants.get(id) as TenantDef;
          a.push(await change('move', () => (t.port = t.port === PORT.fake ? PORT.fake2 : PORT.fake), null));
        } else if (type === 'disable') {
          const id = `r${toggled++ % 12}`;
          const t = tenants.get(id) as TenantDef;
          a.push(await change(t.enabled ? 'disable' : 'enable', () => (t.enabled = !t.enabled), null));
        } else if (type === 'remove') {
          const id = `r${59 - removed++}`;
          a.push(await change('remove', () => tenants.delete(id), null));
        } else {
          const id = `ra${added++}`;
          a.push(await change('add', () => tenants.set(id, { host: '127.0.0.1', port: PORT.fake, enabled: true }), id));
        }
      }
    }
    const endA = await pg.showProc(inst.masterSocket);
    phases.push(phase('A: 100 mixed events while spare backends last', a, startA, endA));
    log(`(r) phase A: ${summaryLine(a)}`);

    // Phase B: 100 adds once the spares are used up.
    const b: ApplySample[] = [];
    for (let i = 0; i < 100; i++) {
      const id = `rb${i}`;
      b.push(await change('add', () => tenants.set(id, { host: '127.0.0.1', port: PORT.fake, enabled: true }), id));
    }
    const endB = await pg.showProc(inst.masterSocket);
    phases.push(phase('B: 100 adds after the spares ran out', b, endA, endB));
    log(`(r) phase B: ${summaryLine(b)}`);
    return { phases, spares };
  } finally {
    await stopPgroute(inst);
  }
}

function phase(name: string, samples: ApplySample[], start: ProcStatus, end: ProcStatus): ReloadPhase {
  return {
    name,
    events: countBy(samples.map((s) => s.type)),
    applies: countBy(samples.map((s) => s.kind)),
    reloads: end.reloads - start.reloads,
    failedReloads: end.failed - start.failed,
    oldWorkersAtEnd: end.oldWorkers.length,
    samples,
  };
}

// ---- (s) scale ----

function median(xs: readonly number[]): number {
  return pct(xs, 50);
}

function timed<T>(fn: () => T, reps: number): { ms: number; firstMs: number; value: T } {
  const all: number[] = [];
  let value: T | undefined;
  for (let i = 0; i < reps; i++) {
    const t = process.hrtime.bigint();
    value = fn();
    all.push(Number(process.hrtime.bigint() - t) / 1e6);
  }
  return { ms: round(median(all)), firstMs: round(all[0] ?? NaN), value: value as T };
}

const round = (x: number, d = 1): number => Number(x.toFixed(d));

function benchSettings(state: string): Settings {
  const d = pg.defaultSettings(state);
  return {
    ...d,
    agent: { ...d.agent, servers: [{ host: '127.0.0.1', port: PORT.agent }] },
    stats: { ...d.stats, enabled: false, port: 0 },
    log: { ...d.log, enabled: false },
  };
}

async function purePart(n: number, dir: string): Promise<ScaleRow['pure']> {
  const reps = plan.pureReps(n);
  const text = tenantsYaml(manyTenants('t', n));
  const listener = { address: '127.0.0.1', port: PORT.pgroute };
  const parsed = timed(() => pg.parseTenantsFile(text, 'tenants.yaml', listener), Math.max(1, Math.ceil(reps / 2)));
  const file = parsed.value;
  const settings = benchSettings(join(dir, 'pure'));
  const paths = pg.statePaths(join(dir, 'pure'));
  const occupants = timed(() => pg.layoutForReload(pg.EMPTY_LAYOUT, pg.desiredOccupants(file.snapshot.tenants), settings.spares), reps);
  const layout: Layout = occupants.value;
  const routes = timed(() => pg.routeTableDocument(file.deployment, file.snapshot, layout), reps);
  const applyKey = timed(() => JSON.stringify([file.deployment, file.snapshot.tenants]), reps);
  const templates = pg.loadTemplates();
  const render = timed(() => pg.renderConfig(file.deployment, layout, settings, paths, routes.value.version, templates), reps);
  const writeJson = timed(() => `${JSON.stringify(layout, null, 2)}\n${JSON.stringify(routes.value, null, 2)}`, reps);
  // One more tenant on top of the layout: the plan of a runtime add.
  const plus = pg.parseTenantsFile(`${text}  - id: extra\n    host: 127.0.0.1\n    port: ${PORT.fake}\n`, 'tenants.yaml', listener);
  const planned = timed(() => pg.planChange(layout, pg.desiredOccupants(plus.snapshot.tenants), { now: Date.now(), spares: settings.spares, restMs: settings.restMs, forcedReload: [] }), reps);

  // haproxy -c on the rendered files (the spoe.conf, the maps and the Lua file it names must exist).
  mkdirSync(dirname(paths.haproxyConfig), { recursive: true });
  // A build before the limits map (session 8) has no writeMaps and names no map.
  await (pg as Partial<PgrouteModules>).writeMaps?.(settings, paths, routes.value);
  writeFileSync(paths.haproxyConfig, render.value.haproxyConfig);
  writeFileSync(paths.spoeConfig, render.value.spoeConfig);
  const checks: number[] = [];
  for (let i = 0; i < Math.min(3, reps); i++) {
    const t = Date.now();
    await mustRun('haproxy', ['-c', '-q', '-f', paths.haproxyConfig], { timeoutMs: 120_000 });
    checks.push(Date.now() - t);
  }
  return {
    parseYamlAndValidateMs: parsed.ms,
    layoutMs: occupants.ms,
    routeTableMs: routes.ms,
    applyKeyMs: applyKey.ms,
    renderMs: render.ms,
    renderFirstMs: render.firstMs,
    writeJsonMs: writeJson.ms,
    planAddMs: planned.ms,
    haproxyCheckMs: median(checks),
    configBytes: Buffer.byteLength(render.value.haproxyConfig),
    layoutJsonBytes: Buffer.byteLength(JSON.stringify(layout, null, 2)),
    planAddKind: planned.value.reloadReasons.length === 0 ? `runtime (${planned.value.ops.length} op)` : `reload: ${planned.value.reloadReasons.join('; ')}`,
  };
}

function vmRssMb(pid: number): number | null {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m?.[1] === undefined ? null : round(Number(m[1]) / 1024);
  } catch {
    return null;
  }
}

async function haproxyMemory(inst: Instance): Promise<Memory> {
  const status = await pg.showProc(inst.masterSocket);
  const info = await pg.haproxyCli(inst.adminSocket, 'show info');
  const field = (name: string): number | null => {
    const m = new RegExp(`^${name}: (\\d+)`, 'm').exec(info);
    return m?.[1] === undefined ? null : Number(m[1]);
  };
  const worker = status.workers[0];
  return {
    workerRssMb: worker === undefined ? null : vmRssMb(worker),
    masterRssMb: vmRssMb(status.masterPid),
    nodeRssMb: vmRssMb(inst.proc.pid),
    poolUsedMb: field('PoolUsed_MB'),
    poolAllocMb: field('PoolAlloc_MB'),
    memmaxMb: field('Memmax_MB'),
    maxsock: field('Maxsock'),
    ulimitN: field('Ulimit-n'),
    maxconn: field('Maxconn'),
    oldWorkers: status.oldWorkers.length,
  };
}

/** CPU of HAProxy (master + workers), of pgroute's node process and of fakepg over an idle window. */
async function idleCpu(inst: Instance, fake: Started, seconds: number): Promise<IdleCpu> {
  const haproxyPids = (): number[] => processTree(inst.proc.pid).filter((p) => p !== inst.proc.pid);
  const snap = (): { h: number; n: number; f: number } => ({ h: haproxyPids().reduce((a, p) => a + procCpu(p), 0), n: procCpu(inst.proc.pid), f: procCpu(fake.pid) });
  const a = snap();
  const m0 = machineCpu();
  await sleep(seconds * 1000);
  const b = snap();
  const m1 = machineCpu();
  const pctOfCore = (x: number): number => round((100 * x) / seconds);
  return {
    haproxyPctOfCore: pctOfCore(b.h - a.h),
    nodePctOfCore: pctOfCore(b.n - a.n),
    fakepgPctOfCore: pctOfCore(b.f - a.f),
    machineBusyPct: round((100 * (m1.busy - m0.busy)) / Math.max(1e-9, m1.total - m0.total)),
  };
}

interface Marks {
  ready: number;
  addStart: number;
  addEnd: number;
  reloadStart: number;
  reloadEnd: number;
}

async function livePart(n: number, dir: string, fake: Started, nodeFlags: string[] = []): Promise<{ live: Live; inst: Instance; marks: Marks }> {
  const file = join(dir, 'tenants.yaml');
  const tenants = manyTenants('t', n);
  writeTenants(file, tenants);
  const t0 = Date.now();
  const inst = await startPgroute(`s-${n}${nodeFlags.length > 0 ? '-profiled' : ''}`, ['up', '--tenants', file], join(dir, nodeFlags.length > 0 ? 'state-profiled' : 'state'), { nodeFlags, timeoutMs: 180_000 });
  const acceptMs = Date.now() - t0;
  const routed = await untilRoutable(PORT.pgroute, `t${n - 1}`, 60_000);
  const coldMs = routed.at - t0;
  const marks: Marks = { ready: routed.at - inst.spawnedAt, addStart: 0, addEnd: 0, reloadStart: 0, reloadEnd: 0 };
  await sleep(1_000); // let the first health checks and the initial apply settle
  const memory = await haproxyMemory(inst);
  const idle = nodeFlags.length > 0 ? null : await idleCpu(inst, fake, plan.idleSeconds);

  marks.addStart = Date.now() - inst.spawnedAt;
  const add = await tenantEvent(inst, 'add', () => {
    tenants.set('extra1', { host: '127.0.0.1', port: PORT.fake, enabled: true });
    writeTenants(file, tenants);
  }, 'extra1', 120_000);
  marks.addEnd = Date.now() - inst.spawnedAt;
  await sleep(300);
  // A host name cannot be placed through the runtime API: one added tenant that forces a reload.
  marks.reloadStart = Date.now() - inst.spawnedAt;
  const reload = await tenantEvent(inst, 'add (host name: forces a reload)', () => {
    tenants.set('extra2', { host: 'localhost', port: PORT.fake, enabled: true });
    writeTenants(file, tenants);
  }, 'extra2', 120_000);
  marks.reloadEnd = Date.now() - inst.spawnedAt;
  await sleep(1_000);
  const afterReload = await haproxyMemory(inst);
  return { live: { acceptMs, coldMs, memory, idleCpu: idle, add, reload, afterReload }, inst, marks };
}

async function scale(): Promise<{ rows: ScaleRow[]; profile: GeneratorResults['profile'] }> {
  const fake = procs.start('s-fakepg', join(binDir, 'fakepg'), [String(PORT.fake)]);
  await waitForTcp('127.0.0.1', PORT.fake, 5_000, fake.exited);
  const rows: ScaleRow[] = [];
  let prof: GeneratorResults['profile'] = null;
  try {
    for (const n of plan.scale) {
      const dir = join(runDir, `s-${n}`);
      mkdirSync(dir, { recursive: true });
      const pure = await purePart(n, dir);
      log(`(s) N=${n} pure: render ${pure.renderMs} ms, parse ${pure.parseYamlAndValidateMs} ms, haproxy -c ${pure.haproxyCheckMs} ms`);
      let live: Live | null = null;
      let error: string | null = null;
      let inst: Instance | undefined;
      try {
        const r = await livePart(n, dir, fake);
        inst = r.inst;
        live = r.live;
        const l = r.live;
        log(`(s) N=${n} live: cold ${l.coldMs} ms, add ${l.add.routableMs} ms (${l.add.kind}), reload ${l.reload.routableMs} ms (${l.reload.kind}), worker RSS ${l.memory.workerRssMb} MB`);
      } catch (err) {
        error = (err as Error).message;
        log(`(s) N=${n} live part failed: ${error}`);
      } finally {
        await stopPgroute(inst);
      }
      rows.push({ tenants: n, pure, live, error });
    }
    const biggest = plan.scale[plan.scale.length - 1];
    if (plan.profile && biggest !== undefined) {
      const dir = join(runDir, `s-${biggest}`);
      const profDir = join(dir, 'cpuprofile');
      mkdirSync(profDir, { recursive: true });
      let inst: Instance | undefined;
      try {
        const r = await livePart(biggest, dir, fake, ['--cpu-prof', `--cpu-prof-dir=${profDir}`]);
        inst = r.inst;
        await stopPgroute(inst);
        inst = undefined;
        const file = readdirSync(profDir).find((f) => f.endsWith('.cpuprofile'));
        if (file === undefined) throw new Error('no .cpuprofile written');
        const path = join(profDir, file);
        const m = r.marks;
        prof = {
          tenants: biggest,
          file: path,
          live: r.live,
          windows: [
            { name: `cold start until routable (${m.ready} ms under the profiler)`, summary: summariseProfile(path, 0, 15, m.ready) },
            { name: `one added tenant, runtime path (${m.addEnd - m.addStart} ms under the profiler)`, summary: summariseProfile(path, m.addStart, 15, m.addEnd) },
            { name: `one forced reload (${m.reloadEnd - m.reloadStart} ms under the profiler)`, summary: summariseProfile(path, m.reloadStart, 15, m.reloadEnd) },
          ],
        };
        log(`(s) profiled pass at N=${biggest}: ${path}`);
      } catch (err) {
        log(`(s) profiled pass failed: ${(err as Error).message}`);
      } finally {
        await stopPgroute(inst);
      }
    }
  } finally {
    await procs.stop(fake);
  }
  return { rows, profile: prof };
}

// ---- main ----

async function main(): Promise<void> {
  const started = new Date();
  pg = await loadPgroute(PGROUTE_ROOT);
  const results: GeneratorResults = {
    started: started.toISOString(),
    mode: quick ? 'quick' : 'full',
    plan: { latencyEvents: plan.latencyEvents, latencyBaseTenants: plan.latencyBaseTenants, scale: [...plan.scale], profile: plan.profile },
    machine: await machineInfo(ROOT),
    pgroute: process.env.BENCH_REF_SHA ? `commit ${process.env.BENCH_REF_SHA} (BENCH_REF), built apart from the working tree` : 'the working tree\'s dist/ and haproxy/ (snapshot taken by run.sh)',
    latency: null,
    reloads: null,
    scale: null,
    profile: null,
    notes: [],
  };
  log(`mode ${results.mode}, sections ${[...only].join(',')}, sources ${sources.join(',')}, run dir ${runDir}`);

  if (only.has('l')) {
    const fake = procs.start('l-fakepg', join(binDir, 'fakepg'), [String(PORT.fake)]);
    await waitForTcp('127.0.0.1', PORT.fake, 5_000, fake.exited);
    results.latency = [];
    try {
      for (const s of sources) {
        const fn = s === 'file' ? latencyFile : s === 'kubernetes' ? latencyKubernetes : s === 'docker' ? latencyDocker : undefined;
        if (fn === undefined) {
          results.notes.push(`unknown source ${s}`);
          continue;
        }
        try {
          const r = await fn();
          if (r.skipped !== null) log(`(l) ${s}: skipped: ${r.skipped}`);
          results.latency.push(r);
        } catch (err) {
          log(`(l) ${s} failed: ${(err as Error).stack ?? String(err)}`);
          results.latency.push({ source: s, skipped: `failed: ${(err as Error).message}`, event: '', samples: [] });
        }
      }
    } finally {
      await procs.stop(fake);
    }
  }
  if (only.has('r')) {
    const fakes = [procs.start('r-fakepg', join(binDir, 'fakepg'), [String(PORT.fake)]), procs.start('r-fakepg2', join(binDir, 'fakepg'), [String(PORT.fake2)])];
    try {
      for (const [i, f] of fakes.entries()) await waitForTcp('127.0.0.1', i === 0 ? PORT.fake : PORT.fake2, 5_000, f.exited);
      results.reloads = await reloads();
    } catch (err) {
      log(`(r) failed: ${(err as Error).stack ?? String(err)}`);
      results.notes.push(`(r) failed: ${(err as Error).message}`);
    } finally {
      for (const f of fakes) await procs.stop(f);
    }
  }
  if (only.has('s')) {
    try {
      const s = await scale();
      results.scale = s.rows;
      results.profile = s.profile;
    } catch (err) {
      log(`(s) failed: ${(err as Error).stack ?? String(err)}`);
      results.notes.push(`(s) failed: ${(err as Error).message}`);
    }
  }
  await procs.stopAll();

  results.finished = new Date().toISOString();
  const tree = process.env.BENCH_REF_SHA ?? treeName(results.machine);
  const base = join(ROOT, 'bench/results', `${resultStamp(started)}-${tree}-generator${quick ? '-quick' : ''}`);
  writeResults(base, results, renderGeneratorMarkdown(results), renderGeneratorText(results));
}

runMain(main, procs, log, () => procs.stopAll());
