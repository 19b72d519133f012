// Renders one benchmark run: ratios and targets first, then absolute numbers (text and Markdown).

import type { ProfileSummary } from './cpuprofile.js';
import { machineHeader } from './machine.js';
import type { AgentResult, LatencyRow, PathName, PgbenchRow, Plan, RateRow } from './main.js';

export interface Results {
  started: string;
  finished?: string;
  mode: 'quick' | 'full';
  plan: Plan;
  machine: {
    nproc: number;
    cpu: string;
    haproxy: string;
    node: string;
    postgres: string;
    kernel: string;
    loadavgAtStart: number[];
    gitSha: string | null;
    gitDirty: boolean;
  };
  rate: RateRow[] | null;
  latency: LatencyRow[] | null;
  pgbench: PgbenchRow[] | null;
  agent: AgentResult | null;
  /** pgroute up under node --cpu-prof during an (a)-style rate run (full mode only). */
  upProfile: { rate: number; profile: ProfileSummary; file: string } | null;
  notes: string[];
}

export type Cell = string;
export interface Table {
  readonly title: string;
  readonly head: readonly Cell[];
  readonly rows: readonly (readonly Cell[])[];
}

const PATH_LABEL: Record<PathName, string> = {
  direct: 'direct PostgreSQL',
  static: 'HAProxy static backend',
  lua: 'HAProxy + Lua router (baseline)',
  pgroute: 'pgroute (HAProxy + SPOE agent)',
};

const f2 = (x: number): string => x.toFixed(2);
const f3 = (x: number): string => x.toFixed(3);
const int = (x: number): string => Math.round(x).toLocaleString('en-US');

export function verdict(ok: boolean | null): string {
  return ok === null ? '' : ok ? 'pass' : 'MISS';
}

function find<T extends { path: PathName }>(rows: readonly T[] | null, path: PathName): T | undefined {
  return rows?.find((r) => r.path === path);
}

function ratio(a: number | undefined, b: number | undefined): number | null {
  return a === undefined || b === undefined || b === 0 ? null : a / b;
}

