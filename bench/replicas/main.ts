// Replicas benchmark (issue #10), every variant side by side in one run, ratios first:
//   (1) cancel across 3 peered replicas: the session through one replica, the CancelRequest through
//       another, sent as soon as the query runs: success rate, latency until the query stops;
//   (2) access switch convergence: switchAccess() on one replica (what `pgroute tenant disable`
//       does), time until all three refuse (and route again after enable), p50/p99;
//   (2b) tenant change convergence: a tenant added to (and removed from) the shared tenants file,
//       time until all three route (and refuse) it, p50/p99;
//   (3) router-only conn/s and CPU per connection: one replica with the local peer only (no
//       --peer) vs one of 3 peered replicas, rounds alternating, the C load client and fake backend;
//   (4) 10,000 tenants: start to routing with and without a peer list, CPU seconds and RSS.
// Run by bench/replicas.sh (root: PostgreSQL as `postgres`); prints Markdown and writes it to
// bench/results/<date>-session5-replicas.md (BENCH_OUT overrides). Ports: portBlock(30..34).

import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { encodeStartupMessage } from '../../agent/src/pg/frontend.js';
import { disableTenant, enableTenant } from '../../generator/src/index.js';
import { procCpu, processTree } from '../src/procs.js';
import { CANCELLED, cancelFrom, sessionFrom } from '../../test/support/cancel.js';
import { runCli, startUp } from '../../test/support/pgroute.js';
import { portBlock, type PortBlock } from '../../test/support/ports.js';
import { startPostgresMany, type PgServer } from '../../test/support/postgres.js';
import { spawnLogged, stopAll, waitFor, waitForPort, type ProcessHandle } from '../../test/support/process.js';
import { pgQuery } from '../../test/support/psql.js';
import { peersConnected, startReplicas, type Replica } from '../../test/support/replicas.js';

const BIN = process.env['BENCH_BIN_DIR'] ?? '';
const QUICK = process.argv.includes('quick');
const blocks: readonly PortBlock[] = [portBlock(32), portBlock(33), portBlock(34)];
const aside = portBlock(30);
const single = portBlock(31);
const FAKE_PORT = aside.spare[10] as number;
const silent = pino({ level: 'silent' });
const out: string[] = [];
const say = (line = ''): void => {
  out.push(line);
  console.log(line);
};

const pct = (xs: readonly number[], p: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : (s[Math.min(s.length - 1, Math.floor(p * (s.length - 1)))] as number);
};
const ms = (x: number): string => (Number.isNaN(x) ? '-' : `${x.toFixed(x < 10 ? 1 : 0)} ms`);
const treeCpu = (pid: number): number => processTree(pid).reduce((sum, p) => sum + procCpu(p), 0);
const treeRss = (pid: number): number =>
  processTree(pid).reduce((sum, p) => {
    try {
      return sum + Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${p}/status`, 'utf8'))?.[1] ?? 0) * 1024;
    } catch {
      return sum;
    }
  }, 0);

/** 'R' (routed: the fake backend's AuthenticationOk) or 'E' (refused) for one startup through `port`. */
function probe(port: number, tenant: string): Promise<string> {
  return new Promise((resolve) => {
    const s = connect({ port, host: '127.0.0.1' }, () => s.write(encodeStartupMessage({ user: 'app', database: tenant })));
    s.setTimeout(2_000, () => s.destroy());
    s.once('data', (d) => {
      resolve(String.fromCharCode(d[0] ?? 0));
      s.destroy();
    });
    s.once('error', () => resolve('error'));
    s.once('close', () => resolve('closed'));
  });
}

// ---------------------------------------------------------------------------------------------

async function cancels(servers: readonly PgServer[], replicas: readonly Replica[], rounds: number): Promise<{ ok: number; latencies: number[]; failures: string[] }> {
  const latencies: number[] = [];
  const failures: string[] = [];
  for (let k = 0; k < rounds; k++) {
    const at = `127.0.0.${100 + k}`;
    const tenant = k % 2 === 0 ? 'acme' : 'globex';
    const server = servers[k % 2] as PgServer;
    const via = replicas[k % 3] as Replica;
    const to = replicas[(k + 1) % 3] as Replica;
    const s = await sessionFrom(at, via.ports.haproxy, tenant);
    s.client.on('error', () => undefined);
    try {
      const query = s.sleep(20);
      await waitFor(async () => (await pgQuery<{ n: string }>(server.connectionString('postgres'), `SELECT count(*) AS n FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(20)' AND state = 'active'`))[0]?.n === '1', { timeoutMs: 10_000, intervalMs: 5, what: 'the query running' });
      const t = performance.now();
      await cancelFrom(at, to.ports.haproxy, s);
      const r = await Promise.race([query, new Promise<string>((res) => setTimeout(() => res('not cancelled within 5 s'), 5_000))]);
      if (CANCELLED.test(r)) latencies.push(performance.now() - t);
      else failures.push(`${at} via ${via.name}, cancel via ${to.name}: ${r}`);
    } finally {
      await s.end();
    }
  }
  return { ok: latencies.length, latencies, failures };
}

