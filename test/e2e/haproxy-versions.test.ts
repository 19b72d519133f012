// The HAProxy pgroute runs (PGROUTE_HAPROXY, else `haproxy` on PATH): the rendered configuration
// starts and reloads without one warning, and the SPOE agent, the Lua action and the master CLI
// work with it. scripts/test.sh runs this file once per available HAProxy version (2.6, 3.0, 3.2).

import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeSslRequest, encodeStartupMessage } from '../../agent/src/pg/frontend.js';
import { reloadMaster, showProc } from '../../generator/src/haproxy/reload.js';
import { parseHaproxyVersion } from '../../generator/src/haproxy/version.js';
import { portBlock } from '../support/ports.js';
import { startPostgresMany, type PgServer } from '../support/postgres.js';
import { runCliOnce, startUp, writeTenantsFile, type TenantSpec } from '../support/pgroute.js';
import { stopAll, waitFor, waitForPort, type ProcessHandle } from '../support/process.js';
import { psql } from '../support/psql.js';
import { errorResponseOf, exchange } from '../support/wire.js';

const ports = portBlock(50);
const HAPROXY = process.env.PGROUTE_HAPROXY ?? 'haproxy';
const VERSION = parseHaproxyVersion(execFileSync(HAPROXY, ['-v'], { encoding: 'utf8' }));
const proxy = { host: '127.0.0.1', port: ports.haproxy };
let server: PgServer;
let up: ProcessHandle;
let dir: string;
let file: string;

/** HAProxy's warnings and alerts, as pgroute logs them (its stderr and `haproxy -c` output). */
function haproxyComplaints(output: string): string[] {
  return output.split('\n').filter((l) => /\[(WARNING|ALERT)\]/.test(l) && !LIFECYCLE.test(l));
}

/**
 * 2.6 reports its own master-worker steps at WARNING level (3.x at NOTICE): these say what a
 * reload does, not that something is wrong with the configuration.
 */
const LIFECYCLE = /Reexecuting Master process|Former worker \(\d+\) exited|Loading success|current worker \(\d+\) exited|All workers exited/;

/** HAProxy started by hand on a state dir's files, with a master socket, as an operator runs it. */
function byHand(stateDir: string): { stop(): Promise<void> } {
  const master = spawn(HAPROXY, ['-W', '-S', `${stateDir}/haproxy-master.sock,mode,600`, '-f', `${stateDir}/haproxy.cfg`], { stdio: 'ignore' });
  return {
    async stop() {
      master.kill('SIGTERM');
      if (master.exitCode === null && master.signalCode === null) await once(master, 'exit');
    },
  };
}

function writeTenants(tenants: TenantSpec[], extra: Record<string, unknown> = {}): void {
  writeFileSync(file, JSON.stringify({ ...extra, tenants: tenants.map((t) => ({ host: '127.0.0.1', ...t })) }, null, 2));
}

beforeAll(async () => {
  [server] = (await startPostgresMany([{ name: 'acme', port: ports.pg[0] as number }])) as [PgServer];
  ({ dir, file } = writeTenantsFile([{ id: 'acme', port: server.port }]));
  up = await startUp(ports, file, `${dir}/state`);
});

