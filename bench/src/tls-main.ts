// TLS benchmarks (`bench/run.sh tls`): three ways of serving PostgreSQL over TLS, side by side in
// one run (only ratios within a run count on these machines):
//
//   direct   PostgreSQL 15 terminating TLS itself (ssl=on, the same certificate pgroute serves)
//   static   HAProxy terminating TLS in front of one static backend, built like pgroute's rendered
//            config (bench/baselines/haproxy-tls-baseline.cfg: 'S' from pgroute's Lua action, the
//            unix-socket hand-off with PROXY v2, `ssl crt ... alpn postgresql`), no SPOE
//   pgroute  `pgroute up --tls auto` (its own CA and ECDSA P-256 certificate), routed by the agent
//
// Figures: pgbench -S with a new connection per transaction (-C) and persistent, PGSSLMODE=require;
// TLS handshakes/s from bench/c/tlsload.c (C, OpenSSL, one thread per connection in flight:
// connect, SSLRequest, 'S', full handshake, close_notify, close), plus direct TLS (ClientHello
// first, ALPN postgresql) on the HAProxy paths. Server CPU per handshake from /proc.
//
// usage: node dist-bench/bench/src/tls-main.js [quick]
// env:   BENCH_RUN_DIR (scratch dir made by run.sh), BENCH_BIN_DIR (compiled C programs),
//        BENCH_PGROUTE_ROOT (the snapshot of dist/ and haproxy/ run.sh took)

import { X509Certificate } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { machineHeader, machineInfo } from './machine.js';
import { BenchPostgres, PGBIN, pgbenchFigures } from './postgres.js';
import { machineCpu, mustRun, procCpu, processTree, Procs, run, sleep, type Started } from './procs.js';
import { waitForTcp } from '../../generator/src/index.js';
import { markdownTables, textTables, verdict, type Cell, type Results, type Table } from './report.js';
import { freeBase, logger, resultStamp, runDirs, runMain, treeName, writeResults } from './runner.js';

const PATHS = ['direct', 'static', 'pgroute'] as const;
type PathName = (typeof PATHS)[number];
const LABEL: Record<PathName, string> = {
  direct: 'PostgreSQL terminating TLS',
  static: 'HAProxy TLS, static backend',
  pgroute: 'pgroute --tls auto',
};

const PORT = { static: 29201, pgroute: 29203, agent: 29204, agentHttp: 29205, postgres: 29210 } as const;
const pathPort: Record<PathName, number> = { direct: PORT.postgres, static: PORT.static, pgroute: PORT.pgroute };

// Compiled to dist-bench/bench/src/ (bench/tsconfig.json): the repository is three levels up.
const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const SNAP = process.env.BENCH_PGROUTE_ROOT ?? ROOT;
const CLI = join(SNAP, 'dist/cli/pgroute.js');

const argv = process.argv.slice(2);
const quick = argv.includes('quick');
const { runDir, binDir } = runDirs('bench/run.sh tls');

export interface TlsPlan {
  readonly rounds: number; // each path once per round, the order rotating
  readonly pgbenchSeconds: number;
  readonly pgbenchClients: number;
  readonly handshakeRounds: number;
  readonly handshakeSeconds: number;
  readonly handshakeWarmup: number;
  readonly handshakeConcurrency: number;
}
const plan: TlsPlan = quick
  ? { rounds: 1, pgbenchSeconds: 4, pgbenchClients: 8, handshakeRounds: 1, handshakeSeconds: 3, handshakeWarmup: 0.5, handshakeConcurrency: 8 }
  : { rounds: 2, pgbenchSeconds: 7, pgbenchClients: 8, handshakeRounds: 3, handshakeSeconds: 4, handshakeWarmup: 1, handshakeConcurrency: 8 };

const procs = new Procs(runDir);
const log = logger('bench tls');

// ---- the three servers ----

const postgres = new BenchPostgres(join(runDir, 'pg'), PORT.postgres, log);
const stateDir = join(runDir, 'pgroute-state');
const tenantsFile = join(runDir, 'tenants.yaml');

function pemBlocks(pem: string): string[] {
  return pem.match(/-----BEGIN [^-]+-----[\s\S]+?-----END [^-]+-----\n?/g) ?? [];
}