async function convergence(replicas: readonly Replica[], rounds: number): Promise<{ disable: number[]; enable: number[] }> {
  const disable: number[] = [];
  const enable: number[] = [];
  for (let k = 0; k < rounds; k++) {
    const on = replicas[k % 3] as Replica;
    const off = k % 2 === 0;
    const want = off ? 'E' : 'R';
    if (off) await disableTenant(on.stateDir, 'fake', { killSessions: false }, silent);
    else await enableTenant(on.stateDir, 'fake', silent);
    const t = performance.now();
    const each = await Promise.all(
      replicas.map(async (r) => {
        for (;;) {
          if ((await probe(r.ports.haproxy, 'fake')) === want) return performance.now() - t;
          if (performance.now() - t > 10_000) return NaN;
          await new Promise((res) => setTimeout(res, 5));
        }
      }),
    );
    (off ? disable : enable).push(Math.max(...each));
    await new Promise((res) => setTimeout(res, 300));
  }
  return { disable, enable };
}

/**
 * A tenant added to the source (the tenants file the three replicas watch), then removed: time from
 * the file's rename until all three route it (AuthenticationOk), and until all three refuse it.
 */
async function tenantChanges(replicas: readonly Replica[], file: string, base: readonly object[], rounds: number): Promise<{ add: number[]; remove: number[] }> {
  const add: number[] = [];
  const remove: number[] = [];
  const publish = (tenants: readonly object[]): void => {
    writeFileSync(`${file}.tmp`, JSON.stringify({ tenants }));
    renameSync(`${file}.tmp`, file);
  };
  const allSay = async (tenant: string, want: string, t: number): Promise<number> =>
    Math.max(
      ...(await Promise.all(
        replicas.map(async (r) => {
          for (;;) {
            if ((await probe(r.ports.haproxy, tenant)) === want) return performance.now() - t;
            if (performance.now() - t > 10_000) return NaN;
            await new Promise((res) => setTimeout(res, 5));
          }
        }),
      )),
    );
  for (let k = 0; k < rounds; k++) {
    const id = `added-${k}`;
    publish([...base, { id, host: '127.0.0.1', port: FAKE_PORT, maxConnectionRate: 0, maxClientConnections: 0 }]);
    add.push(await allSay(id, 'R', performance.now()));
    publish(base);
    remove.push(await allSay(id, 'E', performance.now()));
  }
  return { add, remove };
}

interface RateRound {
  readonly rate: number;
  readonly errors: number;
  readonly p50: number;
  /** CPU seconds per connection of the measured replica (its node + HAProxy), in µs. */
  readonly cpuUs: number;
  /** Of which HAProxy (the processes under pgroute's node process), in µs. */
  readonly haproxyUs: number;
  /** The same for the other two replicas (receiving the replicated records), in µs per connection. */
  readonly othersUs: number;
}

