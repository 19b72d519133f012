// `pgroute watch --source docker` started while dockerd cannot be reached (DOCKER_HOST names a unix
// socket that does not exist yet): pgroute neither exits nor waits in silence. It retries with
// backoff, a warning says every 10 s what is awaited, from where, and the last error, /readyz
// answers 503 (and /healthz 200: alive, so a liveness probe does not restart it), as with an
// unreachable Kubernetes API server. Then the socket appears (a relay to the real dockerd), and the
// same process starts and routes the tenant of a labelled PostgreSQL container through real HAProxy.

import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanupOnExit, DOCKER_SOCKET, ensureDocker, removeContainers, runContainer, testPrefix } from '../support/docker.js';
import { ensurePostgresImage } from '../support/docker-images.js';
import { deploymentFlags, runCli } from '../support/pgroute.js';
import { portBlock } from '../support/ports.js';
import { waitFor, type ProcessHandle } from '../support/process.js';
import { clusterName } from '../support/routed.js';

const ports = portBlock(58);
const P = testPrefix('docker-unreachable');
const TAG = `${(process.pid % 1296).toString(36)}${Date.now().toString(36).slice(-4)}`;
const TENANT = `du${TAG}-late`;
const RUN_LABEL = 'com.example.pgroute-run';

let dir = '';
let socket = '';
let relay: net.Server | undefined;
const relayed = new Set<net.Socket>();
let watch: ProcessHandle | undefined;

async function probe(path: '/readyz' | '/healthz'): Promise<{ status: number; body: { status?: string; problem?: string } }> {
  const r = await fetch(`http://127.0.0.1:${ports.agentHealth}${path}`);
  return { status: r.status, body: (await r.json()) as { status?: string; problem?: string } };
}

/** The socket appears: every connection to it is piped to the real dockerd's. */
async function startRelay(): Promise<void> {
  relay = net.createServer((client) => {
    const engine = net.connect(DOCKER_SOCKET);
    for (const s of [client, engine]) {
      relayed.add(s);
      s.on('error', () => s.destroy());
      s.on('close', () => relayed.delete(s));
    }
    client.pipe(engine).pipe(client);
  });
  await new Promise<void>((resolve) => relay?.listen(socket, resolve));
}

beforeAll(async () => {
  await ensureDocker();
  const image = await ensurePostgresImage();
  cleanupOnExit(P);
  // Running before pgroute starts, so that the first list, once dockerd answers, holds it.
  await runContainer({ name: `${P}pg`, image, labels: { 'pgroute.tenant': TENANT, [RUN_LABEL]: TAG }, env: { CLUSTER_NAME: TENANT } });
  dir = mkdtempSync(join(tmpdir(), 'pgroute-docker-unreachable-'));
  socket = join(dir, 'docker.sock');
  const args = ['watch', '--source', 'docker', '--docker-constraint', `label=${RUN_LABEL}=${TAG}`, ...deploymentFlags(ports, join(dir, 'state'), ['--spawn-haproxy'])];
  watch = runCli('pgroute-watch-docker-unreachable', args, { env: { DOCKER_HOST: `unix://${socket}` } });
}, 300_000);

afterAll(async () => {
  await watch?.stop('SIGINT', 15_000);
  for (const s of relayed) s.destroy();
  await new Promise<void>((resolve) => (relay?.listening ? relay.close(() => resolve()) : resolve()));
  await removeContainers(P).catch(() => undefined);
  if (dir) rmSync(dir, { recursive: true, force: true });
}, 60_000);

describe('pgroute watch --source docker with dockerd unreachable at start', () => {
  it('retries with backoff and says every 10 s what it waits for, from where, and the last error; it does not exit', async () => {
    const lost = await watch?.waitForOutput(/lost Docker at unix:\/\//, 30_000);
    expect(lost).toContain(`lost Docker at unix://${socket}`);
    const still = await watch?.waitForOutput(/still waiting for the first list of Docker containers/, 30_000);
    expect(still).toContain(`still waiting for the first list of Docker containers at unix://${socket} (10 s so far; retrying with backoff)`);
    expect(still).toContain('check that dockerd is running');
    expect(still).toMatch(/"lastError":"[^"]*ENOENT/);
    expect(watch?.running()).toBe(true);
  });

  it('meanwhile /readyz answers 503 saying what is awaited, and /healthz 200', async () => {
    const ready = await waitFor(async () => (await probe('/readyz').catch(() => undefined)) ?? undefined, { timeoutMs: 10_000, intervalMs: 100, what: 'the metrics address answering' });
    expect(ready).toEqual({ status: 503, body: expect.objectContaining({ status: 'not ready', problem: 'starting: waiting for the first view of the docker source' }) });
    expect((await probe('/healthz')).status).toBe(200);
    expect(watch?.output()).not.toMatch(/pgroute is running/);
  });

  it('once the socket answers, the same process starts, reports ready and routes the tenant', async () => {
    await startRelay();
    await watch?.waitForOutput(/pgroute is running/, 60_000);
    await waitFor(async () => ((await probe('/readyz').catch(() => undefined))?.status === 200 ? true : undefined), { timeoutMs: 15_000, intervalMs: 100, what: '/readyz 200' });
    const routed = await waitFor(
      async () => clusterName({ host: '127.0.0.1', port: ports.haproxy, user: 'postgres', options: `-c pgroute.tenant=${TENANT}` }).catch(() => undefined),
      { timeoutMs: 30_000, intervalMs: 200, what: `${TENANT} routed` },
    );
    expect(routed).toBe(TENANT);
  });
});