function tables(r: Results): Table[] {
  const out: Table[] = [];
  const rt = (p: PathName): number | undefined => find(r.rate, p)?.rate;
  const lat = (p: PathName): LatencyRow | undefined => find(r.latency, p);
  const tps = (p: PathName, m: PgbenchRow['mode']): number | undefined => r.pgbench?.find((x) => x.path === p && x.mode === m)?.tps;

  // ---- ratios and targets ----
  const rows: Cell[][] = [];
  const add = (label: string, v: number | null, fmt: (x: number) => string, target: string, ok: ((x: number) => boolean) | null): void => {
    if (v === null) return;
    rows.push([label, fmt(v), target, ok === null ? '' : verdict(ok(v))]);
  };
  if (r.rate) {
    add('(a) router-only conn/s: pgroute / static', ratio(rt('pgroute'), rt('static')), f2, '>= 0.90', (x) => x >= 0.9);
    add('(a) router-only conn/s: pgroute / Lua', ratio(rt('pgroute'), rt('lua')), f2, '>= 1.00', (x) => x >= 1);
    add('(a) router-only conn/s: pgroute / direct', ratio(rt('pgroute'), rt('direct')), f2, '', null);
    add('(a) router-only conn/s: Lua / static', ratio(rt('lua'), rt('static')), f2, '', null);
  }
  if (r.latency) {
    const ps = lat('pgroute');
    const st = lat('static');
    const lu = lat('lua');
    if (ps && st) {
      add('(a) added connect p50, pgroute - static (ms)', ps.p50Ms - st.p50Ms, f3, '<= 0.200', (x) => x <= 0.2);
      add('(a) added connect p99, pgroute - static (ms)', ps.p99Ms - st.p99Ms, f3, '', null);
    }
    if (ps && lu) add('(a) added connect p50, pgroute - Lua (ms)', ps.p50Ms - lu.p50Ms, f3, '', null);
  }
  if (r.pgbench) {
    add('(b) pgbench -C tps: pgroute / static', ratio(tps('pgroute', 'connect'), tps('static', 'connect')), f2, '', null);
    add('(b) pgbench -C tps: pgroute / Lua', ratio(tps('pgroute', 'connect'), tps('lua', 'connect')), f2, '', null);
    add('(b) pgbench -C tps: pgroute / direct', ratio(tps('pgroute', 'connect'), tps('direct', 'connect')), f2, '', null);
    add('(b) pgbench persistent tps: pgroute / static', ratio(tps('pgroute', 'persistent'), tps('static', 'persistent')), f2, '0.90-1.10 (equal within noise)', (x) => x >= 0.9 && x <= 1.1);
    add('(b) pgbench persistent tps: pgroute / Lua', ratio(tps('pgroute', 'persistent'), tps('lua', 'persistent')), f2, '', null);
    add('(b) pgbench persistent tps: pgroute / direct', ratio(tps('pgroute', 'persistent'), tps('direct', 'persistent')), f2, '', null);
  }
  if (r.agent) {
    const v = r.agent.perCoreRate ?? r.agent.rate;
    add('(c) agent decisions/s per core', v, int, '>= 100,000', (x) => x >= 100_000);
  }
  out.push({ title: 'Ratios and targets (same run)', head: ['figure', 'value', 'target', ''], rows });

  // ---- absolute per path ----
  const abs: Cell[][] = [];
  for (const p of ['direct', 'static', 'lua', 'pgroute'] as const) {
    const a = find(r.rate, p);
    const l = lat(p);
    const c = r.pgbench?.find((x) => x.path === p && x.mode === 'connect');
    const pp = r.pgbench?.find((x) => x.path === p && x.mode === 'persistent');
    abs.push([
      PATH_LABEL[p],
      a ? `${int(a.rate)}${a.errors ? ` (${a.errors} err)` : ''}` : '',
      a ? a.roundRates.map(int).join(' / ') : '',
      l ? f3(l.p50Ms) : '',
      l ? f3(l.p99Ms) : '',
      c ? int(c.tps) : '',
      c?.roundTps ? c.roundTps.map(int).join(' / ') : '',
      c?.connMs != null ? f3(c.connMs) : '',
      pp ? int(pp.tps) : '',
      pp?.roundTps ? pp.roundTps.map(int).join(' / ') : '',
    ]);
  }
  out.push({
    title: 'Absolute numbers per path',
    head: ['path', '(a) conn/s c=8', '(a) per round', '(a) connect p50 ms c=1', '(a) p99 ms', '(b) -C tps', '(b) per round', '(b) -C avg connect ms', '(b) persistent tps', '(b) per round'],
    rows: abs,
  });

  // ---- CPU attribution during (a) ----
  if (r.rate) {
    const keys = [...new Set(r.rate.flatMap((x) => Object.keys(x.cpuUsPerConn)))];
    out.push({
      title: '(a) CPU per connection (microseconds, by process) and machine load during the rate runs',
      head: ['path', ...keys, 'both cores busy %', 'busy in processes not ours %'],
      rows: r.rate.map((x) => [PATH_LABEL[x.path], ...keys.map((k) => (x.cpuUsPerConn[k] === undefined ? '' : x.cpuUsPerConn[k].toFixed(0))), x.machineBusyPct.toFixed(0), x.othersPct.toFixed(0)]),
    });
  }

  if (r.upProfile) {
    const u = r.upProfile;
    out.push(...profileTables(`(a) pgroute process (CLI + agent) profile under connection load, c=${r.plan.concurrency}, ${int(u.rate)} conn/s while profiled`, u.profile));
  }

  // ---- (c) ----
  if (r.agent) {
    const a = r.agent;
    out.push({
      title: '(c) agent decisions/s (agent pinned to core 1, SPOP client to core 0)',
      head: ['decisions/s', 'agent CPU (cores)', 'decisions per agent CPU-second', 'in flight', 'client CPU (cores)', 'busy in processes not ours %', 'seconds'],
      rows: [[int(a.rate), a.agentCpuFraction === null ? '?' : f2(a.agentCpuFraction), a.perCoreRate === null ? '?' : int(a.perCoreRate), String(a.inflight), f2(a.clientCpuFraction), a.othersPct === null ? '?' : a.othersPct.toFixed(0), f2(a.seconds)]],
    });
    if (a.profile) out.push(...profileTables('(c) agent CPU profile', a.profile));
  }
  return out;
}