afterAll(async () => {
  await up?.stop('SIGINT', 15_000);
  await stopAll();
  await server?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe(`HAProxy ${VERSION ?? '(unknown version)'} at ${HAPROXY}`, () => {
  it('pgroute --version names pgroute and this HAProxy', async () => {
    expect(VERSION).toMatch(/^\d+\.\d+\./);
    const r = await runCliOnce(['--version']);
    expect(r.code).toBe(0);
    expect(r.stdout.split('\n')[0]).toMatch(/^pgroute \d+\.\d+\.\d+/);
    expect(r.stdout).toContain(`HAProxy ${VERSION} (${HAPROXY})`);
  });

  it('starts without a warning, routes (SPOE agent) and answers an SSLRequest (Lua action)', async () => {
    expect(haproxyComplaints(up.output())).toEqual([]);
    const r = await psql({ ...proxy, user: 'app', db: 'acme', sslmode: 'disable', command: 'SHOW cluster_name' });
    expect(r.stderr).toBe('');
    expect(r.stdout.trim()).toBe('acme');
    const ssl = await exchange(ports.haproxy, [encodeSslRequest()], { untilBytes: 1, timeoutMs: 5_000 });
    expect(ssl.received.toString()).toBe('N');
    const refused = await exchange(ports.haproxy, [encodeStartupMessage({ user: 'app', database: 'nosuch' })], { timeoutMs: 5_000 });
    expect(errorResponseOf(refused.received).sqlstate).toBe('3D000');
  });

  it('pgroute generate: haproxy -c accepts the configuration without a warning', async () => {
    const r = await runCliOnce(['generate', '--tenants', file, '--state-dir', `${dir}/generate`, '--port', String(ports.haproxyExtra)]);
    expect(r.code, r.stderr).toBe(0);
    expect(`${r.stdout}${r.stderr}`).not.toContain('warnings');
  });

  it('reloads through the master CLI without a warning; the new listener routes', async () => {
    const before = (await showProc(`${dir}/state/haproxy-master.sock`)).reloads;
    const listeners = [proxy, { host: '127.0.0.1', port: ports.haproxyAlt }].map((l) => ({ port: l.port, address: l.host }));
    writeTenants([{ id: 'acme', port: server.port }], { listeners });
    await waitFor(async () => (await showProc(`${dir}/state/haproxy-master.sock`)).reloads > before, { timeoutMs: 15_000, intervalMs: 100, what: 'a reload' });
    await waitForPort(ports.haproxyAlt, '127.0.0.1', 10_000, { what: 'the new listener' });
    const r = await psql({ host: '127.0.0.1', port: ports.haproxyAlt, user: 'app', db: 'acme', sslmode: 'disable', command: 'SHOW cluster_name' });
    expect(r.stdout.trim()).toBe('acme');
    expect(haproxyComplaints(up.output())).toEqual([]);
  });

  it('a reload asked the moment a hand-started master socket appears is carried out (the master re-executing itself, or still loading)', async () => {
    const hand = `${dir}/hand`;
    const flags = ['--bind', '127.0.0.1', '--port', String(ports.spare[0]), '--stats-port', String(ports.spare[1]), '--agent-port', String(ports.spare[2]), '--agent-http-port', String(ports.spare[3])];
    const g = await runCliOnce(['generate', '--tenants', file, '--state-dir', hand, ...flags]);
    expect(g.code, g.stderr).toBe(0);
    const sock = `${hand}/haproxy-master.sock`;
    // Each round: HAProxy started by hand, asked to reload as soon as its master socket exists.
    // Before pgroute waited this out, every such reload failed on 2.6, 3.0 and 3.2.
    for (let round = 0; round < 3; round++) {
      rmSync(sock, { force: true });
      const master = byHand(hand);
      try {
        await waitFor(() => existsSync(sock), { timeoutMs: 10_000, intervalMs: 1, what: 'the master socket' });
        const outcome = await reloadMaster(sock);
        expect(outcome.ok, outcome.detail).toBe(true);
        expect(outcome.after?.workers).toHaveLength(1);
        expect(outcome.before.workers).not.toContain(outcome.after?.workers[0]);
      } finally {
        await master.stop();
      }
    }
  });

  it('`pgroute reload` of a listener whose port is taken: exit 1, says the load failed (3.1+: why), the previous worker keeps serving and the files are put back', async () => {
    const hand = `${dir}/hand-bind`;
    const own = writeTenantsFile([{ id: 'acme', port: server.port }], { listeners: [{ address: '127.0.0.1', port: ports.spare[5] }] });
    const flags = ['--state-dir', hand, '--stats-port', String(ports.spare[6]), '--agent-port', String(ports.spare[7]), '--agent-http-port', String(ports.spare[8])];
    try {
      expect((await runCliOnce(['generate', '--tenants', own.file, ...flags])).code).toBe(0);
      const sock = `${hand}/haproxy-master.sock`;
      const master = byHand(hand);
      const taken = createServer();
      try {
        await waitFor(async () => (await showProc(sock).catch(() => undefined))?.workers.length === 1, { timeoutMs: 10_000, what: 'the hand-started worker' });
        await new Promise<void>((resolve) => taken.listen(ports.spare[9], '127.0.0.1', resolve));
        const files = (): string[] => ['haproxy.cfg', 'spoe.conf', 'routes.json', 'deployment.json', 'layout.json'].map((f) => readFileSync(`${hand}/${f}`, 'utf8'));
        const previous = files();
        writeFileSync(own.file, JSON.stringify({ listeners: [{ address: '127.0.0.1', port: ports.spare[5] }, { address: '127.0.0.1', port: ports.spare[9] }], tenants: [{ id: 'acme', host: '127.0.0.1', port: server.port }] }));
        const r = await runCliOnce(['reload', '--tenants', own.file, ...flags]);
        expect(r.code, r.stderr).toBe(1);
        const line = r.stderr.trimEnd();
        expect(line).toMatch(/^pgroute: reload failed: the master reports the new configuration failed to load; the previous workers keep serving/);
        expect(line).toMatch(/; the state dir's files are back to the previous configuration$/);
        // What the running worker has is what a later start or reload finds.
        expect(files()).toEqual(previous);
        const [major = 0, minor = 0] = (VERSION ?? '').split('.').map(Number);
        if (major > 3 || (major === 3 && minor >= 1)) expect(line).toMatch(/cannot bind socket|Address already in use/);
        // The previous worker still answers on its listener (the SSLRequest's 'N' is HAProxy's own).
        const ssl = await exchange(ports.spare[5] as number, [encodeSslRequest()], { untilBytes: 1, timeoutMs: 5_000 });
        expect(ssl.received.toString()).toBe('N');
        expect((await showProc(sock)).serving).toHaveLength(1);
      } finally {
        taken.close();
        await master.stop();
      }
    } finally {
      rmSync(own.dir, { recursive: true, force: true });
    }
  });

  it('pgroute_build_info names this HAProxy version', async () => {
    const res = await fetch(`http://127.0.0.1:${ports.agentHealth}/metrics`);
    const text = await res.text();
    const line = text.split('\n').find((l) => l.startsWith('pgroute_build_info{'));
    expect(line).toContain(`haproxy_version="${VERSION}"`);
    expect(line).toContain(`node_version="${process.version}"`);
    expect(line).toMatch(/ 1$/);
  });
});
