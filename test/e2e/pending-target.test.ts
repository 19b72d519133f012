// A tenant whose backend a reload adds is held, not refused, while the reload is applied (`pgroute up
// --spares 0`, real HAProxy, agent, PostgreSQL 15, node-postgres). The generator gives the agent a
// table without the newcomer's backend before HAProxy changes (the interim table) and one with it
// after; the interim table names the newcomer's target as pending, so a connection that arrives in
// between waits in the hold frontend and is routed once HAProxy has the backend (across the reload:
// the retired worker sends it on to the current one). Before, it was refused 3D000 as an unknown
// tenant for the reload's second or so, as was a tenant whose only target was renamed.
// While loops of real clients connect to the newcomer over and over, the tenants file adds it: every
// connection is refused as unknown until the agent learns of the change, then routed to the
// newcomer's server: none started once the agent's table named the newcomer was refused, none after
// the first that got through, and connections were held as pending (the agent's metrics), none
// refused at the hold's timeout.
// PGROUTE_HAPROXY selects another HAProxy (the 3.x roots of scripts/haproxy-versions.sh).

import { writeFileSync } from 'node:fs';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { statePaths } from '../../generator/src/index.js';
import { portBlock } from '../support/ports.js';
import { reloadCount, startUpOn, type UpOnServers } from '../support/pgroute.js';
import { stopAll, waitFor } from '../support/process.js';

const ports = portBlock(53);
const LOOPS = 4;
/** Routed connections each loop makes after its first, before the loops stop. */
const ROUTED_AFTER = 10;
let fixture: UpOnServers | undefined;

beforeAll(async () => {
  fixture = await startUpOn(
    ports,
    [
      { name: 'pendalpha', port: ports.pg[0] as number, database: 'alpha' },
      { name: 'pendbravo', port: ports.pg[1] as number, database: 'bravo' },
    ],
    [{ id: 'alpha', port: ports.pg[0] as number }],
    // No spare backend: the newcomer needs a reload, the longest window between the two tables.
    ['--spares', '0'],
  );
}, 90_000);

afterAll(async () => {
  await (fixture?.stop() ?? stopAll());
});

/** One connection to tenant bravo: when it started, and the server port it reached or the SQLSTATE (or error) it got. */
async function connectOnce(): Promise<{ readonly at: number; readonly result: string }> {
  const at = performance.now();
  return { at, result: await outcome() };
}

async function outcome(): Promise<string> {
  const c = new pg.Client({ host: '127.0.0.1', port: ports.haproxy, user: 'app', password: 'app', database: 'bravo', connectionTimeoutMillis: 60_000 });
  try {
    await c.connect();
    const r = await c.query<{ port: number }>('select inet_server_port() as port');
    return `routed:${r.rows[0]?.port}`;
  } catch (err) {
    const e = err as { code?: string; message?: string };
    return e.code ?? `error:${e.message ?? String(err)}`;
  } finally {
    await c.end().catch(() => undefined);
  }
}

/** The agent's pgroute_agent_decisions_total{outcome, reason}, pgroute_agent_hold_total{outcome} and pgroute_agent_route_table_tenants. */
async function agentCounts(): Promise<{ tenants: number; pendingHolds: number; released: number; timedOut: number }> {
  const text = await (await fetch(`http://127.0.0.1:${ports.agentHealth}/metrics`)).text();
  const value = (re: RegExp): number => Number(text.split('\n').find((l) => re.test(l))?.split(' ').pop() ?? NaN);
  return {
    tenants: value(/^pgroute_agent_route_table_tenants /),
    pendingHolds: value(/^pgroute_agent_decisions_total\{outcome="hold",reason="pending"\} /),
    released: value(/^pgroute_agent_hold_total\{outcome="released"\} /),
    timedOut: value(/^pgroute_agent_hold_total\{outcome="timed-out"\} /),
  };
}

describe('a tenant a reload adds', () => {
  it('is held while the reload is applied, then routed: no connection refused once the agent knew of it', { timeout: 120_000 }, async () => {
    const f = fixture as UpOnServers;
    const bravoPort = ports.pg[1] as number;
    const masterSocket = statePaths(f.stateDir).masterSocket;
    const reloadsBefore = await reloadCount(masterSocket);
    const before = await agentCounts();
    expect(before).toMatchObject({ tenants: 1, pendingHolds: 0 });

    let stop = false;
    const answered: { readonly at: number; readonly result: string }[][] = Array.from({ length: LOOPS }, () => []);
    const loops = answered.map(async (mine) => {
      while (!stop) mine.push(await connectOnce());
    });
    // Every loop is refused as unknown at least once before the change is written.
    await waitFor(() => answered.every((r) => r.length > 0), { timeoutMs: 30_000, what: 'every loop answered once' });
    writeFileSync(f.tenantsFile, JSON.stringify({ tenants: [{ id: 'alpha', host: '127.0.0.1', port: ports.pg[0] }, { id: 'bravo', host: '127.0.0.1', port: bravoPort }] }, null, 2));
    // The first table that names bravo is the interim one, published before HAProxy reloads.
    await waitFor(async () => (await agentCounts()).tenants === 2, { timeoutMs: 30_000, intervalMs: 10, what: "the agent's table naming bravo", process: f.up });
    const known = performance.now();
    await waitFor(() => answered.every((r) => r.filter((x) => x.result.startsWith('routed:')).length > ROUTED_AFTER), {
      timeoutMs: 60_000,
      what: `each loop routed ${ROUTED_AFTER + 1} connections to bravo`,
      process: f.up,
    });
    stop = true;
    await Promise.all(loops);

    // No connection started once the agent's table named bravo was refused: held, then routed.
    expect(answered.flat().filter((x) => x.at > known && x.result !== `routed:${bravoPort}`)).toEqual([]);
    for (const mine of answered.map((r) => r.map((x) => x.result))) {
      // Refused as unknown (3D000) only before any connection got through; then always routed to bravo's server.
      const first = mine.findIndex((x) => x.startsWith('routed:'));
      expect(mine.slice(0, first).every((x) => x === '3D000'), mine.slice(0, first + 1).join(' ')).toBe(true);
      expect(mine.slice(first).filter((x) => x !== `routed:${bravoPort}`)).toEqual([]);
    }
    // The newcomer came by a reload, and connections that arrived while it was applied were held as
    // pending and then released (routed above), none refused at the timeout.
    expect(await reloadCount(masterSocket)).toBeGreaterThan(reloadsBefore);
    const after = await agentCounts();
    expect(after.pendingHolds).toBeGreaterThan(0);
    // Released when the final table came (one whose second question reached the agent after it was
    // published was answered at once, without a release).
    expect(after.released - before.released).toBeGreaterThan(0);
    expect(after.released - before.released).toBeLessThanOrEqual(after.pendingHolds);
    expect(after.timedOut - before.timedOut).toBe(0);
  });
});
