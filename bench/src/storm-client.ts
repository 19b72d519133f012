// A connection storm and the place it runs, shared by bench/storm.sh and
// test/e2e/tenant-policy-storm.test.ts. The storm stands for a stranger's machine: it may run at the lowest CPU priority
// or in a CPU cgroup of its own, so that on a shared 2-core machine what is measured is the router's
// share of the storm, not the storm client's.

import { openCpuHost, type CpuHost } from './cpu-host.js';

/**
 * A reconnect loop (node -e STORM_CLIENT <port> <loops> <database> [<options>]): <loops> connections
 * at once, each a new connection after another (startup, the server's first answer, close), as
 * pgbench -C does; unlike pgbench it carries on after a refused connection. Prints `storming` once
 * started and its counts ({"routed","refused","failed"}: first byte 'R', 'E', or a close without
 * an answer) as JSON on SIGTERM.
 */
export const STORM_CLIENT = `
const net = require('node:net');
const [port, loops, database, options] = process.argv.slice(1);
const pairs = ['user', 'app', 'database', database, ...(options ? ['options', options] : [])];
const body = Buffer.concat([Buffer.from([0, 3, 0, 0]), Buffer.from(pairs.join('\\0') + '\\0\\0')]);
const len = Buffer.alloc(4); len.writeUInt32BE(body.length + 4);
const startup = Buffer.concat([len, body]);
const counts = { routed: 0, refused: 0, failed: 0 };
function once() {
  const s = net.createConnection({ port: Number(port), host: '127.0.0.1' }, () => s.write(startup));
  let done = false;
  const end = (what) => { if (done) return; done = true; counts[what]++; s.destroy(); setImmediate(once); };
  s.on('data', (d) => end(d[0] === 0x52 ? 'routed' : 'refused'));
  s.on('error', () => end('failed'));
  s.on('close', () => end('failed'));
}
for (let i = 0; i < Number(loops); i++) once();
process.on('SIGTERM', () => { console.log(JSON.stringify(counts)); process.exit(0); });
console.log('storming');
`;

/**
 * The calm tenant's measuring client, as a process of its own so that it can run on an emulated
 * client host (bench/src/cpu-host.ts): node -e PROBE_CLIENT <port> <database> <user> <probes>
 * [<server port> [<gap ms>]], started in the repository (it requires node-postgres). Prints `probing` once
 * started; on each SIGUSR1 it runs one window of <probes> connects through <port>, one after
 * another (connect, SHOW cluster_name, end, as the in-process probes did), each followed by the
 * same connect straight to the tenant's server at <server port> when given (what the server alone
 * takes, in the same moments), each connect followed by <gap ms> of pause (default 0: back to back,
 * which keeps a server that forks per connection busy at its host's quota), and prints `window <n> {"routed":[[ms, client port], ...],"direct":[ms, ...]}`.
 */
export const PROBE_CLIENT = `
const pg = require('pg');
const [port, database, user, probes, direct, gap] = process.argv.slice(1);
const pause = () => new Promise((r) => setTimeout(r, Number(gap ?? 0)));
let n = 0;
let queue = Promise.resolve();
async function connect(p) {
  const t = performance.now();
  const c = new pg.Client({ host: '127.0.0.1', port: Number(p), user, database, connectionTimeoutMillis: 10000 });
  await c.connect();
  const local = c.connection.stream.localPort;
  await c.query('SHOW cluster_name');
  await c.end();
  return [performance.now() - t, local];
}
async function window() {
  const out = { routed: [], direct: [] };
  for (let i = 0; i < Number(probes); i++) {
    out.routed.push(await connect(port));
    await pause();
    if (direct) out.direct.push((await connect(direct))[0]);
    await pause();
  }
  console.log('window ' + ++n + ' ' + JSON.stringify(out));
}
process.on('SIGUSR1', () => { queue = queue.then(window, (e) => { console.error(e); process.exit(1); }); });
process.on('SIGTERM', () => process.exit(0));
setInterval(() => {}, 1 << 30);
console.log('probing');
`;

