// The CLI as operators use it: errors they can act on, and `pgroute up` stopping cleanly.

import { once } from 'node:events';
import { existsSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import { portBlock, isPortFree } from '../support/ports.js';
import { startPostgres, type PgServer } from '../support/postgres.js';
import { deploymentFlags, runCli, runCliOnce, startUp, writeTenantsFile } from '../support/pgroute.js';
import { stopAll } from '../support/process.js';
import { psql } from '../support/psql.js';

const ports = portBlock(3);
const dirs: string[] = [];
let server: PgServer | undefined;

afterAll(async () => {
  await stopAll();
  await server?.stop();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe('pgroute generate', () => {
  it('renders and validates; a bad tenant is refused with its reason while the others are kept', async () => {
    const { dir, file } = writeTenantsFile([
      { id: 'good', port: 5000 },
      { id: 'Bad Tenant"\nfrontend x', port: 5001 },
      { id: 'badport', port: 70000 },
    ]);
    dirs.push(dir);
    const p = runCli('generate', ['generate', '--tenants', file, ...deploymentFlags(ports, `${dir}/state`)]);
    const exit = await p.exited;
    expect(exit.code, p.output()).toBe(0);
    expect(p.output()).toContain('tenant definition refused');
    expect(p.output()).toContain('port must be an integer from 1 to 65535, got 70000');
    expect(p.output()).toMatch(/tenant id .* is invalid/);
    expect(existsSync(`${dir}/state/haproxy.cfg`)).toBe(true);
  });

  it('a file that is not YAML: exit 2 and the line to look at', async () => {
    const { dir } = writeTenantsFile([]);
    dirs.push(dir);
    const bad = `${dir}/bad.yaml`;
    writeFileSync(bad, 'tenants:\n  - id: a\n   host: [\n');
    const p = runCli('generate', ['generate', '--tenants', bad, ...deploymentFlags(ports, `${dir}/state`)]);
    expect((await p.exited).code).toBe(2);
    expect(p.output()).toMatch(/bad\.yaml: not valid YAML at line \d+/);
  });

  it('a missing file: exit 2 naming it', async () => {
    const p = runCli('generate', ['generate', '--tenants', '/nonexistent/tenants.yaml', '--state-dir', '/tmp/pgroute-nowhere']);
    expect((await p.exited).code).toBe(2);
    expect(p.output()).toContain('cannot read tenants file /nonexistent/tenants.yaml: no such file (ENOENT); check --tenants');
  });
});

describe('pgroute up', () => {
  it('runs HAProxy and the agent in the foreground and stops both on Ctrl-C', async () => {
    server = await startPostgres({ name: 'solo', port: ports.pg[0] as number });
    const { dir, file } = writeTenantsFile([{ id: 'solo', port: server.port }]);
    dirs.push(dir);
    const up = await startUp(ports, file, `${dir}/state`);
    const r = await psql({ host: '127.0.0.1', port: ports.haproxy, user: 'app', db: 'solo', command: 'SHOW cluster_name' });
    expect(r.stdout.trim()).toBe('solo');
    const health = await fetch(`http://127.0.0.1:${ports.agentHealth}/healthz`);
    expect(health.status).toBe(200);
    const metrics = await (await fetch(`http://127.0.0.1:${ports.agentHealth}/metrics`)).text();
    expect(metrics).toMatch(/pgroute_agent_decisions_total\{outcome="route",reason="startup"\} [1-9]/);
    const haproxyMetrics = await (await fetch(`http://127.0.0.1:${ports.stats}/metrics`)).text();
    expect(haproxyMetrics).toMatch(/haproxy_backend_status\{proxy="pg\.solo\.primary",state="UP"\} 1/);

    const exit = await up.stop('SIGINT', 15_000);
    expect(exit.code).toBe(0);
    for (const port of [ports.haproxy, ports.agent, ports.agentHealth, ports.stats]) expect(await isPortFree(port)).toBe(true);
  });

  it('HAProxy stopped by a signal sent to it (Ctrl-C reaches the whole process group, maybe before pgroute sees its own): exit 0; HAProxy killed outright, or its worker alone: exit 1', async () => {
    const { dir, file } = writeTenantsFile([{ id: 'solo', port: (server as PgServer).port }]);
    dirs.push(dir);
    for (const [signal, to, code, line] of [
      ['SIGINT', 'master', 0, /"level":40,.*HAProxy was stopped by a signal sent to it/],
      ['SIGTERM', 'master', 0, /"level":40,.*HAProxy was stopped by a signal sent to it/],
      ['SIGKILL', 'master', 1, /"level":50,.*HAProxy exited unexpectedly; stopping/],
      // The worker alone ends too (its master exits 0), but nobody asked HAProxy to stop.
      ['SIGTERM', 'worker', 1, /"level":50,.*HAProxy exited unexpectedly; stopping/],
    ] as const) {
      const up = await startUp(ports, file, `${dir}/state`);
      try {
        const master = Number(readFileSync(`${dir}/state/haproxy.pid`, 'utf8').trim());
        const worker = Number(readFileSync(`/proc/${master}/task/${master}/children`, 'utf8').trim().split(/\s+/)[0]);
        process.kill(to === 'master' ? master : worker, signal); // pgroute itself is not signalled
        const exit = await up.exited;
        expect(exit.code, `${signal} to the ${to}: ${up.output()}`).toBe(code);
        expect(up.output()).toMatch(line);
        for (const port of [ports.haproxy, ports.agentHealth]) expect(await isPortFree(port)).toBe(true);
      } finally {
        await up.stop('SIGINT', 15_000);
      }
    }
  });

  it('--agent-socket: HAProxy asks the agent over a unix socket only this user can open; no SPOP port is opened', async () => {
    const { dir, file } = writeTenantsFile([{ id: 'solo', port: (server as PgServer).port }]);
    dirs.push(dir);
    const socket = `${dir}/agent.sock`;
    // A socket file left behind by a killed run is replaced.
    const stale = createServer().listen(socket);
    await once(stale, 'listening');
    stale.close();
    const up = await startUp(ports, file, `${dir}/state`, ['--agent-socket', socket]);
    expect(statSync(socket).isSocket()).toBe(true);
    expect(statSync(socket).mode & 0o777).toBe(0o600);
    expect(readFileSync(`${dir}/state/haproxy.cfg`, 'utf8')).toContain(`server agent1 unix@${socket} check`);
    expect(await isPortFree(ports.agent)).toBe(true);
    const r = await psql({ host: '127.0.0.1', port: ports.haproxy, user: 'app', db: 'solo', command: 'SHOW cluster_name' });
    expect(r.stdout.trim()).toBe('solo');
    const refused = await psql({ host: '127.0.0.1', port: ports.haproxy, user: 'app', db: 'nobody', command: 'SELECT 1' });
    expect(refused.stderr).toContain('no tenant "nobody" is served here');
    expect((await up.stop('SIGINT', 15_000)).code).toBe(0);
  });

  it('--agent-socket refuses a path haproxy.cfg could not carry, naming the flag', async () => {
    const { dir, file } = writeTenantsFile([{ id: 'solo', port: 5432 }]);
    dirs.push(dir);
    const r = await runCliOnce(['generate', '--tenants', file, ...deploymentFlags(ports, `${dir}/state`, ['--agent-socket', `${dir}/a b.sock`])]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--agent-socket (PGROUTE_AGENT_SOCKET) must be a socket path');
  });
});
