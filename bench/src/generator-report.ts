// Renders one generator benchmark run (bench/src/generator-main.ts): targets and ratios first, then
// the figures per section, in text and Markdown, with the table helpers of report.ts.

import type { ProfileSummary } from './cpuprofile.js';
import { machineHeader } from './machine.js';
import { markdownTables, profileTables, textTables, verdict, type Cell, type Results, type Table } from './report.js';

/** One tenant event and what pgroute did with it. */
export interface ApplySample {
  readonly type: string;
  /** Time the event itself took (the file write, the Docker start call, the apiserver write). */
  readonly actMs: number;
  /** From just before the event until a StartupMessage for the tenant got AuthenticationOk; null when not probed. */
  readonly routableMs: number | null;
  /** From just before the event until pgroute's apply completed (files written, haproxy -c done). */
  readonly appliedMs: number;
  /** pgroute's apply kind(s) from pgroute_apply_latency_seconds_count: runtime, reload, agent, ... */
  readonly kind: string;
  /** The master's reload counter (show proc) after minus before. */
  readonly reloads: number;
  readonly failedReloads: number;
  readonly probes: number;
}

export interface LatencySource {
  readonly source: string;
  /** Why it was not measured, or null. */
  readonly skipped: string | null;
  readonly event: string;
  readonly samples: readonly ApplySample[];
}

export interface ReloadPhase {
  readonly name: string;
  readonly events: Record<string, number>;
  readonly applies: Record<string, number>;
  readonly reloads: number;
  readonly failedReloads: number;
  readonly oldWorkersAtEnd: number;
  readonly samples: readonly ApplySample[];
}

export interface ScaleRow {
  readonly tenants: number;
  readonly pure: {
    readonly parseYamlAndValidateMs: number;
    readonly layoutMs: number;
    readonly routeTableMs: number;
    readonly applyKeyMs: number;
    readonly renderMs: number;
    readonly renderFirstMs: number;
    readonly writeJsonMs: number;
    readonly planAddMs: number;
    readonly haproxyCheckMs: number;
    readonly configBytes: number;
    readonly layoutJsonBytes: number;
    readonly planAddKind: string;
  };
  readonly live: Live | null;
  readonly error: string | null;
}

export interface Live {
  readonly acceptMs: number;
  readonly coldMs: number;
  readonly memory: Memory;
  readonly idleCpu: IdleCpu | null;
  readonly add: ApplySample;
  readonly reload: ApplySample;
  readonly afterReload: Memory;
}

export interface IdleCpu {
  readonly haproxyPctOfCore: number;
  readonly nodePctOfCore: number;
  readonly fakepgPctOfCore: number;
  readonly machineBusyPct: number;
}

export interface Memory {
  readonly workerRssMb: number | null;
  readonly masterRssMb: number | null;
  readonly nodeRssMb: number | null;
  readonly poolUsedMb: number | null;
  readonly poolAllocMb: number | null;
  readonly memmaxMb: number | null;
  readonly maxsock: number | null;
  readonly ulimitN: number | null;
  readonly maxconn: number | null;
  readonly oldWorkers: number;
}

export interface GeneratorResults {
  started: string;
  finished?: string;
  mode: 'quick' | 'full';
  plan: { latencyEvents: number; latencyBaseTenants: number; scale: number[]; profile: boolean };
  machine: Results['machine'];
  /** Which pgroute was benchmarked. */
  pgroute: string;
  latency: LatencySource[] | null;
  reloads: { phases: ReloadPhase[]; spares: number } | null;
  scale: ScaleRow[] | null;
  profile: {
    tenants: number;
    file: string;
    live: ScaleRow['live'];
    windows: { name: string; summary: ProfileSummary }[];
  } | null;
  notes: string[];
}

const int = (x: number | null | undefined): string => (x === null || x === undefined || Number.isNaN(x) ? '' : Math.round(x).toLocaleString('en-US'));
const f1 = (x: number | null | undefined): string => (x === null || x === undefined || Number.isNaN(x) ? '' : x.toFixed(1));
const f2 = (x: number): string => x.toFixed(2);

function pct(xs: readonly number[], p: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))] as number;
}

const kinds = (r: Record<string, number>): string =>
  Object.entries(r)
    .sort((a, b) => b[1] - a[1])
    .map(([k, v]) => `${k} ${v}`)
    .join(', ');

function routable(samples: readonly ApplySample[]): number[] {
  return samples.map((s) => s.routableMs).filter((x): x is number => x !== null);
}