async function startPgroute(): Promise<Started> {
  writeFileSync(tenantsFile, `tenants:\n  - id: bench\n    host: 127.0.0.1\n    port: ${PORT.postgres}\n`);
  const p = procs.start('pgroute-up', 'node', [
    CLI, 'up', '--tenants', tenantsFile, '--port', String(PORT.pgroute), '--bind', '127.0.0.1',
    '--agent-port', String(PORT.agent), '--agent-http-port', String(PORT.agentHttp), '--stats-port', '0',
    '--log', 'off', '--state-dir', stateDir, '--tls', 'auto', '--tls-san', 'localhost', '127.0.0.1',
  ]);
  await waitForTcp('127.0.0.1', PORT.pgroute, 30_000, p.exited);
  log(`pgroute up (:${PORT.pgroute}, --tls auto), pid ${p.pid}`);
  return p;
}

/** PostgreSQL with ssl=on serving pgroute's own server certificate and key (the same kind: ECDSA P-256). */
async function startPostgres(serverPem: string): Promise<void> {
  const blocks = pemBlocks(serverPem);
  const cert = blocks.filter((b) => b.includes('CERTIFICATE')).join('');
  const key = blocks.find((b) => b.includes('PRIVATE KEY'));
  if (cert === '' || key === undefined) throw new Error('pgroute\'s server.pem holds no certificate or key');
  await postgres.start({ cert, key });
}

async function startStatic(crt: string): Promise<Started> {
  const env = {
    ...process.env,
    BENCH_LUA: join(SNAP, 'haproxy/pgroute.lua'),
    BENCH_STATIC_TLS_PORT: String(PORT.static),
    BENCH_TLS_SOCKET: join(runDir, 'static-tls.sock'),
    BENCH_CRT: crt,
    BENCH_TENANT_PORT: String(PORT.postgres),
    BENCH_PIDFILE: join(runDir, 'static-tls-haproxy.pid'),
  };
  const cfg = join(ROOT, 'bench/baselines/haproxy-tls-baseline.cfg');
  await mustRun('haproxy', ['-c', '-q', '-f', cfg], { env });
  const p = procs.start('static-tls-haproxy', 'haproxy', ['-db', '-f', cfg], env);
  await waitForTcp('127.0.0.1', PORT.static, 10_000, p.exited);
  log(`static TLS HAProxy up (:${PORT.static}), pid ${p.pid}`);
  return p;
}

/** Waits until `SELECT 1` over TLS (sslmode=require) works through the path. */
async function probe(path: PathName, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    const r = await run(join(PGBIN, 'psql'), ['-X', '-A', '-t', '-h', '127.0.0.1', '-p', String(pathPort[path]), '-U', 'postgres', '-d', 'bench', '-c', 'SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()'], {
      env: { ...process.env, PGSSLMODE: 'require', PGCONNECT_TIMEOUT: '5' },
    });
    // pg_stat_ssl shows the backend's own TLS: true only on the direct path (HAProxy talks clear text to PostgreSQL).
    if (r.code === 0) return;
    last = r.stderr.trim();
    await sleep(250);
  }
  throw new Error(`path ${path} (port ${pathPort[path]}) does not answer over TLS: ${last}`);
}

// ---- pgbench ----

export interface TlsPgbenchRow {
  readonly path: PathName;
  readonly mode: 'connect' | 'persistent';
  readonly tps: number;
  readonly roundTps: number[];
  readonly connMs: number | null;
  readonly latencyMs: number | null;
  readonly failed: number;
  readonly transactions: number;
}

async function pgbench(path: PathName, mode: 'connect' | 'persistent'): Promise<Omit<TlsPgbenchRow, 'roundTps'>> {
  const args = ['-h', '127.0.0.1', '-p', String(pathPort[path]), '-U', 'postgres', '-n', '-S', ...(mode === 'connect' ? ['-C'] : []), '-c', String(plan.pgbenchClients), '-j', '2', '-T', String(plan.pgbenchSeconds), 'bench'];
  const r = await run(join(PGBIN, 'pgbench'), args, { env: { ...process.env, PGSSLMODE: 'require', PGCONNECT_TIMEOUT: '10' }, timeoutMs: (plan.pgbenchSeconds + 60) * 1000 });
  return pgbenchFigures(r, path, mode);
}

// ---- handshakes ----

