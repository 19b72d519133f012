// The quick start as a user runs it (scripts/demo.sh): nothing it starts is reachable from other
// machines unless asked, its sample servers want a password, and TLS works (sslmode=require).

import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { portBlock } from '../support/ports.js';
import { REPO_ROOT } from '../support/pgroute.js';
import { spawnLogged, stopAll, type ProcessHandle } from '../support/process.js';
import { psql } from '../support/psql.js';

const ports = portBlock(47);
const pgPorts = [ports.pg[0], ports.pg[1], ports.pg[2]] as number[];
let dir: string;
let demo: ProcessHandle | undefined;

/** Local addresses listening on `port` (TCP), as ss prints them. */
function listeners(port: number): string[] {
  const out = execFileSync('ss', ['-Hltn', `sport = :${port}`], { encoding: 'utf8' });
  return out.split('\n').filter((l) => l.trim() !== '').map((l) => l.trim().split(/\s+/)[3] as string);
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'pgroute-demo-'));
  execFileSync('chmod', ['0755', dir]);
  demo = spawnLogged('bash', ['scripts/demo.sh'], {
    name: 'demo',
    cwd: REPO_ROOT,
    env: {
      DEMO_SKIP_SETUP: '1',
      PGROUTE_DEMO_DIR: `${dir}/demo`,
      PGROUTE_PORT: String(ports.haproxy),
      PGROUTE_DEMO_PG_PORT: String(pgPorts[0]),
      PGROUTE_AGENT_PORT: String(ports.agent),
      PGROUTE_AGENT_HTTP_PORT: String(ports.agentHealth),
      PGROUTE_STATS_PORT: String(ports.stats),
      PGROUTE_BIND: undefined,
    },
  });
  await demo.waitForOutput(/pgroute is running/, 180_000);
}, 200_000);

afterAll(async () => {
  await demo?.stop('SIGINT', 30_000);
  await stopAll();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('scripts/demo.sh', () => {
  it('listens on 127.0.0.1 only: the public port, the agent, the stats and the sample servers', () => {
    for (const port of [ports.haproxy, ports.agentHealth, ports.stats, ...pgPorts]) {
      const bound = listeners(port);
      expect(bound.length, `something listens on ${port}`).toBeGreaterThan(0);
      expect(bound, `port ${port}`).toEqual(bound.map(() => `127.0.0.1:${port}`));
    }
    // The agent answers HAProxy on a 0600 unix socket (`up`'s default), on no TCP port at all.
    expect(listeners(ports.agent)).toEqual([]);
  });

  it('prints the password once and keeps it in a pgpass file only its owner reads', () => {
    const pgpass = `${dir}/demo/pgpass`;
    expect(statSync(pgpass).mode & 0o077).toBe(0);
    const password = /^\*:\*:\*:app:(.+)$/m.exec(readFileSync(pgpass, 'utf8'))?.[1];
    expect(password).toBeDefined();
    expect(demo?.output()).toContain(`password ${password as string}`);
  });

  it('sslmode=require with the password reaches the tenant; without a password it is refused', async () => {
    const env = { PGPASSFILE: `${dir}/demo/pgpass`, PGPASSWORD: undefined };
    const ok = await psql({ port: ports.haproxy, user: 'app', db: 'acme', sslmode: 'require', command: 'SELECT current_setting(\'cluster_name\') || \' \' || (SELECT ssl::text FROM pg_stat_ssl WHERE pid = pg_backend_pid())', env });
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout.trim()).toBe('acme false'); // TLS to pgroute; pgroute to the sample server on loopback
    const tls = await psql({ port: ports.haproxy, user: 'app', db: 'acme', sslmode: 'require', command: 'SHOW cluster_name', env, extraArgs: ['-c', '\\conninfo'] });
    expect(tls.stdout).toMatch(/SSL connection \(protocol: TLSv1\.[23]/);
    const nopass = await psql({ port: ports.haproxy, user: 'app', db: 'acme', sslmode: 'require', command: 'SELECT 1', env: { PGPASSFILE: '/dev/null', PGPASSWORD: undefined } });
    expect(nopass.code).not.toBe(0);
    expect(nopass.stderr).toMatch(/password/);
  });
});