function byKind(samples: readonly ApplySample[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const s of samples) out[s.kind] = (out[s.kind] ?? 0) + 1;
  return out;
}

function tables(r: GeneratorResults): Table[] {
  const out: Table[] = [];
  const rows: Cell[][] = [];
  const add = (label: string, value: string, target: string, ok: boolean | null): void => void rows.push([label, value, target, verdict(ok)]);

  if (r.reloads) {
    const [a, b] = r.reloads.phases;
    if (a) add('(r) reloads per 100 events while spares last (adds, moves, disables, removes)', f1((100 * a.reloads) / Math.max(1, a.samples.length)), '0', a.reloads === 0);
    if (b) add(`(r) reloads per 100 adds once the ${r.reloads.spares} spares are used up`, f1((100 * b.reloads) / Math.max(1, b.samples.length)), `(info: 1 per ${r.reloads.spares + 1} adds = ${f1(100 / (r.reloads.spares + 1))})`, null);
    const failed = r.reloads.phases.reduce((x, p) => x + p.failedReloads, 0);
    add('(r) failed reloads (master show proc)', String(failed), '0', failed === 0);
  }
  const big = r.scale?.find((s) => s.tenants === 10_000) ?? r.scale?.[r.scale.length - 1];
  if (big?.live) {
    add(`(s) cold start, ${int(big.tenants)} tenants: pgroute up until the port routes (ms)`, int(big.live.coldMs), '< 2,000', big.live.coldMs < 2_000);
    add(`(s) one added tenant at ${int(big.tenants)}, runtime path: event to routable (ms)`, int(big.live.add.routableMs), '< 2,000', (big.live.add.routableMs ?? Infinity) < 2_000);
    add(`(s) one forced reload at ${int(big.tenants)}: event to routable (ms)`, int(big.live.reload.routableMs), '< 2,000', (big.live.reload.routableMs ?? Infinity) < 2_000);
  } else if (big?.error) add(`(s) ${int(big.tenants)} tenants`, 'failed', '< 2,000', false);
  const s1k = r.scale?.find((s) => s.tenants === 1_000);
  if (big && s1k && big !== s1k) {
    const k = big.tenants / s1k.tenants;
    add(`(s) renderConfig time, ${int(big.tenants)} / ${int(s1k.tenants)} tenants`, f2(big.pure.renderMs / s1k.pure.renderMs), `(linear = ${k})`, null);
    add(`(s) haproxy -c time, ${int(big.tenants)} / ${int(s1k.tenants)}`, f2(big.pure.haproxyCheckMs / s1k.pure.haproxyCheckMs), `(linear = ${k})`, null);
    if (big.live && s1k.live) {
      add(`(s) runtime add event-to-routable, ${int(big.tenants)} / ${int(s1k.tenants)}`, f2((big.live.add.routableMs ?? NaN) / (s1k.live.add.routableMs ?? NaN)), '', null);
      add(`(s) HAProxy worker RSS, ${int(big.tenants)} / ${int(s1k.tenants)}`, f2((big.live.memory.workerRssMb ?? NaN) / (s1k.live.memory.workerRssMb ?? NaN)), '', null);
    }
  }
  if (big?.live) add(`(s) at ${int(big.tenants)}: forced reload / runtime add, event to routable`, f2((big.live.reload.routableMs ?? NaN) / (big.live.add.routableMs ?? NaN)), '', null);
  for (const l of r.latency ?? []) {
    if (l.skipped !== null) {
      add(`(l) ${l.source}: event to routable`, 'not measured', '', null);
      continue;
    }
    const xs = routable(l.samples);
    add(`(l) ${l.source}: event to routable p50 / p99 (ms), ${xs.length} events`, `${int(pct(xs, 50))} / ${int(pct(xs, 99))}`, '', null);
  }
  out.push({ title: 'Targets and ratios (same run)', head: ['figure', 'value', 'target', ''], rows });

  if (r.latency) {
    out.push({
      title: '(l) event to routable, per source (ms; a new tenant each event; routable = AuthenticationOk through pgroute\'s port)',
      head: ['source', 'events', 'routable p50', 'p90', 'p99', 'max', 'mean', 'apply complete p50', 'event call p50', 'routable after the call p50', 'apply kinds', 'reloads', 'runtime p50', 'reload p50', 'probes/event'],
      rows: r.latency.map((l) => {
        if (l.skipped !== null) return [l.source, '0', `skipped: ${l.skipped}`, '', '', '', '', '', '', '', '', '', '', '', ''];
        const xs = routable(l.samples);
        const of = (kind: string): number[] => routable(l.samples.filter((s) => s.kind === kind));
        return [
          l.source,
          String(l.samples.length),
          int(pct(xs, 50)),
          int(pct(xs, 90)),
          int(pct(xs, 99)),
          int(Math.max(...xs)),
          int(xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length)),
          int(pct(l.samples.map((s) => s.appliedMs), 50)),
          int(pct(l.samples.map((s) => s.actMs), 50)),
          int(pct(l.samples.filter((s) => s.routableMs !== null).map((s) => (s.routableMs ?? 0) - s.actMs), 50)),
          kinds(byKind(l.samples)),
          String(l.samples.reduce((a, s) => a + s.reloads, 0)),
          int(pct(of('runtime'), 50)),
          int(pct(of('reload'), 50)),
          f1(l.samples.reduce((a, s) => a + s.probes, 0) / Math.max(1, l.samples.length)),
        ];
      }),
    });
    const ev = r.latency.filter((l) => l.skipped === null).map((l) => [l.source, l.event]);
    if (ev.length > 0) out.push({ title: '(l) events', head: ['source', 'event'], rows: ev });
  }

  if (r.reloads) {
    out.push({
      title: `(r) reloads per 100 tenant events (file source, default ${r.reloads.spares} spare backends; each event applied before the next)`,
      head: ['phase', 'events', 'apply kinds', 'reloads (show proc)', 'failed', 'old workers at end', 'applied p50 ms: runtime', 'agent', 'reload', 'reload max ms'],
      rows: r.reloads.phases.map((p) => {
        const of = (kind: string): number[] => p.samples.filter((s) => s.kind === kind).map((s) => s.appliedMs);
        return [p.name, kinds(p.events), kinds(p.applies), String(p.reloads), String(p.failedReloads), String(p.oldWorkersAtEnd), int(pct(of('runtime'), 50)), int(pct(of('agent'), 50)), int(pct(of('reload'), 50)), int(Math.max(...of('reload'), NaN))];
      }),
    });
  }

  if (r.scale) {
    out.push({
      title: '(s) in-process steps of one apply, per tenant count (ms, median; pgroute\'s own functions from the benchmarked dist/)',
      head: ['tenants', 'parse YAML + validate', 'layout', 'route table', 'apply key (JSON)', 'renderConfig', '(first)', 'layout+routes JSON', 'planChange +1', 'haproxy -c', 'sum (render x2, as writeGeneration)', 'haproxy.cfg bytes', 'layout.json bytes'],
      rows: r.scale.map((s) => {
        const p = s.pure;
        const sum = p.parseYamlAndValidateMs + p.layoutMs + p.routeTableMs * 2 + p.applyKeyMs + p.renderMs * 2 + p.writeJsonMs + p.planAddMs + p.haproxyCheckMs;
        return [int(s.tenants), f1(p.parseYamlAndValidateMs), f1(p.layoutMs), f1(p.routeTableMs), f1(p.applyKeyMs), f1(p.renderMs), f1(p.renderFirstMs), f1(p.writeJsonMs), f1(p.planAddMs), int(p.haproxyCheckMs), int(sum), int(p.configBytes), int(p.layoutJsonBytes)];
      }),
    });
    out.push({
      title: '(s) live: pgroute up with N tenants (ms from spawn / from the event)',
      head: ['tenants', 'port accepts', 'cold: routable', 'add (runtime): routable', 'applied', 'kind', 'forced reload: routable', 'applied', 'kind', 'reloads', 'error'],
      rows: r.scale.map((s) => {
        const l = s.live;
        if (!l) return [int(s.tenants), '', '', '', '', '', '', '', '', '', s.error ?? ''];
        return [int(s.tenants), int(l.acceptMs), int(l.coldMs), int(l.add.routableMs), int(l.add.appliedMs), l.add.kind, int(l.reload.routableMs), int(l.reload.appliedMs), l.reload.kind, String(l.reload.reloads), s.error ?? ''];
      }),
    });
    out.push({
      title: '(s) memory and idle CPU (after start; after the reload in brackets)',
      head: ['tenants', 'HAProxy worker RSS MB', 'master RSS MB', 'PoolUsed MB', 'PoolAlloc MB', 'Memmax MB', 'Maxsock', 'Ulimit-n', 'Maxconn', 'node RSS MB', 'idle CPU % of a core: HAProxy', 'node', 'fakepg (health checks)', 'machine busy %'],
      rows: r.scale.map((s) => {
        const l = s.live;
        if (!l) return [int(s.tenants), '', '', '', '', '', '', '', '', '', '', '', '', ''];
        const m = l.memory;
        const a = l.afterReload;
        const both = (x: number | null, y: number | null): string => `${f1(x)} (${f1(y)})`;
        return [int(s.tenants), both(m.workerRssMb, a.workerRssMb), both(m.masterRssMb, a.masterRssMb), both(m.poolUsedMb, a.poolUsedMb), both(m.poolAllocMb, a.poolAllocMb), String(m.memmaxMb ?? ''), int(m.maxsock), int(m.ulimitN), int(m.maxconn), both(m.nodeRssMb, a.nodeRssMb), f1(l.idleCpu?.haproxyPctOfCore), f1(l.idleCpu?.nodePctOfCore), f1(l.idleCpu?.fakepgPctOfCore), f1(l.idleCpu?.machineBusyPct)];
      }),
    });
  }
  if (r.profile) {
    for (const w of r.profile.windows) out.push(...profileTables(`(s) pgroute process at ${int(r.profile.tenants)} tenants, ${w.name}`, w.summary));
  }
  return out;
}