async function rate(port: number, measured: ProcessHandle, others: readonly ProcessHandle[], seconds: number): Promise<RateRound> {
  const c0 = treeCpu(measured.pid ?? 0);
  const n0 = procCpu(measured.pid ?? 0);
  const o0 = others.reduce((s, p) => s + treeCpu(p.pid ?? 0), 0);
  // The tenant has no connection-rate limit (maxConnectionRate: 0): errors are real failures.
  const r = JSON.parse(execFileSync(join(BIN, 'connload'), [String(port), '8', String(seconds), '1', 'app', 'fake'], { encoding: 'utf8' })) as { ok: number; errors: number; rate: number; p50Ms: number };
  const c1 = treeCpu(measured.pid ?? 0);
  const n1 = procCpu(measured.pid ?? 0);
  const o1 = others.reduce((s, p) => s + treeCpu(p.pid ?? 0), 0);
  // The CPU includes the 1 s warm-up: counted per connection over all of them (rate * (seconds + 1) approximately).
  const conns = r.rate * (seconds + 1);
  return { rate: r.rate, errors: r.errors, p50: r.p50Ms, cpuUs: ((c1 - c0) / conns) * 1e6, haproxyUs: ((c1 - c0 - (n1 - n0)) / conns) * 1e6, othersUs: ((o1 - o0) / conns) * 1e6 };
}

