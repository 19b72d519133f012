// The agent busy for a moment (a pause of its process: GC, a starved CPU, a slow disk) while a
// burst of new connections arrives right after start-up: every connection still waits for its
// verdict and is routed, none refused. On HAProxy 3.2 a cold burst opens about 40 new agent
// connections (20 decisions each at most) and catches up more slowly than 2.6 and 3.0: with a 1 s
// --agent-timeout, a 0.7-0.75 s pause refused 8-30 of such a burst of 60 there (57P03) in about
// half of the runs, and the test below failed on every version (the pause is as long as the whole
// budget).

import { rmSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { portBlock } from '../support/ports.js';
import { startPostgresMany, type PgServer } from '../support/postgres.js';
import { startUp, writeTenantsFile } from '../support/pgroute.js';
import { sleep, stopAll, type ProcessHandle } from '../support/process.js';
import { pgQuery, psql } from '../support/psql.js';

const ports = portBlock(61);
const TENANTS = ['acme', 'globex', 'initech'] as const;
/** How long the agent's process is stopped, with the default --agent-timeout (2 s). */
const PAUSE_MS = 1_000;
let servers: PgServer[] = [];
let up: ProcessHandle;
let tmp: string;

beforeAll(async () => {
  servers = await startPostgresMany(TENANTS.map((name, i) => ({ name, port: ports.pg[i] as number })));
  const file = writeTenantsFile(TENANTS.map((id, i) => ({ id, port: (servers[i] as PgServer).port })));
  tmp = file.dir;
  up = await startUp(ports, file.file, `${tmp}/state`);
});

afterAll(async () => {
  if (up?.pid !== undefined && up.running()) process.kill(up.pid, 'SIGCONT');
  await up?.stop('SIGINT', 10_000);
  await stopAll();
  for (const s of servers) await s.stop();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

describe('an agent paused for a moment', () => {
  it(`60 connections arriving while the agent is stopped for ${PAUSE_MS} ms are all routed, each to its own tenant`, async () => {
    const proxy = { host: '127.0.0.1', port: ports.haproxy, user: 'app' };
    expect((await psql({ ...proxy, db: 'acme', command: 'SELECT 1' })).code).toBe(0);
    const pid = up.pid as number;
    process.kill(pid, 'SIGSTOP');
    let burst: Promise<PromiseSettledResult<{ route: string; at: number }>[]>;
    let resumed = 0;
    try {
      burst = Promise.allSettled(
        Array.from({ length: 60 }, async (_, i) => {
          const id = TENANTS[i % TENANTS.length] as string;
          const rows = await pgQuery<{ cluster_name: string }>({ ...proxy, database: id }, 'SHOW cluster_name');
          return { route: `${id}:${rows[0]?.cluster_name}`, at: performance.now() };
        }),
      );
      await sleep(PAUSE_MS);
    } finally {
      process.kill(pid, 'SIGCONT');
      resumed = performance.now();
    }
    const results = await burst;
    const failed = results.flatMap((r) => (r.status === 'rejected' ? [String(r.reason)] : []));
    // HAProxy logs each exchange that ended without a verdict (SPOE: ... st=N), through up's stdout
    // and so a moment after the client's error: the reason, if any.
    if (failed.length > 0) await up.waitForOutput(/SPOE:/, 5_000).catch(() => undefined);
    expect(failed, `${failed.length} refused; HAProxy's log:\n${up.outputLines(200).filter((l) => l.includes('SPOE:')).join('\n')}`).toEqual([]);
    for (const r of results) {
      if (r.status !== 'fulfilled') continue;
      expect(r.value.route).toMatch(/^(\w+):\1$/);
      // Each waited for the stopped agent: none was decided before it was resumed.
      expect(r.value.at).toBeGreaterThanOrEqual(resumed);
    }
  });
});