interface TlsloadResult {
  ok: number;
  errors: number;
  errConnect: number;
  errAnswer: number;
  errHandshake: number;
  seconds: number;
  rate: number;
  cpuSeconds: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  meanMs: number;
  maxMs: number;
  lastError: string;
}

export interface HandshakeRow {
  readonly path: PathName;
  readonly negotiation: 'sslrequest' | 'direct';
  readonly rate: number;
  readonly roundRates: number[];
  readonly ok: number;
  readonly errors: number;
  readonly lastError: string;
  readonly p50Ms: number;
  readonly p99Ms: number;
  /** CPU microseconds per handshake: the client, and the server side of the path. */
  readonly clientUs: number;
  readonly serverUs: Record<string, number>;
  /** Share of both cores busy during the runs, and the part of it in processes that are not ours. */
  readonly machineBusyPct: number;
  readonly othersPct: number;
}

async function tlsload(port: number, negotiation: 'sslrequest' | 'direct'): Promise<TlsloadResult> {
  const r = await mustRun(join(binDir, 'tlsload'), [String(port), String(plan.handshakeConcurrency), String(plan.handshakeSeconds), String(plan.handshakeWarmup), negotiation, 'localhost'], {
    timeoutMs: (plan.handshakeSeconds + plan.handshakeWarmup + 30) * 1000,
  });
  return JSON.parse(r.stdout) as TlsloadResult;
}

// ---- the run ----

function rotated(k: number): PathName[] {
  return PATHS.map((_, i) => PATHS[(i + k) % PATHS.length] as PathName);
}

interface TlsResults {
  started: string;
  finished?: string;
  mode: 'quick' | 'full';
  plan: TlsPlan;
  machine: Results['machine'];
  certificate: string;
  pgbench: TlsPgbenchRow[];
  handshakes: HandshakeRow[];
  notes: string[];
}

