// A replica that stops for good while it holds connections of a paused tenant (`pgroute up`, real
// HAProxy, agent, PostgreSQL 15, node-postgres, clear text and TLS): HAProxy would close them
// without a word when it stops, so pgroute refuses them first, once its drain delay has passed,
// with 57P01 (what PostgreSQL itself says when it shuts down; drivers and poolers connect again, and
// another replica holds them there). Asserted: each held client gets that error, long before the
// pause timeout, and the replica still stops cleanly (exit 0).
// PGROUTE_HAPROXY selects another HAProxy (the 3.x roots of scripts/haproxy-versions.sh).

import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { portBlock } from '../support/ports.js';
import { agentMetric, cliOk, startUpOn, type UpOnServers } from '../support/pgroute.js';
import { stopAll, waitFor } from '../support/process.js';

const ports = portBlock(44);
/** Far longer than the test: an answer before it is the shutdown's, not the timeout's. */
const PAUSE_TIMEOUT_MS = 120_000;
let fixture: UpOnServers | undefined;

beforeAll(async () => {
  fixture = await startUpOn(
    ports,
    [{ name: 'shutdownpg', port: ports.pg[0] as number, database: 'acme' }],
    [{ id: 'acme', port: ports.pg[0] as number }],
    ['--tls', 'auto', '--pause-timeout', `${PAUSE_TIMEOUT_MS}ms`, '--drain-delay', '1s', '--drain-timeout', '30s'],
  );
}, 90_000);

afterAll(async () => {
  await (fixture?.stop() ?? stopAll());
});

/** One connection attempt: 'ok', or the error's SQLSTATE and message (undefined code: closed without a word). */
async function attempt(tls: boolean): Promise<{ code: string | undefined; message: string } | 'ok'> {
  const c = new pg.Client({ host: '127.0.0.1', port: ports.haproxy, user: 'app', password: 'app', database: 'acme', ssl: tls ? { rejectUnauthorized: false } : false, connectionTimeoutMillis: PAUSE_TIMEOUT_MS + 30_000 });
  try {
    await c.connect();
    return 'ok';
  } catch (err) {
    return { code: (err as { code?: string }).code, message: (err as Error).message };
  } finally {
    await c.end().catch(() => undefined);
  }
}

describe('a replica stopping while it holds connections of a paused tenant', () => {
  it('refuses them with 57P01 (connect again) instead of closing them without a word, and stops cleanly', async () => {
    const f = fixture as UpOnServers;
    expect(await attempt(false)).toBe('ok');
    expect(await cliOk(f.stateDir, 'tenant', 'pause', 'acme')).toMatch(/^tenant acme paused/);
    // The command returns once the switch is written; the agent holds once its table says paused.
    await waitFor(async () => (/"paused": true/.test(await readFile(join(f.stateDir, 'routes.json'), 'utf8')) ? true : undefined), { what: 'routes.json to say paused', timeoutMs: 10_000, intervalMs: 20 });
    const t0 = Date.now();
    const held = [attempt(false), attempt(true), attempt(false)];
    await waitFor(async () => ((await agentMetric(ports.agentHealth, 'pgroute_agent_held_connections')) === held.length ? true : undefined), { what: `${held.length} connections held`, timeoutMs: 30_000, intervalMs: 50 });
    f.up.child.kill('SIGTERM');
    const answers = await Promise.all(held);
    const refusal = { code: '57P01', message: 'the router holding this connection for paused tenant "acme" is shutting down; connect again' };
    expect(answers).toEqual(held.map(() => refusal));
    expect(Date.now() - t0).toBeLessThan(PAUSE_TIMEOUT_MS / 2);
    const exit = await f.up.exited;
    expect(exit.code, f.up.output(20)).toBe(0);
    expect(f.up.outputLines().some((l) => l.includes('connections held for paused tenants refused') && l.includes('"held":3'))).toBe(true);
  }, 120_000);
});