const METHOD = [
  '(l) One pgroute per source on 127.0.0.1:29103 (`pgroute up --tenants` for file; `pgroute watch --source kubernetes --kube-address cluster-ip --spawn-haproxy` with KUBECONFIG pointing at test/support/fake-kube-apiserver.ts for Kubernetes; `pgroute watch --source docker --spawn-haproxy` for Docker), default settings (16 spares, pipeline debounce 50 ms). Each event adds one tenant; t0 is taken just before the event; a Node probe then sends a StartupMessage (database = the tenant, no SSLRequest) every 5 ms until the answer starts with R (AuthenticationOk from bench/c/fakepg.c) instead of pgroute\'s E 3D000. The next event starts only after pgroute\'s apply completed (pgroute_apply_latency_seconds_count grew), so events never overlap. p99 of 30-40 events is close to the maximum.',
  '(r) `pgroute up` with 60 tenants and two fake backends; phase A: 100 events round-robin (move = port change, disable/enable toggle, remove, add) with as many adds as there are spares; phase B: 100 adds. Each event is a rewrite of the tenants file, applied before the next. Reloads are the master CLI\'s `show proc` reload counter; apply kinds come from pgroute\'s metrics.',
  '(s) Pure steps run pgroute\'s own functions (from the benchmarked dist/) in the runner process on N tenants + spares: parseTenantsFile (YAML + validation), desiredOccupants + layoutForReload, routeTableDocument, the Applier\'s JSON key, renderConfig, the layout/routes JSON writes, planChange for one more tenant, and `haproxy -c -q` on the rendered file. Live: `pgroute up` with N tenants (all on one fakepg), cold start until a StartupMessage for the last tenant is routed; HAProxy memory from /proc (VmRSS of master and worker) and `show info` on the admin socket; idle CPU over a few seconds (HAProxy health-checks every server every 2 s); then one added tenant (runtime API into a spare) and one added tenant with a host name (forces a graceful reload), each timed from the file write to routable and to apply complete.',
  'Everything shares a 2-core machine with whatever else runs on it: absolute times are noisy; treat differences under ~30% as noise.',
];

export function renderGeneratorText(r: GeneratorResults): string {
  const lines: string[] = ['', '=== pgroute generator benchmarks ===', ...machineHeader(r.machine, r.started, r.mode, r.finished), `pgroute benchmarked: ${r.pgroute}`, '', ...textTables(tables(r))];
  for (const n of r.notes) lines.push(`note: ${n}`);
  return `${lines.join('\n')}\n`;
}

export function renderGeneratorMarkdown(r: GeneratorResults): string {
  const md: string[] = ['# pgroute generator benchmark run', '', ...[...machineHeader(r.machine, r.started, r.mode, r.finished), `pgroute benchmarked: ${r.pgroute}`].map((l) => `- ${l}`), '', ...markdownTables(tables(r))];
  md.push('## Method', '', ...METHOD.map((m) => `- ${m}`), '');
  if (r.notes.length > 0) md.push('## Notes', '', ...r.notes.map((n) => `- ${n}`), '');
  if (r.profile) md.push(`Profile: \`${r.profile.file}\` (in the scratch directory; kept with BENCH_KEEP=1).`, '');
  return `${md.join('\n')}\n`;
}
