// Replicas on Kubernetes learn of each other from the EndpointSlices of pgroute's own Service
// (`watch --kube-peers-service`), against the test API server with the real @kubernetes/client-node:
// three `pgroute watch` replicas (real HAProxy, pods pgroute-0..2 on 127.0.0.11..13) render each
// other as peers and connect; a pod added and removed reaches every replica's `peers` section by a
// graceful reload that keeps an open session; an API server outage keeps the last list.

import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { statePaths } from '../../generator/src/index.js';
import { FakeKubeApiServer } from '../support/fake-kube-apiserver.js';
import { startKubeWatch, stopKubeWatch } from '../support/kube-config.js';
import { reloadCount } from '../support/pgroute.js';
import { portBlock, replicaPorts, type PortBlock } from '../support/ports.js';
import { startPostgres, type PgServer } from '../support/postgres.js';
import { connectedPeers } from '../support/replicas.js';
import { waitFor, type ProcessHandle } from '../support/process.js';

const block = portBlock(114);
const API_PORT = block.spare[40] as number;
const PEERS_PORT = block.spare[41] as number;
const NS = 'pgroute';

interface Replica {
  readonly name: string;
  readonly ip: string;
  readonly ports: PortBlock;
  readonly dir: string;
  watch?: ProcessHandle;
}

let fake: FakeKubeApiServer;
let server: PgServer;
const replicas: Replica[] = [0, 1, 2].map((i) => ({ name: `pgroute-${i}`, ip: `127.0.0.${11 + i}`, ports: replicaPorts(block, i), dir: mkdtempSync(join(tmpdir(), `pgroute-kube-peers-${i}-`)) }));
const timings: Record<string, number> = {};

const pod = (name: string, ip: string, ready = true) => ({ addresses: [ip], conditions: { ready, serving: ready, terminating: false }, targetRef: { kind: 'Pod', name, namespace: NS } });

/** The `peers pgroute` section of a replica's haproxy.cfg, one trimmed line each. */
function peersSection(r: Replica): string[] {
  const cfg = readFileSync(statePaths(join(r.dir, 'state')).haproxyConfig, 'utf8');
  const m = /^peers pgroute\n((?: {4}.*\n)*)/m.exec(cfg);
  return (m?.[1] ?? '').split('\n').map((l) => l.trim()).filter((l) => l !== '');
}

function expectedSection(self: Replica, others: readonly { name: string; ip: string }[]): string[] {
  const remotes = others.filter((o) => o.name !== self.name).map((o) => `server ${o.name} ${o.ip}:${PEERS_PORT}`);
  // Last: the keepalive table (generator/src/replicas/peer-nudge.ts).
  return [`bind ${self.ip}:${PEERS_PORT}`, `server ${self.name}`, ...remotes, 'table alive type string len 64 size 256 expire 1m store gpt0'];
}

async function everySectionIs(pods: readonly { name: string; ip: string }[]): Promise<void> {
  for (const r of replicas) {
    const want = expectedSection(r, pods);
    await waitFor(() => JSON.stringify(peersSection(r)) === JSON.stringify(want), { timeoutMs: 15_000, what: `${r.name}'s peers section to be ${JSON.stringify(want)} (it is ${JSON.stringify(peersSection(r))})`, process: r.watch });
  }
}

/** The remote peers a replica's HAProxy has an established session with (`show peers`). */
function connectedPeersOf(r: Replica): Promise<string[]> {
  return connectedPeers(statePaths(join(r.dir, 'state')).adminSocket);
}