async function main(): Promise<void> {
  const started = new Date();
  const results: TlsResults = {
    started: started.toISOString(),
    mode: quick ? 'quick' : 'full',
    plan,
    machine: await machineInfo(ROOT, PGBIN),
    certificate: '',
    pgbench: [],
    handshakes: [],
    notes: [],
  };
  log(`mode ${results.mode}, run dir ${runDir}`);
  const pgroute = await startPgroute();
  const serverPem = join(stateDir, 'tls', 'server.pem');
  const pem = readFileSync(serverPem, 'utf8');
  const staticPem = join(runDir, 'static-server.pem');
  writeFileSync(staticPem, pem, { mode: 0o600 });
  const c = new X509Certificate(pem);
  results.certificate = `${c.subject.replace(/\n/g, ', ')}; key ${c.publicKey.asymmetricKeyType ?? '?'} ${String(c.publicKey.asymmetricKeyDetails?.namedCurve ?? '')}; SAN ${c.subjectAltName ?? ''}`;
  await startPostgres(pem);
  const stat = await startStatic(staticPem);
  for (const p of PATHS) await probe(p);
  log('every path answers SELECT 1 over TLS');

  // pgbench, -C then persistent, rounds rotating the order.
  const runs: Omit<TlsPgbenchRow, 'roundTps'>[] = [];
  for (let round = 0; round < plan.rounds; round++) {
    for (const [k, mode] of (['connect', 'persistent'] as const).entries()) {
      for (const path of rotated(round + k)) {
        const row = await pgbench(path, mode);
        runs.push(row);
        log(`pgbench round ${round + 1} ${mode} ${path}: ${row.tps.toFixed(0)} tps${row.failed > 0 ? `, ${row.failed} failed` : ''}`);
      }
    }
  }
  const avg = (xs: (number | null)[]): number | null => {
    const v = xs.filter((x): x is number => x !== null);
    return v.length === 0 ? null : Number((v.reduce((a, b) => a + b, 0) / v.length).toFixed(3));
  };
  for (const mode of ['connect', 'persistent'] as const) {
    for (const path of PATHS) {
      const rs = runs.filter((r) => r.path === path && r.mode === mode);
      results.pgbench.push({
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

  // Handshakes/s. Server-side CPU by process group, from /proc.
  const server: Record<PathName, () => Record<string, number[]>> = {
    direct: () => ({ postgres: processTree(postgres.postmasterPid()) }),
    static: () => ({ haproxy: processTree(stat.pid) }),
    pgroute: () => {
      const tree = processTree(pgroute.pid);
      return { haproxy: tree.filter((p) => p !== pgroute.pid), 'agent (node)': [pgroute.pid] };
    },
  };
  const cpuOf = (groups: Record<string, number[]>): Record<string, number> =>
    Object.fromEntries(Object.entries(groups).map(([k, pids]) => [k, pids.reduce((a, p) => a + procCpu(p), 0)]));
  const cases: { path: PathName; negotiation: 'sslrequest' | 'direct' }[] = [
    ...PATHS.map((path) => ({ path, negotiation: 'sslrequest' as const })),
    { path: 'static', negotiation: 'direct' },
    { path: 'pgroute', negotiation: 'direct' },
  ];
  const acc = new Map<string, { rs: TlsloadResult[]; server: Record<string, number>; busy: number; total: number; ours: number }>();
  for (let round = 0; round < plan.handshakeRounds; round++) {
    const order = cases.map((_, i) => cases[(i + round * 2) % cases.length]!);
    for (const c of order) {
      const key = `${c.path}/${c.negotiation}`;
      const before = cpuOf(server[c.path]());
      const m0 = machineCpu();
      const r = await tlsload(pathPort[c.path], c.negotiation);
      const m1 = machineCpu();
      const after = cpuOf(server[c.path]());
      const a = acc.get(key) ?? { rs: [], server: {}, busy: 0, total: 0, ours: 0 };
      a.rs.push(r);
      // Snapshots include the warm-up: scale to the measured window.
      const scale = r.seconds / (r.seconds + plan.handshakeWarmup);
      let ours = r.cpuSeconds * scale;
      for (const k of Object.keys(after)) {
        const d = ((after[k] ?? 0) - (before[k] ?? 0)) * scale;
        a.server[k] = (a.server[k] ?? 0) + d;
        ours += d;
      }
      a.busy += (m1.busy - m0.busy) * scale;
      a.total += (m1.total - m0.total) * scale;
      a.ours += ours;
      acc.set(key, a);
      log(`handshakes round ${round + 1} ${key}: ${Math.round(r.rate)}/s, p50 ${r.p50Ms.toFixed(2)} ms, ${r.errors} errors${r.errors > 0 ? ` (${r.lastError})` : ''}`);
    }
  }
  for (const c of cases) {
    const a = acc.get(`${c.path}/${c.negotiation}`)!;
    const ok = a.rs.reduce((s, r) => s + r.ok, 0);
    const seconds = a.rs.reduce((s, r) => s + r.seconds, 0);
    const client = a.rs.reduce((s, r) => s + r.cpuSeconds * (r.seconds / (r.seconds + plan.handshakeWarmup)), 0);
    const us = (cpu: number): number => Number(((cpu / Math.max(ok, 1)) * 1e6).toFixed(1));
    const mean = (xs: number[]): number => Number((xs.reduce((x, y) => x + y, 0) / Math.max(xs.length, 1)).toFixed(3));
    results.handshakes.push({
      path: c.path,
      negotiation: c.negotiation,
      rate: Math.round(ok / Math.max(seconds, 1e-9)),
      roundRates: a.rs.map((r) => Math.round(r.rate)),
      ok,
      errors: a.rs.reduce((s, r) => s + r.errors, 0),
      lastError: a.rs.map((r) => r.lastError).filter(Boolean).at(-1) ?? '',
      p50Ms: mean(a.rs.map((r) => r.p50Ms)),
      p99Ms: mean(a.rs.map((r) => r.p99Ms)),
      clientUs: us(client),
      serverUs: Object.fromEntries(Object.entries(a.server).map(([k, v]) => [k, us(v)])),
      machineBusyPct: Number(((100 * a.busy) / Math.max(a.total, 1e-9)).toFixed(1)),
      othersPct: Number(((100 * Math.max(0, a.busy - a.ours)) / Math.max(a.total, 1e-9)).toFixed(1)),
    });
  }

  await postgres.stop();
  await procs.stopAll();
  results.finished = new Date().toISOString();
  const busiest = Math.max(...results.handshakes.map((h) => h.othersPct));
  if (busiest >= 15) {
    results.notes.push(`Other processes on this machine used up to ${busiest.toFixed(0)}% of both cores during the handshake runs: absolute numbers are depressed and noisier; ratios within the run are less affected.`);
  }
  const base = freeBase(join(ROOT, 'bench/results', `${resultStamp(started)}-${treeName(results.machine)}-tls${quick ? '-quick' : ''}`));
  writeResults(base, results, renderMarkdown(results), renderText(results));
}

// ---- report ----

const f2 = (x: number): string => x.toFixed(2);
const int = (x: number): string => Math.round(x).toLocaleString('en-US');

function tables(r: TlsResults): Table[] {
  const tps = (path: PathName, mode: 'connect' | 'persistent'): number | undefined => r.pgbench.find((x) => x.path === path && x.mode === mode)?.tps;
  const hs = (path: PathName, n: 'sslrequest' | 'direct'): HandshakeRow | undefined => r.handshakes.find((x) => x.path === path && x.negotiation === n);
  const ratio = (a: number | undefined, b: number | undefined): number | null => (a === undefined || b === undefined || b === 0 ? null : a / b);
  const targets: [string, number | null, string, (x: number) => boolean][] = [
    ['pgbench -C -S tps (TLS), pgroute / static', ratio(tps('pgroute', 'connect'), tps('static', 'connect')), '>= 0.90', (x) => x >= 0.9],
    ['pgbench -S tps persistent (TLS), pgroute / static', ratio(tps('pgroute', 'persistent'), tps('static', 'persistent')), '0.90 - 1.10', (x) => x >= 0.9 && x <= 1.1],
    ['TLS handshakes/s after SSLRequest, pgroute / static', ratio(hs('pgroute', 'sslrequest')?.rate, hs('static', 'sslrequest')?.rate), '>= 0.90', (x) => x >= 0.9],
    ['direct TLS handshakes/s, pgroute / static', ratio(hs('pgroute', 'direct')?.rate, hs('static', 'direct')?.rate), '>= 0.90', (x) => x >= 0.9],
    [
      'server CPU per handshake after SSLRequest (HAProxy + agent), pgroute / static',
      ratio(serverCpu(hs('pgroute', 'sslrequest')), serverCpu(hs('static', 'sslrequest'))),
      '<= 1.10',
      (x) => x <= 1.1,
    ],
    ['server CPU per direct TLS handshake, pgroute / static', ratio(serverCpu(hs('pgroute', 'direct')), serverCpu(hs('static', 'direct'))), '<= 1.10', (x) => x <= 1.1],
  ];
  const out: Table[] = [
    {
      title: 'Targets (pgroute within noise of the static HAProxy TLS path)',
      head: ['figure', 'value', 'target', ''],
      rows: targets.map(([name, v, t, ok]) => [name, v === null ? 'n/a' : f2(v), t, verdict(v === null ? null : ok(v))]),
    },
    {
      title: 'Context: ratios to PostgreSQL terminating TLS itself',
      head: ['figure', 'static / direct', 'pgroute / direct'],
      rows: [
        ['pgbench -C -S tps', fmt(ratio(tps('static', 'connect'), tps('direct', 'connect'))), fmt(ratio(tps('pgroute', 'connect'), tps('direct', 'connect')))],
        ['pgbench -S tps persistent', fmt(ratio(tps('static', 'persistent'), tps('direct', 'persistent'))), fmt(ratio(tps('pgroute', 'persistent'), tps('direct', 'persistent')))],
        ['handshakes/s after SSLRequest', fmt(ratio(hs('static', 'sslrequest')?.rate, hs('direct', 'sslrequest')?.rate)), fmt(ratio(hs('pgroute', 'sslrequest')?.rate, hs('direct', 'sslrequest')?.rate))],
      ],
    },
    {
      title: `pgbench -S, PGSSLMODE=require, ${r.plan.pgbenchClients} clients, ${r.plan.pgbenchSeconds} s x ${r.plan.rounds} round(s)`,
      head: ['path', 'mode', 'tps', 'per round', 'conn ms', 'latency ms', 'failed', 'transactions'],
      rows: r.pgbench.map((x) => [LABEL[x.path], x.mode === 'connect' ? '-C (new connection each)' : 'persistent', int(x.tps), x.roundTps.join(' / '), x.connMs === null ? '' : f2(x.connMs), x.latencyMs === null ? '' : f2(x.latencyMs), String(x.failed), int(x.transactions)]),
    },
    {
      title: `TLS handshakes/s (tlsload: ${r.plan.handshakeConcurrency} in flight, ${r.plan.handshakeSeconds} s x ${r.plan.handshakeRounds} round(s), full handshakes, no resumption)`,
      head: ['path', 'negotiation', 'handshakes/s', 'per round', 'p50 ms', 'p99 ms', 'errors', 'server CPU µs/handshake', 'client CPU µs', 'cores busy %', 'not ours %'],
      rows: r.handshakes.map((h) => [
        LABEL[h.path],
        h.negotiation === 'direct' ? 'direct (ALPN)' : 'SSLRequest',
        int(h.rate),
        h.roundRates.join(' / '),
        h.p50Ms.toFixed(2),
        h.p99Ms.toFixed(2),
        h.errors === 0 ? '0' : `${h.errors} (${h.lastError})`,
        Object.entries(h.serverUs).map(([k, v]) => `${k} ${v.toFixed(0)}`).join(', '),
        h.clientUs.toFixed(0),
        h.machineBusyPct.toFixed(0),
        h.othersPct.toFixed(0),
      ]),
    },
  ];
  return out;
}

/** CPU µs per handshake of every server-side process of the path (HAProxy, and pgroute's node process). */
function serverCpu(h: HandshakeRow | undefined): number | undefined {
  return h === undefined ? undefined : Object.values(h.serverUs).reduce((a, b) => a + b, 0);
}

function fmt(x: number | null): Cell {
  return x === null ? 'n/a' : f2(x);
}

const METHOD = [
  'direct: PostgreSQL 15, ssl=on with the server certificate and key pgroute made (ECDSA P-256, pgroute\'s own CA); PostgreSQL\'s default ssl_ecdh_curve prime256v1 applies to its key exchange, HAProxy offers its defaults (X25519 first).',
  'static: bench/baselines/haproxy-tls-baseline.cfg, the same certificate file, the same Lua action answering \'S\' (haproxy/pgroute.lua), the same unix-socket hand-off with PROXY v2 and bind options as pgroute; no SPOE, one static server.',
  'pgroute: `pgroute up --tls auto --tls-san localhost 127.0.0.1`, tenant `bench` routed by database name by the agent, TLS terminated by its HAProxy.',
  'pgbench runs as user postgres with PGSSLMODE=require; -C opens a new TLS connection per transaction (PostgreSQL\'s fork and start-up dominate it), persistent shows the cost of carrying TLS bytes.',
  'tlsload (bench/c/tlsload.c): one thread per connection in flight; connect, SSLRequest and its \'S\' (or a ClientHello first with ALPN postgresql), a full handshake (no session cache, no tickets, certificate not verified), close_notify, close. No StartupMessage: the agent is never asked, so this is the TLS termination path alone. PostgreSQL 15 cannot take direct TLS, so that row is HAProxy only.',
  'Handshakes/s depend on how much of the two cores other work leaves (see "not ours %"): on a busy machine the rates of one path vary by 2x between rounds, while the server CPU per handshake stays within a few percent, so the CPU ratio is the steadier comparison of pgroute with the static path. The client (OpenSSL 3.0) costs about as much CPU per handshake as the server side; with both cores saturated the rate is shared between them, which is why the CPU figures are reported beside it.',
  'Server CPU per handshake: utime+stime from /proc of the server processes (PostgreSQL\'s postmaster and backends; HAProxy master and worker; pgroute\'s node process apart) over the measured window, divided by handshakes.',
];

function renderText(r: TlsResults): string {
  const lines = ['', '=== pgroute TLS benchmarks ===', ...machineHeader(r.machine, r.started, r.mode, r.finished), `certificate: ${r.certificate}`, '', ...textTables(tables(r))];
  for (const n of r.notes) lines.push(`note: ${n}`);
  return `${lines.join('\n')}\n`;
}

function renderMarkdown(r: TlsResults): string {
  const md = ['# pgroute TLS benchmark run', '', ...machineHeader(r.machine, r.started, r.mode, r.finished).map((l) => `- ${l}`), `- certificate: ${r.certificate}`, '', ...markdownTables(tables(r))];
  md.push('## Method', '', ...METHOD.map((m) => `- ${m}`), '');
  if (r.notes.length > 0) md.push('## Notes', '', ...r.notes.map((n) => `- ${n}`), '');
  return `${md.join('\n')}\n`;
}

// ---- signals ----

runMain(main, procs, log, () => Promise.allSettled([postgres.stop(), procs.stopAll()]));