async function scale(dir: string, withPeers: boolean, n: number): Promise<{ wallMs: number; cpuS: number; rssMb: number }> {
  const file = join(dir, `tenants-${n}.yaml`);
  const state = join(dir, `state-scale-${withPeers ? 'on' : 'off'}-${Date.now()}`);
  const peers = withPeers ? ['--name', 'r1', '--peer', `r1=127.0.0.1:${single.spare[1]},r2=127.0.0.1:${single.spare[2]},r3=127.0.0.1:${single.spare[3]}`] : [];
  const t = performance.now();
  const p = runCli(`scale-${withPeers ? 'on' : 'off'}`, ['up', '--tenants', file, '--port', String(single.haproxy), '--bind', '127.0.0.1', '--agent-port', String(single.agent), '--agent-http-port', String(single.agentHealth), '--stats-port', String(single.stats), '--log', 'errors', '--state-dir', state, ...peers]);
  // Routing: the public port answers a tenant (the peers' resync wait, which is idle time, is not counted).
  await waitForPort(single.haproxy, '127.0.0.1', 180_000, { process: p, what: 'the 10k-tenant replica listening' });
  await waitFor(async () => (await probe(single.haproxy, `t${n - 1}`)) === 'R', { timeoutMs: 180_000, intervalMs: 20, what: 'the last tenant routed' });
  const wallMs = performance.now() - t;
  const cpuS = treeCpu(p.pid ?? 0);
  const rssMb = treeRss(p.pid ?? 0) / 2 ** 20;
  await p.stop('SIGINT', 20_000);
  rmSync(state, { recursive: true, force: true });
  return { wallMs, cpuS, rssMb };
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'pgroute-bench-replicas-'));
  const started = new Date();
  const load0 = loadavg()[0] ?? 0;
  const fake = spawnLogged(join(BIN, 'fakepg'), [String(FAKE_PORT)], { name: 'fakepg' });
  await waitForPort(FAKE_PORT, '127.0.0.1', 10_000, { process: fake, what: 'fakepg' });
  const servers = await startPostgresMany([
    { name: 'acme', port: aside.pg[0] },
    { name: 'globex', port: aside.pg[1] },
  ]);
  const tenants = join(dir, 'tenants.yaml');
  const baseTenants = [{ id: 'acme', host: '127.0.0.1', port: aside.pg[0] }, { id: 'globex', host: '127.0.0.1', port: aside.pg[1] }, { id: 'fake', host: '127.0.0.1', port: FAKE_PORT, maxConnectionRate: 0, maxClientConnections: 0 }];
  writeFileSync(tenants, JSON.stringify({ tenants: baseTenants }));
  const replicas = await startReplicas(blocks, blocks.map((b) => b.spare[0] as number), tenants, dir);
  await peersConnected(replicas);
  const alone = await startUp(single, tenants, join(dir, 'state-alone'));

  const c = await cancels(servers, replicas, QUICK ? 15 : 60);
  const conv = await convergence(replicas, QUICK ? 10 : 40);
  const changes = await tenantChanges(replicas, tenants, baseTenants, QUICK ? 10 : 30);
  const seconds = QUICK ? 3 : 5;
  const off: RateRound[] = [];
  const on: RateRound[] = [];
  for (let k = 0; k < (QUICK ? 2 : 4); k++) {
    // Alternating, so load from elsewhere falls on both alike.
    off.push(await rate(single.haproxy, alone, [], seconds));
    on.push(await rate((replicas[0] as Replica).ports.haproxy, (replicas[0] as Replica).process, replicas.slice(1).map((r) => r.process), seconds));
  }
  await alone.stop('SIGINT', 15_000);
  for (const r of replicas) await r.process.stop('SIGINT', 15_000);

  const n = 10_000;
  writeFileSync(join(dir, `tenants-${n}.yaml`), JSON.stringify({ tenants: Array.from({ length: n }, (_, i) => ({ id: `t${i}`, host: '127.0.0.1', port: FAKE_PORT })) }));
  const scaleOff: Awaited<ReturnType<typeof scale>>[] = [];
  const scaleOn: Awaited<ReturnType<typeof scale>>[] = [];
  for (let k = 0; k < (QUICK ? 1 : 2); k++) {
    scaleOff.push(await scale(dir, false, n));
    scaleOn.push(await scale(dir, true, n));
  }
  const load1 = loadavg()[0] ?? 0;
  await stopAll();
  for (const s of servers) await s.stop();
  rmSync(dir, { recursive: true, force: true });

  const mean = (xs: readonly number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;
  const ratio = (a: number, b: number): string => (a / b).toFixed(2);
  const convAll = [...conv.disable, ...conv.enable];
  say(`# Replicas benchmark (session 5, issue #10)${QUICK ? ' (quick)' : ''}`);
  say();
  say(`${started.toISOString()}; ${cpus().length} cores (${cpus()[0]?.model ?? '?'}), load average ${load0.toFixed(1)} at start, ${load1.toFixed(1)} at end (the machine is shared: CPU per connection and CPU seconds are the load-independent figures); ${execFileSync(process.env['PGROUTE_HAPROXY'] ?? 'haproxy', ['-v'], { encoding: 'utf8' }).split('\n')[0]}; Node ${process.version}.`);
  say();
  say('## Ratios first');
  say();
  say('| figure | value |');
  say('|---|---|');
  say(`| cancel success across replicas (session via one, cancel via another) | ${c.ok}/${c.ok + c.failures.length} = ${((100 * c.ok) / (c.ok + c.failures.length)).toFixed(1)} % |`);
  say(`| tenant added to the source: routed on all 3 replicas, p50 / p99 | ${ms(pct(changes.add, 0.5))} / ${ms(pct(changes.add, 0.99))} |`);
  say(`| router-only conn/s, 3 peers / local peer only | ${ratio(mean(on.map((r) => r.rate)), mean(off.map((r) => r.rate)))} |`);
  say(`| CPU per connection of the replica, 3 peers / local peer only | ${ratio(mean(on.map((r) => r.cpuUs)), mean(off.map((r) => r.cpuUs)))} |`);
  say(`| 10k tenants to routing: CPU seconds, peers on / off | ${ratio(mean(scaleOn.map((r) => r.cpuS)), mean(scaleOff.map((r) => r.cpuS)))} |`);
  say(`| 10k tenants: RSS of pgroute + HAProxy, peers on / off | ${ratio(mean(scaleOn.map((r) => r.rssMb)), mean(scaleOff.map((r) => r.rssMb)))} |`);
  say();
  say('## Cancel across 3 replicas');
  say();
  say(`${c.ok + c.failures.length} sessions from distinct 127.0.0.x, each routed by replica k mod 3 to acme or globex (real PostgreSQL 15), \`SELECT pg_sleep(20)\`; as soon as pg_stat_activity shows it running, the CancelRequest goes from the same address to replica k+1 mod 3. Latency: CancelRequest sent until the query's error arrives at the client.`);
  say();
  say(`- success ${c.ok} of ${c.ok + c.failures.length}; latency p50 ${ms(pct(c.latencies, 0.5))}, p99 ${ms(pct(c.latencies, 0.99))}, max ${ms(pct(c.latencies, 1))}`);
  for (const f of c.failures) say(`- failed: ${f}`);
  say();
  say('## Access switch convergence across 3 replicas');
  say();
  say(`${convAll.length} switches of the tenant \`fake\` (disable and enable alternating, each on the next replica), written as \`pgroute tenant disable|enable\` writes them (\`disableTenant\`/\`enableTenant\` in this process, so the Node start of the CLI is not counted); then every replica probed every 5 ms until it refuses (ErrorResponse) or routes (AuthenticationOk). Convergence = the slowest of the three.`);
  say();
  say(`- disable: p50 ${ms(pct(conv.disable, 0.5))}, p99 ${ms(pct(conv.disable, 0.99))}, max ${ms(pct(conv.disable, 1))}`);
  say(`- enable: p50 ${ms(pct(conv.enable, 0.5))}, p99 ${ms(pct(conv.enable, 0.99))}, max ${ms(pct(conv.enable, 1))}`);
  say(`- all: p50 ${ms(pct(convAll, 0.5))}, p99 ${ms(pct(convAll, 0.99))} (access-sync polls the table every 500 ms: the bound is about one poll plus an apply)`);
  say();
  say('## Tenant change convergence across 3 replicas');
  say();
  say(`${changes.add.length} tenants added to the tenants file the three replicas watch (written to a temporary file, then renamed), each removed again once all three route it; every replica probed every 5 ms. Convergence = the slowest of the three, from the rename.`);
  say();
  say(`- add (all three route it): p50 ${ms(pct(changes.add, 0.5))}, p99 ${ms(pct(changes.add, 0.99))}, max ${ms(pct(changes.add, 1))}`);
  say(`- remove (all three refuse it): p50 ${ms(pct(changes.remove, 0.5))}, p99 ${ms(pct(changes.remove, 0.99))}, max ${ms(pct(changes.remove, 1))}`);
  say();
  say('## Router-only connection rate: peers on vs off');
  say();
  say(`Fake backend (bench/c/fakepg.c), load client bench/c/connload.c (concurrency 8, ${seconds} s after 1 s of warm-up), rounds alternating. Off: one \`pgroute up\` without a peer list (its local peer on a unix socket, one cancel table). On: replica r1 of three peered replicas (three cancel tables, every record replicated to r2 and r3). All connections come from 127.0.0.1: one cancel record updated at every connection, the worst case for replication traffic.`);
  say();
  say('| variant | conn/s (rounds) | p50 connect | CPU µs/conn (replica) | of which HAProxy | CPU µs/conn (the other two replicas) | errors |');
  say('|---|---|---|---|---|---|---|');
  const row = (name: string, rs: readonly RateRound[]): void =>
    say(`| ${name} | ${mean(rs.map((r) => r.rate)).toFixed(0)} (${rs.map((r) => r.rate.toFixed(0)).join(', ')}) | ${mean(rs.map((r) => r.p50)).toFixed(2)} ms | ${mean(rs.map((r) => r.cpuUs)).toFixed(0)} | ${mean(rs.map((r) => r.haproxyUs)).toFixed(0)} | ${rs.some((r) => r.othersUs > 0) ? mean(rs.map((r) => r.othersUs)).toFixed(0) : '-'} | ${rs.reduce((a, r) => a + r.errors, 0)} |`);
  row('local peer only (off)', off);
  row('3 peers (on)', on);
  say();
  say('## 10,000 tenants: start to routing, peers on vs off');
  say();
  say(`\`pgroute up\` on a tenants file of ${n} tenants (all to the fake backend), from spawn until the last tenant routes; on: \`--name r1\` and a peer list of three whose other two are not running (the peers section and three cancel tables rendered; the resync wait is idle time and not in the CPU figure). CPU seconds: pgroute's node and HAProxy (master + worker) at that moment; RSS likewise.`);
  say();
  say('| variant | wall s (rounds) | CPU s | RSS MB |');
  say('|---|---|---|---|');
  const srow = (name: string, rs: readonly { wallMs: number; cpuS: number; rssMb: number }[]): void =>
    say(`| ${name} | ${(mean(rs.map((r) => r.wallMs)) / 1000).toFixed(1)} (${rs.map((r) => (r.wallMs / 1000).toFixed(1)).join(', ')}) | ${mean(rs.map((r) => r.cpuS)).toFixed(1)} | ${mean(rs.map((r) => r.rssMb)).toFixed(0)} |`);
  srow('no peer list (off)', scaleOff);
  srow('3 peers listed (on)', scaleOn);
  const target = process.env['BENCH_OUT'] ?? join(import.meta.dirname, '..', 'results', `${started.toISOString().slice(0, 10)}-session5-replicas${QUICK ? '-quick' : ''}.md`);
  writeFileSync(target, `${out.join('\n')}\n`);
  console.log(`\nwritten to ${target}`);
}

main().then(
  () => process.exit(0),
  async (err: unknown) => {
    console.error(err);
    await stopAll();
    process.exit(1);
  },
);