beforeAll(async () => {
  server = await startPostgres({ name: 'kube-peers', port: block.pg[0] });
  fake = new FakeKubeApiServer({ port: API_PORT, bookmarkIntervalMs: 60_000 });
  await fake.start();
  fake.createService({ namespace: 'tenants', name: 'acme', labels: { 'pgroute.tenant': 'acme' }, clusterIP: '127.0.0.1', ports: [{ name: 'postgres', port: server.port }] });
  fake.putEndpointSlice({ namespace: NS, name: 'pgroute-abc12', service: 'pgroute', endpoints: replicas.map((r) => pod(r.name, r.ip)), ports: [{ name: 'postgres', port: 5432 }] });
  // Not pgroute's: another Service's slice in its namespace, and a `pgroute` Service elsewhere.
  fake.putEndpointSlice({ namespace: NS, name: 'other-xyz', service: 'other', endpoints: [pod('other-0', '127.0.0.99')] });
  fake.putEndpointSlice({ namespace: 'elsewhere', name: 'pgroute-zzz', service: 'pgroute', endpoints: [pod('pgroute-9', '127.0.0.98')] });
  const t = Date.now();
  await Promise.all(
    replicas.map(async (r) => {
      r.watch = await startKubeWatch(r.ports, r.dir, fake.url, {
        name: `watch-${r.name}`,
        args: ['--kube-allowed-ports', `${block.pg[0]}`, '--name', r.name, '--kube-peers-service', 'pgroute', '--kube-peers-namespace', NS, '--kube-peers-port', String(PEERS_PORT)],
      });
    }),
  );
  timings['three replicas start'] = Date.now() - t;
}, 120_000);

afterAll(async () => {
  await Promise.all(replicas.slice(1).map((r) => r.watch?.stop('SIGINT', 15_000)));
  await stopKubeWatch('kubernetes-peers', { watch: replicas[0]?.watch, fake, dir: replicas[0]?.dir ?? '', timings });
  await server?.stop();
  for (const r of replicas.slice(1)) rmSync(r.dir, { recursive: true, force: true });
}, 60_000);

describe('replicas from the EndpointSlices of pgroute\'s Service (watch --kube-peers-service)', () => {
  it('each replica renders the pods of its Service as peers (itself bound to its pod IP) and connects to the other two', async () => {
    await everySectionIs(replicas);
    for (const r of replicas) {
      const others = replicas.filter((o) => o !== r).map((o) => o.name);
      await waitFor(async () => JSON.stringify(await connectedPeersOf(r)) === JSON.stringify(others), { timeoutMs: 15_000, what: `${r.name} connected to ${others.join(', ')} over the peers protocol` });
    }
  });

  it('a pod added (not ready yet) and then removed reaches every replica by a graceful reload; an open session carries on', async () => {
    const session = new pg.Client({ host: '127.0.0.1', port: replicas[0]!.ports.haproxy, user: 'app', database: 'postgres', options: '-c pgroute.tenant=acme' });
    session.on('error', () => {});
    await session.connect();
    const reloads = await Promise.all(replicas.map((r) => reloadCount(statePaths(join(r.dir, 'state')).masterSocket)));
    const t = Date.now();
    const added = { name: 'pgroute-3', ip: '127.0.0.14' };
    fake.putEndpointSlice({ namespace: NS, name: 'pgroute-def34', service: 'pgroute', endpoints: [pod(added.name, added.ip, false)] });
    await everySectionIs([...replicas, added]);
    timings['pod added -> every peers section'] = Date.now() - t;
    // The file is written first, then HAProxy reloads onto it.
    for (const [i, r] of replicas.entries()) {
      await waitFor(async () => (await reloadCount(statePaths(join(r.dir, 'state')).masterSocket)) > (reloads[i] ?? 0), { timeoutMs: 15_000, what: `${r.name} to reload onto its new peers`, process: r.watch });
    }
    expect((await session.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);

    const t2 = Date.now();
    fake.deleteEndpointSlice(NS, 'pgroute-def34');
    await everySectionIs(replicas);
    timings['pod removed -> every peers section'] = Date.now() - t2;
    expect((await session.query('SELECT 2 AS two')).rows).toEqual([{ two: 2 }]);
    await session.end();
  }, 60_000);

  it('while the API server is away the replicas keep their peers; a change made meanwhile arrives once it is back', async () => {
    await fake.stop();
    const added = { name: 'pgroute-4', ip: '127.0.0.15' };
    fake.putEndpointSlice({ namespace: NS, name: 'pgroute-abc12', service: 'pgroute', endpoints: [...replicas, added].map((r) => pod(r.name, r.ip)) });
    for (const r of replicas) expect(peersSection(r)).toEqual(expectedSection(r, replicas));
    await fake.start();
    await everySectionIs([...replicas, added]);
  }, 60_000);
});
