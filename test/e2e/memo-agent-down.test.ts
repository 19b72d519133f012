// The verdict memo while the agent is down (docs/memo.md "When the agent is down"): HAProxy and the
// agent as separate processes (`pgroute generate --memo on` + haproxy + `pgroute agent`). A startup
// the agent judged before the outage is still routed from memory, to its own tenant; one it never
// judged fails closed with the agent's 57P03, never routed anywhere.

import { rmSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { portBlock } from '../support/ports.js';
import { startPostgresMany, type PgServer } from '../support/postgres.js';
import { startApart, writeTenantsFile } from '../support/pgroute.js';
import { stopAll, waitFor, type ProcessHandle } from '../support/process.js';
import { psql } from '../support/psql.js';

const ports = portBlock(52);
let servers: PgServer[] = [];
let agent: ProcessHandle;
let dir: string;

const proxy = { host: '127.0.0.1', port: ports.haproxy, user: 'app' };

beforeAll(async () => {
  servers = await startPostgresMany([{ name: 'alpha', port: ports.pg[0] as number }, { name: 'beta', port: ports.pg[1] as number }]);
  const file = writeTenantsFile(servers.map((s) => ({ id: s.name, port: s.port })));
  dir = file.dir;
  ({ agent } = await startApart(ports, file.file, `${dir}/state`, { generate: ['--memo', 'on', '--agent-timeout', '500ms'] }));
  await waitFor(async () => (await psql({ ...proxy, db: 'alpha', command: 'SELECT 1' })).code === 0, { timeoutMs: 10_000, what: 'alpha routable' });
});

afterAll(async () => {
  await stopAll();
  for (const s of servers) await s.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('--memo on, agent down', () => {
  it('routes a startup the agent judged before, to its tenant; refuses one it never judged with 57P03', async () => {
    // The same startup psql sends below (user, database, application_name): judged and remembered now.
    const judged = { ...proxy, db: 'alpha', command: 'SHOW cluster_name' };
    expect((await psql(judged)).stdout.trim()).toBe('alpha');
    await agent.stop('SIGTERM');
    for (let i = 0; i < 3; i++) {
      const r = await psql(judged);
      expect(r.stderr).toBe('');
      expect(r.stdout.trim()).toBe('alpha');
    }
    const unjudged = await psql({ ...proxy, db: 'beta', command: 'SHOW cluster_name' });
    expect(unjudged.code).not.toBe(0);
    expect(unjudged.stdout).toBe('');
    expect(unjudged.stderr).toContain('FATAL:  the pgroute routing agent is not available');
  });
});
