// The access switch survives a restart of every replica on Kubernetes (`watch --access-configmap`):
// three `pgroute watch` replicas (real HAProxy, peers from the EndpointSlices of the test API
// server, tenants from its Services, the real @kubernetes/client-node); `tenant disable` in one of
// them says it wrote the ConfigMap; all three are stopped, their state dirs deleted (a pod's
// emptyDir), and started again: each refuses the tenant on its first connection. Enabling it again
// is kept likewise. Ports: portBlock(31).

import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FakeKubeApiServer } from '../support/fake-kube-apiserver.js';
import { startKubeWatch } from '../support/kube-config.js';
import { CLI, REPO_ROOT } from '../support/pgroute.js';
import { portBlock, replicaPorts, type PortBlock } from '../support/ports.js';
import { startPostgres, type PgServer } from '../support/postgres.js';
import { stopAll, type ProcessHandle } from '../support/process.js';
import { routedClients } from '../support/routed.js';

const block = portBlock(31);
const API_PORT = block.spare[40] as number;
const PEERS_PORT = block.spare[41] as number;
const NS = 'pgroute';
const CM = 'pgroute-access';

interface Replica {
  readonly name: string;
  readonly ip: string;
  readonly ports: PortBlock;
  readonly dir: string;
  watch?: ProcessHandle;
}

let fake: FakeKubeApiServer;
let server: PgServer;
let tmp = '';
let replicas: Replica[] = [];
const timings: Record<string, number> = {};
const pod = (r: Replica) => ({ addresses: [r.ip], conditions: { ready: true, serving: true, terminating: false }, targetRef: { kind: 'Pod', name: r.name, namespace: NS } });
const stateDir = (r: Replica): string => join(r.dir, 'state');
const via = (r: Replica) => routedClients({ port: r.ports.haproxy, timings, showOnTimeout: () => r.watch });

function start(r: Replica): Promise<ProcessHandle> {
  return startKubeWatch(r.ports, r.dir, fake.url, {
    name: `watch-${r.name}`,
    args: ['--kube-allowed-ports', `${block.pg[0]}`, '--name', r.name, '--kube-peers-service', 'pgroute', '--kube-peers-namespace', NS, '--kube-peers-port', String(PEERS_PORT), '--access-configmap', `${NS}/${CM}`],
  });
}

/** `pgroute <args>` in a replica's "pod": its kubeconfig (the service account's stand-in). */
function cli(r: Replica, args: readonly string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { cwd: REPO_ROOT, timeout: 60_000, env: { ...process.env, KUBECONFIG: join(r.dir, 'kubeconfig'), KUBERNETES_SERVICE_HOST: '' } }, (err, stdout, stderr) => {
      resolve({ code: err === null ? 0 : typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1, stdout, stderr });
    });
  });
}

const storedEntries = (): Record<string, { state: string; version: number }> => JSON.parse(fake.getConfigMap(NS, CM)?.data?.['access.json'] ?? '{"entries":{}}').entries;

/** Stops every replica, deletes its state dir (an emptyDir goes with its pod), starts them all again. */
async function restartAllFromEmpty(): Promise<void> {
  await Promise.all(replicas.map((r) => r.watch?.stop('SIGINT', 15_000)));
  for (const r of replicas) {
    rmSync(stateDir(r), { recursive: true, force: true });
    mkdirSync(stateDir(r), { recursive: true });
  }
  const t = Date.now();
  await Promise.all(replicas.map(async (r) => (r.watch = await start(r))));
  timings['three replicas restarted from empty state dirs'] = Date.now() - t;
}

let refusal = '';

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'pgroute-access-durable-'));
  replicas = [0, 1, 2].map((i) => ({ name: `pgroute-${i}`, ip: `127.0.0.${21 + i}`, ports: replicaPorts(block, i), dir: join(tmp, `r${i}`) }));
  for (const r of replicas) mkdirSync(stateDir(r), { recursive: true });
  server = await startPostgres({ name: 'acme', port: block.pg[0] });
  fake = new FakeKubeApiServer({ port: API_PORT, bookmarkIntervalMs: 60_000 });
  await fake.start();
  fake.createService({ namespace: 'tenants', name: 'acme', labels: { 'pgroute.tenant': 'acme' }, clusterIP: '127.0.0.1', ports: [{ name: 'postgres', port: server.port }] });
  fake.putEndpointSlice({ namespace: NS, name: 'pgroute-abc12', service: 'pgroute', endpoints: replicas.map(pod), ports: [{ name: 'postgres', port: 5432 }] });
  // What kubernetes/base/configmap-access.yaml creates: the ConfigMap, without data.
  fake.createConfigMap({ namespace: NS, name: CM });
  await Promise.all(replicas.map(async (r) => (r.watch = await start(r))));
  refusal = await via(replicas[0]!).outcome('nosuch');
}, 180_000);

afterAll(async () => {
  await Promise.all(replicas.map((r) => r.watch?.stop('SIGINT', 15_000)));
  await fake?.stop();
  await stopAll();
  await server?.stop();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
  console.log(`access-durable timings (ms): ${JSON.stringify(timings)}`);
}, 60_000);

describe('the access switch in a ConfigMap survives a restart of every replica (watch --access-configmap)', () => {
  it('tenant disable in one pod says it wrote the ConfigMap; all three refuse the tenant', async () => {
    expect(refusal).toMatch(/^refused [0-9A-Z]{5}$/);
    for (const r of replicas) expect(await via(r).outcome('acme')).toBe('acme');
    const d = await cli(replicas[1]!, ['tenant', 'disable', 'acme', '--state-dir', stateDir(replicas[1]!)]);
    const t = Date.now();
    expect(d.code, d.stderr).toBe(0);
    expect(d.stdout).toBe(
      `tenant acme disabled: written to ${stateDir(replicas[1]!)}/access.json, the ConfigMap ${NS}/${CM} and HAProxy's table pgroute-access; replicated to peers pgroute-0, pgroute-2 through HAProxy peers (a peer that is down learns it when it reconnects)\n`,
    );
    expect(storedEntries()['acme']?.state).toBe('disabled');
    await Promise.all(replicas.map((r) => via(r).reaches(`disable: refused on ${r.name}`, 'acme', refusal, t, 10_000)));
  });

  it('all replicas stopped and restarted from empty state dirs: each refuses the tenant on its first connection', async () => {
    await restartAllFromEmpty();
    // The first connection to each after it reports running, with no wait.
    for (const r of replicas) expect(await via(r).outcome('acme'), r.name).toBe(refusal);
    for (const r of replicas) expect(r.watch?.output(200) ?? '', r.name).toMatch(/access switches read from the ConfigMap pgroute\/pgroute-access \(before the first configuration\)/);
  }, 120_000);

  it('enable in another pod is kept the same way; an older disable never comes back', async () => {
    const e = await cli(replicas[2]!, ['tenant', 'enable', 'acme', '--state-dir', stateDir(replicas[2]!)]);
    const t = Date.now();
    expect(e.code, e.stderr).toBe(0);
    expect(e.stdout).toMatch(new RegExp(`^tenant acme enabled: written to .*, the ConfigMap ${NS}/${CM} and HAProxy's table`));
    await Promise.all(replicas.map((r) => via(r).reaches(`enable: routed on ${r.name}`, 'acme', 'acme', t, 10_000)));
    expect(storedEntries()['acme']?.state).toBe('enabled');
    await restartAllFromEmpty();
    for (const r of replicas) expect(await via(r).outcome('acme'), r.name).toBe('acme');
  }, 120_000);
});
