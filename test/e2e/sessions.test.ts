// Silent sessions: PostgreSQL lets a session stay silent as long as it likes (a LISTEN-only worker,
// a long CREATE INDEX, an idle psql). pgroute closes an established session only after
// --session-timeout (default 7 days) of silence in both directions; keepalive finds dead peers.
// And what pgroute writes in its state dir is not for every local user to read.

import { readFileSync, rmSync, statSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { portBlock } from '../support/ports.js';
import { startPostgres, type PgServer } from '../support/postgres.js';
import { runCliOnce, startUp, writeTenantsFile } from '../support/pgroute.js';
import { stopAll, type ProcessHandle } from '../support/process.js';
import { psql } from '../support/psql.js';

const ports = portBlock(45);
let server: PgServer;
let dir: string;
let file: string;
let up: ProcessHandle | undefined;

/** One psql session: a query, `silentSeconds` without a byte either way (psql runs a shell command), another query. */
function silentSession(silentSeconds: number) {
  return psql({
    port: ports.haproxy,
    user: 'app',
    db: 'postgres',
    options: '-c pgroute.tenant=quiet',
    input: `SELECT 'before';\n\\! sleep ${silentSeconds}\nSELECT 'after';\n`,
    timeoutMs: (silentSeconds + 15) * 1_000,
  });
}

beforeAll(async () => {
  server = await startPostgres({ name: 'quiet', port: ports.pg[0] });
  ({ dir, file } = writeTenantsFile([{ id: 'quiet', port: server.port }]));
});

afterAll(async () => {
  await up?.stop('SIGINT', 15_000);
  await stopAll();
  await server?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('the rendered defaults', () => {
  it('an established session may stay silent for days; keepalive probes find dead peers; the files are not world-readable', async () => {
    const state = `${dir}/generated`;
    const r = await runCliOnce(['generate', '--tenants', file, '--state-dir', state]);
    expect(r.code, r.stderr).toBe(0);
    const cfg = readFileSync(`${state}/haproxy.cfg`, 'utf8');
    expect(cfg).toMatch(/^\s+timeout tunnel 7d$/m);
    expect(cfg).not.toMatch(/^\s+timeout (client|server) \d+h$/m);
    expect(cfg).toMatch(/^\s+clitcpka-idle 300s$/m);
    expect(cfg).toMatch(/^\s+srvtcpka-idle 300s$/m);
    for (const name of ['haproxy.cfg', 'routes.json', 'spoe.conf', 'layout.json']) {
      expect(statSync(`${state}/${name}`).mode & 0o037, `${name} must be 0640 or tighter`).toBe(0);
    }
  });
});

describe('--session-timeout', () => {
  beforeAll(async () => {
    up = await startUp(ports, file, `${dir}/state`, ['--session-timeout', '3s']);
  });

  it('a session silent for less than the timeout carries on', async () => {
    const r = await silentSession(1);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('before');
    expect(r.stdout).toContain('after');
  }, 30_000);

  it('a session silent for longer is closed by pgroute, not by the server', async () => {
    const r = await silentSession(5);
    expect(r.stdout).toContain('before');
    expect(r.stdout).not.toContain('after');
    expect(r.stderr).toMatch(/server closed the connection unexpectedly|connection to server was lost/);
  }, 30_000);
});
