// One tenant's connection storm, through `pgroute up` (real HAProxy, agent, two PostgreSQL 15
// servers): the storm is cut down to the tenant's rate, every connection beyond it refused with
// 53300 (never a silent close). The storm is a separate process opening new connections from 8
// loops at once, as pgbench -C -c 8 does; pgbench itself gives up a client at its first refused
// connection, so it cannot keep a storm going against a rate limit. The other tenant's connect time
// (node-postgres: connect, SHOW cluster_name, end) is measured idle and during the storm in
// alternating windows and printed. NOT asserted: the target (within 20 % of idle) is not
// met on the shared 2-core machines here (load average 20-30: +60-130 %, the storm client itself on
// the same cores); see README "Per-tenant policy at the door".

import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { portBlock } from '../support/ports.js';
import { startPostgresMany, type PgServer } from '../support/postgres.js';
import { startUp, writeTenantsFile } from '../support/pgroute.js';
import { spawnLogged, stopAll, type ProcessHandle } from '../support/process.js';

const ports = portBlock(116);
const STORM_RATE = 10;
let servers: PgServer[] = [];
let up: ProcessHandle;
let tmp: string;

beforeAll(async () => {
  servers = await startPostgresMany([
    { name: 'stormy', port: ports.pg[0] as number, settings: { max_connections: 200 } },
    { name: 'calm', port: ports.pg[1] as number },
  ]);
  const f = writeTenantsFile([]);
  writeFileSync(f.file, JSON.stringify({ tenants: [
    { id: 'stormy', host: '127.0.0.1', port: ports.pg[0], maxConnectionRate: STORM_RATE },
    { id: 'calm', host: '127.0.0.1', port: ports.pg[1] },
  ] }));
  tmp = f.dir;
  up = await startUp(ports, f.file, join(tmp, 'state'));
});

afterAll(async () => {
  await up?.stop('SIGINT', 10_000);
  await stopAll();
  for (const s of servers) await s.stop();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

/** The storm: 8 loops, each a new connection (startup, the server's first answer, close) after another; prints its counts on SIGTERM. */
const STORM = `
const net = require('node:net');
const [port] = process.argv.slice(1).map(Number);
const body = Buffer.concat([Buffer.from([0, 3, 0, 0]), Buffer.from('user\\0app\\0database\\0stormy\\0\\0')]);
const len = Buffer.alloc(4); len.writeUInt32BE(body.length + 4);
const startup = Buffer.concat([len, body]);
const counts = { routed: 0, refused: 0, failed: 0 };
function once() {
  const s = net.createConnection({ port, host: '127.0.0.1' }, () => s.write(startup));
  let done = false;
  const end = (what) => { if (done) return; done = true; counts[what]++; s.destroy(); setImmediate(once); };
  s.on('data', (d) => end(d[0] === 0x52 ? 'routed' : 'refused'));
  s.on('error', () => end('failed'));
  s.on('close', () => end('failed'));
}
for (let i = 0; i < 8; i++) once();
process.on('SIGTERM', () => { console.log(JSON.stringify(counts)); process.exit(0); });
console.log('storming');
`;

async function connectMs(): Promise<number> {
  const t = performance.now();
  const client = new pg.Client({ host: '127.0.0.1', port: ports.haproxy, user: 'app', database: 'calm', connectionTimeoutMillis: 5_000 });
  await client.connect();
  await client.query('SHOW cluster_name');
  await client.end();
  return performance.now() - t;
}

async function medianConnectMs(n: number): Promise<number> {
  const ms: number[] = [];
  for (let i = 0; i < n; i++) ms.push(await connectMs());
  ms.sort((a, b) => a - b);
  return ms[Math.floor(n / 2)] as number;
}

describe('a connection storm on one tenant', () => {
  it('is cut down to the tenant\'s rate, the rest refused with 53300, never a silent close', async () => {
    await medianConnectMs(10); // warm up
    const idle: number[] = [];
    const storm: number[] = [];
    let counts = { routed: 0, refused: 0, failed: 0 };
    const started = Date.now();
    let stormSeconds = 0;
    for (let round = 0; round < 3; round++) {
      idle.push(await medianConnectMs(30));
      const stormStart = Date.now();
      const stormer = spawnLogged(process.execPath, ['-e', STORM, String(ports.haproxy)], { name: 'storm' });
      await stormer.waitForOutput(/storming/, 10_000);
      await new Promise((r) => setTimeout(r, 500));
      storm.push(await medianConnectMs(30));
      await stormer.stop('SIGTERM', 5_000);
      stormSeconds += (Date.now() - stormStart) / 1_000;
      const c = JSON.parse(/\{.*\}/.exec(stormer.output())?.[0] ?? '{}') as typeof counts;
      counts = { routed: counts.routed + c.routed, refused: counts.refused + c.refused, failed: counts.failed + c.failed };
    }
    const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
    const seconds = (Date.now() - started) / 1_000;
    console.log(`calm connect median idle ${idle.map((x) => x.toFixed(1))} ms, storm ${storm.map((x) => x.toFixed(1))} ms; storm ${JSON.stringify(counts)} in ${seconds.toFixed(0)} s`);
    console.log(`calm connect median of medians: idle ${median(idle).toFixed(1)} ms, storm ${median(storm).toFixed(1)} ms (${((median(storm) / median(idle) - 1) * 100).toFixed(0)} %)`);
    expect(counts.refused).toBeGreaterThan(counts.routed); // a storm, refused beyond its rate
    expect(counts.failed).toBe(0); // never a silent close
    // Admitted at most at the rate over the storm windows, plus one rate's worth as each window
    // starts (HAProxy's one-second rate weighs the previous second, empty then).
    expect(counts.routed).toBeLessThanOrEqual(STORM_RATE * (stormSeconds + 3));
  });
});
