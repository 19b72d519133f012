// `pgroute watch --source kubernetes` started while the Kubernetes API server does not answer: first
// an address that accepts connections and never answers (dropped packets, a stuck proxy), then one
// where nothing listens (stopped). pgroute neither waits in silence nor exits: each list is given up
// after --kube-request-timeout and retried with backoff, a warning says what is awaited and from
// where, /readyz answers 503 (and /healthz 200: alive, so a liveness probe does not restart it).
// Then the test API server (test/support/fake-kube-apiserver.ts) comes up at that address with a
// Service, and the same process starts and routes its tenant through real HAProxy and PostgreSQL.

import { mkdtempSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FakeKubeApiServer } from '../support/fake-kube-apiserver.js';
import { kubeConfigFor, stopKubeWatch } from '../support/kube-config.js';
import { deploymentFlags, runCli, runCliOnce } from '../support/pgroute.js';
import { portBlock } from '../support/ports.js';
import { startPostgres, type PgServer } from '../support/postgres.js';
import { waitFor, type ProcessHandle } from '../support/process.js';
import { routedClients } from '../support/routed.js';

// Block 18: spare[0] is agent/test/pg/psql-capture.test.ts's.
const ports = portBlock(18);
const API_PORT = ports.spare[1] as number;
const API_URL = `http://127.0.0.1:${API_PORT}`;

let silent: net.Server | undefined;
const held = new Set<net.Socket>();
let fake: FakeKubeApiServer | undefined;
let server: PgServer | undefined;
let dir = '';
let kubeEnv: Record<string, string | undefined> = {};
let watch: ProcessHandle | undefined;
const timings: Record<string, number> = {};
const { outcome } = routedClients({ port: ports.haproxy, showOnTimeout: () => watch, timings });

async function probe(path: '/readyz' | '/healthz'): Promise<{ status: number; body: { status?: string; problem?: string } }> {
  const r = await fetch(`http://127.0.0.1:${ports.agentHealth}${path}`);
  return { status: r.status, body: (await r.json()) as { status?: string; problem?: string } };
}

beforeAll(async () => {
  server = await startPostgres({ name: 'kube-late', port: ports.pg[0] });
  // Accepts and never answers.
  silent = net.createServer((socket) => {
    held.add(socket);
    socket.on('error', () => {});
  });
  await new Promise<void>((resolve) => silent?.listen(API_PORT, '127.0.0.1', resolve));
  dir = mkdtempSync(join(tmpdir(), 'pgroute-kube-unreachable-'));
  const kubeconfig = join(dir, 'kubeconfig');
  writeFileSync(kubeconfig, kubeConfigFor(API_URL).exportConfig());
  const args = ['watch', '--source', 'kubernetes', '--kube-address', 'cluster-ip', '--kube-allowed-ports', `${ports.pg[0]}-${ports.pg[9]}`, '--kube-request-timeout', '2s', ...deploymentFlags(ports, join(dir, 'state'), ['--spawn-haproxy'])];
  kubeEnv = { KUBECONFIG: kubeconfig, KUBERNETES_SERVICE_HOST: undefined, KUBERNETES_SERVICE_PORT: undefined };
  watch = runCli('pgroute-watch-unreachable', args, { env: kubeEnv });
}, 60_000);

afterAll(async () => {
  for (const s of held) s.destroy();
  await new Promise<void>((resolve) => (silent?.listening ? silent.close(() => resolve()) : resolve()));
  await stopKubeWatch('kubernetes-unreachable', { watch, fake, dir, timings });
  await server?.stop();
}, 60_000);

describe('pgroute watch --source kubernetes with an unreachable API server at start', () => {
  it('an API server that never answers: each list given up after --kube-request-timeout, retried, and said so', async () => {
    const failed = await watch?.waitForOutput(/listing\/watching kubernetes services failed; retrying \(nothing from this source is applied and \/readyz answers 503 until a first list succeeds\)/, 30_000);
    expect(failed).toContain(`"err":"listing kubernetes services in * from ${API_URL}: no answer within 2000 ms"`);
    const still = await watch?.waitForOutput(/still waiting for the first list of kubernetes services in \* from /, 30_000);
    expect(still).toContain(`still waiting for the first list of kubernetes services in * from ${API_URL}`);
    expect(still).toContain('"lastError":"listing kubernetes services in * from');
    expect(watch?.running()).toBe(true);
  });

  it('meanwhile /readyz answers 503 saying what is awaited, and /healthz 200', async () => {
    const ready = await waitFor(async () => (await probe('/readyz').catch(() => undefined)) ?? undefined, { timeoutMs: 10_000, intervalMs: 100, what: 'the metrics address answering' });
    expect(ready).toEqual({ status: 503, body: expect.objectContaining({ status: 'not ready', problem: 'starting: waiting for the first view of the kubernetes source' }) });
    expect((await probe('/healthz')).status).toBe(200);
    expect(watch?.output()).not.toMatch(/pgroute is running/);
  });

  it('plan, which reads one view, gives up after 10 s with one line naming what it awaited (exit 1), never hangs', async () => {
    const r = await runCliOnce(['plan', '--source', 'kubernetes', '--kube-request-timeout', '2s', '--no-check', '--state-dir', join(dir, 'state')], 60_000, { ...kubeEnv, PGROUTE_LOG_LEVEL: 'error' });
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr.trim()).toMatch(new RegExp(`^pgroute: gave up waiting for the first list of kubernetes services in \\* from ${API_URL.replace(/[.]/g, '\\.')} after 10 s: .*; check that the Kubernetes API server is reachable from here and the credentials`));
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
  }, 60_000);

  it('nothing listening at the address (stopped): the refused connection is retried too', async () => {
    for (const s of held) s.destroy();
    await new Promise<void>((resolve) => silent?.close(() => resolve()));
    const refused = await watch?.waitForOutput(/ECONNREFUSED.*listing\/watching kubernetes services failed; retrying \(nothing from this source|listing\/watching kubernetes services failed; retrying \(nothing from this source.*ECONNREFUSED|"err":"[^"]*ECONNREFUSED[^"]*".*retrying \(nothing from this source/, 30_000);
    expect(refused).toBeDefined();
    expect((await probe('/readyz')).status).toBe(503);
  });

  it('once the API server answers, the same process starts, reports ready and routes the tenant', async () => {
    const t = Date.now();
    fake = new FakeKubeApiServer({ port: API_PORT, bookmarkIntervalMs: 60_000 });
    await fake.start();
    fake.createService({ namespace: 'team-a', name: 'late-db', labels: { 'pgroute.tenant': 'late' }, clusterIP: '127.0.0.1', ports: [{ name: 'postgres', port: ports.pg[0] as number }], creationTimestamp: '2024-01-01T00:00:00Z' });
    await watch?.waitForOutput(/pgroute is running/, 60_000);
    timings['API up to running'] = Date.now() - t;
    await waitFor(async () => ((await probe('/readyz').catch(() => undefined))?.status === 200 ? true : undefined), { timeoutMs: 15_000, intervalMs: 100, what: '/readyz 200' });
    expect(await outcome('late')).toBe('kube-late');
  });
});