export function profileTables(title: string, p: ProfileSummary): Table[] {
  return [
    {
      title: `${title}: self time by area (${int(p.totalMs)} ms sampled after warm-up, idle excluded)`,
      head: ['area', 'self ms', '%'],
      rows: p.areas.map((x) => [x.area, int(x.selfMs), x.pct.toFixed(1)]),
    },
    {
      title: `${title}: top functions by self time`,
      head: ['function', 'where', 'self ms', '%'],
      rows: p.top.map((x) => [x.fn, x.where, int(x.selfMs), x.pct.toFixed(1)]),
    },
  ];
}

function machineLines(r: Results): string[] {
  return machineHeader(r.machine, r.started, r.mode, r.finished, true);
}

const METHOD = [
  '(a) bench/c/connload.c against bench/c/fakepg.c (answers AuthenticationOk + ReadyForQuery at once): connect, StartupMessage (user app, database bench), read to ReadyForQuery, Terminate, close. Rate at concurrency 8; latency (connect() to ReadyForQuery) at concurrency 1. Rounds rotate the path order; rates are totals over rounds, latency percentiles are the mean of the rounds\' percentiles. No SSLRequest is sent in (a).',
  '(b) pgbench -n -S [-C] -c 8 -T <s> (one pgbench thread; in full mode two rounds per path with the order rotated, tps averaged) on PostgreSQL 15, scale 1, default libpq sslmode=prefer (every connection first sends SSLRequest: answered by PostgreSQL on the direct and static paths, by Lua inside HAProxy on the Lua and pgroute paths).',
  '(c) bench/src/spop-client.ts: HAPROXY-HELLO, then NOTIFY pgroute-startup (pkt, src, dport) with a fixed number in flight on one connection; counts ACKs. Per-core rate = decisions/s divided by the agent\'s CPU share when below one core.',
  'All four paths share the machine with whatever else runs on it; compare ratios within a run, not absolute numbers across runs.',
];

function pad(s: string, n: number): string {
  return s.length >= n ? s : s + ' '.repeat(n - s.length);
}

export function renderText(r: Results): string {
  const lines: string[] = ['', '=== pgroute benchmarks ===', ...machineLines(r), '', ...textTables(tables(r))];
  for (const n of r.notes) lines.push(`note: ${n}`);
  return `${lines.join('\n')}\n`;
}

/** Tables as aligned plain text (used by every bench runner). */
export function textTables(ts: readonly Table[]): string[] {
  const lines: string[] = [];
  for (const t of ts) {
    const widths = t.head.map((h, i) => Math.max(h.length, ...t.rows.map((row) => (row[i] ?? '').length)));
    lines.push(t.title);
    lines.push(t.head.map((h, i) => pad(h, widths[i] ?? 0)).join('  '));
    lines.push(widths.map((w) => '-'.repeat(w)).join('  '));
    for (const row of t.rows) lines.push(row.map((c, i) => pad(c, widths[i] ?? 0)).join('  '));
    lines.push('');
  }
  return lines;
}

/** Tables as Markdown sections (used by every bench runner). */
export function markdownTables(ts: readonly Table[]): string[] {
  const md: string[] = [];
  for (const t of ts) {
    md.push(`## ${t.title}`, '');
    md.push(`| ${t.head.join(' | ')} |`);
    md.push(`|${t.head.map(() => '---').join('|')}|`);
    for (const row of t.rows) md.push(`| ${row.map((c) => c.replace(/\|/g, '\\|')).join(' | ')} |`);
    md.push('');
  }
  return md;
}

export function renderMarkdown(r: Results): string {
  const md: string[] = ['# pgroute benchmark run', '', ...machineLines(r).map((l) => `- ${l}`), '', ...markdownTables(tables(r))];
  md.push('## Method', '', ...METHOD.map((m) => `- ${m}`), '');
  if (r.notes.length > 0) md.push('## Notes', '', ...r.notes.map((n) => `- ${n}`), '');
  return `${md.join('\n')}\n`;
}
