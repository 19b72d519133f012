// Replicas on Kubernetes learn of each other from the EndpointSlices of pgroute's own Service:
// three watchers (the real @kubernetes/client-node against the test API server) follow a pod added
// and a pod removed, and a watch outage keeps the last list.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pino from 'pino';
import { KubernetesPeers } from '../../generator/src/replicas/kubernetes-peers.js';
import type { SlicePeer } from '../../generator/src/replicas/endpoint-slices.js';
import { FakeKubeApiServer } from '../support/fake-kube-apiserver.js';
import { kubeConfigFor } from '../support/kube-config.js';
import { portBlock } from '../support/ports.js';
import { waitFor } from '../support/process.js';

const ports = portBlock(114);
const PEERS_PORT = 10000;
let fake: FakeKubeApiServer;
const watchers: { peers: KubernetesPeers; seen: (readonly SlicePeer[])[] }[] = [];

const pod = (name: string, ip: string, ready = true) => ({ addresses: [ip], conditions: { ready, serving: ready, terminating: false }, targetRef: { kind: 'Pod', name, namespace: 'pgroute' } });
const names = (peers: readonly SlicePeer[] | undefined): string => (peers ?? []).map((p) => `${p.name}=${p.host}:${p.port}`).join(' ');
const latest = (i: number): readonly SlicePeer[] | undefined => watchers[i]?.seen.at(-1);

async function everyWatcherSees(want: string): Promise<void> {
  for (let i = 0; i < watchers.length; i++) await waitFor(() => names(latest(i)) === want, { timeoutMs: 5_000, what: `watcher ${i} to see ${want} (it sees ${names(latest(i))})` });
}

beforeAll(async () => {
  fake = new FakeKubeApiServer({ port: ports.spare[0] as number, bookmarkIntervalMs: 60_000 });
  await fake.start();
  fake.putEndpointSlice({ namespace: 'pgroute', name: 'pgroute-abc12', service: 'pgroute', endpoints: [pod('pgroute-0', '10.1.0.10'), pod('pgroute-1', '10.1.0.11')], ports: [{ name: 'postgres', port: 5432 }] });
  // Another Service's slice in the same namespace, and pgroute's name in another namespace: not peers.
  fake.putEndpointSlice({ namespace: 'pgroute', name: 'other-xyz', service: 'other', endpoints: [pod('other-0', '10.1.0.99')] });
  fake.putEndpointSlice({ namespace: 'elsewhere', name: 'pgroute-zzz', service: 'pgroute', endpoints: [pod('pgroute-9', '10.9.0.9')] });
  const log = pino({ level: 'warn' });
  for (let i = 0; i < 3; i++) {
    const w = { peers: new KubernetesPeers({ kubeConfig: kubeConfigFor(fake.url), namespace: 'pgroute', service: 'pgroute', port: PEERS_PORT, log, backoff: { initialMs: 50, maxMs: 200 } }), seen: [] as (readonly SlicePeer[])[] };
    watchers.push(w);
    w.seen.push(await w.peers.start((p) => w.seen.push(p)));
  }
}, 60_000);

afterAll(async () => {
  await Promise.all(watchers.map((w) => w.peers.stop()));
  await fake?.stop();
});

describe('replicas from the EndpointSlices of pgroute\'s Service (test API server, real client-node)', () => {
  it('every watcher starts with the pods of pgroute\'s Service in its namespace, and nothing else', () => {
    for (let i = 0; i < 3; i++) expect(names(latest(i))).toBe('pgroute-0=10.1.0.10:10000 pgroute-1=10.1.0.11:10000');
  });

  it('a pod added (not ready yet, in a second slice) and a pod removed reach every watcher', async () => {
    fake.putEndpointSlice({ namespace: 'pgroute', name: 'pgroute-def34', service: 'pgroute', endpoints: [pod('pgroute-2', '10.1.0.12', false)] });
    await everyWatcherSees('pgroute-0=10.1.0.10:10000 pgroute-1=10.1.0.11:10000 pgroute-2=10.1.0.12:10000');
    fake.putEndpointSlice({ namespace: 'pgroute', name: 'pgroute-abc12', service: 'pgroute', endpoints: [pod('pgroute-1', '10.1.0.11')] });
    await everyWatcherSees('pgroute-1=10.1.0.11:10000 pgroute-2=10.1.0.12:10000');
    fake.deleteEndpointSlice('pgroute', 'pgroute-def34');
    await everyWatcherSees('pgroute-1=10.1.0.11:10000');
  });

  it('a slice rewritten with the same pods changes nothing; an API server outage keeps the last list, and changes made meanwhile arrive after it', async () => {
    const before = watchers.map((w) => w.seen.length);
    fake.putEndpointSlice({ namespace: 'pgroute', name: 'pgroute-abc12', service: 'pgroute', endpoints: [pod('pgroute-1', '10.1.0.11', false)] });
    await fake.stop();
    fake.putEndpointSlice({ namespace: 'pgroute', name: 'pgroute-abc12', service: 'pgroute', endpoints: [pod('pgroute-1', '10.1.0.11'), pod('pgroute-3', '10.1.0.13')] });
    for (let i = 0; i < 3; i++) expect(names(latest(i))).toBe('pgroute-1=10.1.0.11:10000');
    await fake.start();
    await everyWatcherSees('pgroute-1=10.1.0.11:10000 pgroute-3=10.1.0.13:10000');
    // The readiness flip alone was no change of the peer list: one list per watcher since.
    expect(watchers.map((w, i) => w.seen.length - (before[i] ?? 0))).toEqual([1, 1, 1]);
  });
});