/** Window n of a PROBE_CLIENT's output line `window <n> {...}`: the routed probes and the direct times (ms), or undefined. */
export function probeWindow(line: string, n: number): { probes: { ms: number; port: number }[]; direct: number[] } | undefined {
  const m = new RegExp(`window ${n} (\\{.*\\})$`).exec(line);
  if (m === null) return undefined;
  const w = JSON.parse(m[1] as string) as { routed: [number, number][]; direct: number[] };
  return { probes: w.routed.map(([ms, port]) => ({ ms, port })), direct: w.direct };
}

export interface StormCounts {
  readonly routed: number;
  readonly refused: number;
  readonly failed: number;
}

/** The counts a STORM_CLIENT printed when stopped (zeros if it printed none). */
export function stormCounts(output: string): StormCounts {
  const m = /\{"routed":\d+,"refused":\d+,"failed":\d+\}/.exec(output);
  return m === null ? { routed: 0, refused: 0, failed: 0 } : (JSON.parse(m[0]) as StormCounts);
}

/** The `cgroup` place of bench/storm.sh: a group without a quota and a small weight (cpu.shares; a process's is 1024). */
export const STORM_SHARES = 2;

/**
 * The emulated hosts of an admitted storm (bench/src/cpu-host.ts), each a hard CPU quota: the
 * stormy tenant's PostgreSQL and the storm's client capped at a small host's size, at an ordinary
 * weight; the calm tenant's PostgreSQL and measuring client, the side being measured, also get
 * their CPU first (cpu.shares 10 × a process's), as hosts of their own would. For a fork storm the
 * router (HAProxy and the agent) stays in the root group with the rest of the machine; for a storm
 * through the stormy tenant's PgBouncer (on the stormy server's host) it gets a host too, ROUTER_HOST.
 * Sizes measured on the 2-core test machine (tenant-policy-storm.test.ts's header): a backend
 * costs the stormy server 25-35 ms of CPU here, so 0.5 CPU admits 9-18 connections a second; the
 * calm server uses 0.7-0.85 CPU for one client connecting in a loop, so 0.9 seldom throttles it
 * (0-2 periods of 100 ms a run); pgbench uses 0.01 CPU, the node client 0.06-0.09. The quotas
 * sum to 1.9 CPUs; the hosts use ~1.2-1.4, leaving the router host ~0.6 of the 2 cores (HAProxy
 * and the agent use ~0.08 at these rates, bench/results/2026-12-06-session7-storm.md).
 */
export const STORM_HOSTS = {
  stormyPg: { cpus: 0.5 },
  storm: { cpus: 0.2 },
  calmPg: { cpus: 0.9, shares: 10_240 },
  calm: { cpus: 0.3, shares: 10_240 },
} as const;
export type StormHost = keyof typeof STORM_HOSTS;

/**
 * The router's own host for a storm admitted at hundreds of connections a second (PgBouncer in front
 * of the stormy server): no quota, and its CPU first (cpu.shares as the calm side's), as a router
 * machine of its own would have; HAProxy and the pgroute process moved in (add(pid of pgroute up)).
 * In the root group with the rest of this shared machine (load 5-12 from other work), the router's
 * wakeups for the storm's connections wait behind that work and preempt the calm server: the calm
 * connect time grew +7 .. +23 % there (three runs at 505-613 connections a second, straight to the
 * calm server +2 .. +14 %), +4 % with this host; with a small weight (cpu.shares 256) the router
 * starved: +59 % at 95 a second (tenant-policy-storm.test.ts (c), bench/results/2026-12-06-session8-pooler-storm.md).
 */
export const ROUTER_HOST = { cpus: Infinity, shares: 10_240 } as const;

/** Opens ROUTER_HOST (empty: add the pgroute process, its HAProxy follows). */
export function openRouterHost(): CpuHost {
  return openCpuHost('storm-router', ROUTER_HOST.cpus, { shares: ROUTER_HOST.shares });
}

/** Opens the four STORM_HOSTS (empty: move the servers in, start the clients with command()). */
export function openStormHosts(): Record<StormHost, CpuHost> {
  const opened: Partial<Record<StormHost, CpuHost>> = {};
  try {
    for (const [name, h] of Object.entries(STORM_HOSTS)) {
      opened[name as StormHost] = openCpuHost(`storm-${name}`, h.cpus, 'shares' in h ? { shares: h.shares } : {});
    }
  } catch (err) {
    for (const h of Object.values(opened)) h.close();
    throw err;
  }
  return opened as Record<StormHost, CpuHost>;
}
