// Pause limits with `pgroute agent` run apart (`pgroute generate` + haproxy + `pgroute agent`, as the
// agent-failure test runs them): the agent takes the same --pause-timeout and --pause-max-held
// (and their variables) as `up`/`watch`, validated alike, so a held connection is refused with the
// pause's own 57P03 at the timeout the generator rendered, and over the bound with 53300 at once.
// When the agent dies, a held connection fails closed, and HAProxy's log says why.

import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { portBlock } from '../support/ports.js';
import { startPostgresMany, type PgServer } from '../support/postgres.js';
import { agentMetric, runCliOnce, startApart, writeTenantsFile } from '../support/pgroute.js';
import { stopAll, waitFor, type ProcessHandle } from '../support/process.js';

const ports = portBlock(56);
const PAUSE_TIMEOUT_MS = 3000;
const MAX_HELD = 2;
let servers: PgServer[] = [];
let agent: ProcessHandle;
let haproxy: ProcessHandle;
let tmp: string;
let routes: string;

/** routes.json with acme paused or not, as the pipeline of `up`/`watch` would write it; SIGHUP reloads it. */
async function setPaused(paused: boolean): Promise<void> {
  const table = JSON.parse(readFileSync(routes, 'utf8')) as { version: string; tenants: { id: string; paused?: boolean }[] };
  table.version = `${table.version}-${paused ? 'p' : 'r'}${Date.now()}`;
  table.tenants = table.tenants.map(({ paused: _drop, ...t }) => (t.id === 'acme' && paused ? { ...t, paused: true } : t));
  writeFileSync(routes, JSON.stringify(table));
  const seen = agent.outputLines().filter((l) => l.includes('route table reloaded')).length;
  agent.child.kill('SIGHUP');
  await waitFor(() => agent.outputLines().filter((l) => l.includes('route table reloaded')).length > seen, { what: 'the agent to reload routes.json', timeoutMs: 10_000, intervalMs: 20 });
}

function connect(): Promise<{ ok: true } | { code: string | undefined; message: string }> {
  const c = new pg.Client({ host: '127.0.0.1', port: ports.haproxy, user: 'app', database: 'acme', connectionTimeoutMillis: 30_000 });
  return c.connect().then(
    async () => {
      await c.end();
      return { ok: true } as const;
    },
    (err: { code?: string; message: string }) => ({ code: err.code, message: err.message }),
  );
}

const heldNow = (): Promise<number> => agentMetric(ports.agentHealth, 'pgroute_agent_held_connections');

beforeAll(async () => {
  servers = await startPostgresMany([{ name: 'acme', port: ports.pg[0] as number }]);
  const file = writeTenantsFile([{ id: 'acme', port: ports.pg[0] as number }]);
  tmp = file.dir;
  const limits = ['--pause-timeout', `${PAUSE_TIMEOUT_MS}ms`, '--pause-max-held', String(MAX_HELD)];
  // The agent: the timeout as a flag, the bound from its variable: both as `up` takes them.
  const apart = await startApart(ports, file.file, `${tmp}/state`, {
    generate: [...limits, '--memo', 'off'], // the agent decides every startup: see docs/memo.md for --memo on apart
    agent: ['--pause-timeout', `${PAUSE_TIMEOUT_MS}ms`],
    agentEnv: { PGROUTE_PAUSE_MAX_HELD: String(MAX_HELD) },
  });
  ({ agent, haproxy, routes } = apart);
  await waitFor(async () => 'ok' in (await connect()), { timeoutMs: 10_000, what: 'first routed connection' });
}, 60_000);

afterAll(async () => {
  await stopAll();
  for (const s of servers) await s.stop();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

describe('pgroute agent run apart: --pause-timeout and --pause-max-held', () => {
  it('holds by the flags it was given: the pause 57P03 at the timeout, 53300 over the bound, release at resume', async () => {
    await setPaused(true);
    const t0 = Date.now();
    expect(await connect()).toEqual({ code: '57P03', message: `tenant "acme" is paused for maintenance and was not resumed within ${PAUSE_TIMEOUT_MS / 1000}s; try again later` });
    expect(Date.now() - t0).toBeGreaterThanOrEqual(PAUSE_TIMEOUT_MS - 100);

    const held = Array.from({ length: MAX_HELD }, () => connect());
    await waitFor(async () => (await heldNow()) === MAX_HELD, { what: `${MAX_HELD} connections held`, timeoutMs: PAUSE_TIMEOUT_MS, intervalMs: 10 });
    expect(await connect()).toEqual({ code: '53300', message: 'too many connections are waiting for paused tenant "acme"; try again later' });
    await setPaused(false);
    expect(await Promise.all(held)).toEqual(Array.from({ length: MAX_HELD }, () => ({ ok: true })));
  }, 60_000);

  it('fails a held connection closed (57P03) when the agent dies, and HAProxy logs the failed exchange', async () => {
    // The holds above ended with the agent's answers (release, refusal): no line for them.
    expect(haproxy.output()).not.toContain('SPOE: [pgroute-hold-agent]');
    await setPaused(true);
    const held = connect();
    await waitFor(async () => (await heldNow()) === 1, { what: 'one connection held', timeoutMs: PAUSE_TIMEOUT_MS, intervalMs: 10 });
    agent.child.kill('SIGKILL');
    const killedAt = Date.now();
    expect(await held).toEqual({ code: '57P03', message: 'the pgroute routing agent is not available; the connection was not routed' });
    // At once, not at the hold's timeout: the agent's connection closed.
    expect(Date.now() - killedAt).toBeLessThan(PAUSE_TIMEOUT_MS);
    await waitFor(() => /SPOE: \[pgroute-hold-agent\] <GROUP:pgroute-hold> sid=\d+ st=[1-9]\d*/.test(haproxy.output()), { what: "HAProxy's SPOE line for the held connection", timeoutMs: 5_000, intervalMs: 20 });
  }, 60_000);

  it('refuses the values `up` refuses, naming the flag and its variable (exit 2)', async () => {
    const bad = await runCliOnce(['agent', '--routes', routes, '--port', String(ports.agentAlt), '--http-port', String(ports.agentAltHealth), '--pause-timeout', '20m']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--pause-timeout (PGROUTE_PAUSE_TIMEOUT) must be a duration of at most 10m');
    const up = await runCliOnce(['up', '--tenants', '/nonexistent.yaml', '--pause-timeout', '20m']);
    expect(up.code).toBe(2);
    expect(up.stderr).toContain('--pause-timeout (PGROUTE_PAUSE_TIMEOUT) must be a duration of at most 10m');
  }, 30_000);
});
