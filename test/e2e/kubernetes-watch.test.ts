// `pgroute watch --source kubernetes --kube-address cluster-ip --spawn-haproxy` against the fake
// API server (test/support/fake-kube-apiserver.ts), with real HAProxy and real PostgreSQL: Services
// get clusterIP 127.0.0.1 and the port of a local test server, so cluster-ip mode routes to it.
//
// What is shown: a labelled Service is routable within a second; a second namespace claiming the
// same tenant does not take it over (and pgroute logs why); what happens when the owner's Service
// is deleted (the other namespace's claim, refused until then, takes the tenant over: ownership is
// decided afresh on every view, see mergeClaims; this is the default --kube-ownership first-claim,
// whose documented limit this is, and kubernetes-ownership.test.ts shows --kube-ownership declared
// closing it); a watch expired by compaction (410 Gone) and an API server restart are both followed
// without restarting pgroute.

import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { statePaths } from '../../generator/src/index.js';
import { FakeKubeApiServer } from '../support/fake-kube-apiserver.js';
import { startKubeWatch, stopKubeWatch } from '../support/kube-config.js';
import { reloadCount } from '../support/pgroute.js';
import { portBlock } from '../support/ports.js';
import { startPostgresMany, type PgServer } from '../support/postgres.js';
import { waitFor, type ProcessHandle } from '../support/process.js';
import { routedClients } from '../support/routed.js';

const ports = portBlock(6);
const API_PORT = ports.spare[0] as number;
const WITHIN_MS = 1_000;
const T0 = '2024-01-01T00:00:00Z';
const T1 = '2024-01-02T00:00:00Z';

let fake: FakeKubeApiServer;
let servers: PgServer[] = [];
let dir = '';
let state = '';
let watch: ProcessHandle | undefined;
const timings: Record<string, number> = {};
const { outcome, reaches, psqlRouted } = routedClients({ port: ports.haproxy, showOnTimeout: () => watch, timings });

function server(i: number): PgServer {
  const s = servers[i];
  if (!s) throw new Error(`no server ${i}`);
  return s;
}

function service(namespace: string, name: string, tenant: string, port: number, creationTimestamp: string): void {
  fake.createService({ namespace, name, labels: { 'pgroute.tenant': tenant }, clusterIP: '127.0.0.1', ports: [{ name: 'postgres', port }], creationTimestamp });
}

beforeAll(async () => {
  servers = await startPostgresMany(['k-one', 'k-two', 'k-three'].map((name, i) => ({ name, port: ports.pg[i] as number })));
  fake = new FakeKubeApiServer({ port: API_PORT, bookmarkIntervalMs: 60_000 });
  await fake.start();
  dir = mkdtempSync(join(tmpdir(), 'pgroute-kubernetes-watch-'));
  state = join(dir, 'state');
  const t = Date.now();
  watch = await startKubeWatch(ports, dir, fake.url, { name: 'pgroute-watch-k8s' });
  timings['pgroute watch start'] = Date.now() - t;
}, 120_000);

afterAll(() => stopKubeWatch('kubernetes-watch', { watch, fake, dir, timings }), 60_000);

describe('pgroute watch --source kubernetes --kube-address cluster-ip (fake API server, real HAProxy and PostgreSQL)', () => {
  let reloadsAtStart = 0;

  it('a Service with pgroute labels is routable within a second, without a reload', async () => {
    reloadsAtStart = await reloadCount(statePaths(state).masterSocket);
    expect(await outcome('acme')).toBe('refused 3D000');
    const t = Date.now();
    service('team-a', 'acme', 'acme', server(0).port, T0);
    expect(await reaches('add: Service -> routable', 'acme', 'k-one', t)).toBeLessThan(WITHIN_MS);
    expect(await psqlRouted('acme')).toEqual({ ok: true, text: 'k-one' });
    expect(await reloadCount(statePaths(state).masterSocket)).toBe(reloadsAtStart);
  });

  it('a Service in another namespace claiming the same tenant does not take it over; the log says why', async () => {
    service('team-b', 'acme-impostor', 'acme', server(1).port, T1);
    const line = await watch?.waitForOutput(/tenant definition refused.*team-b\/acme-impostor|team-b\/acme-impostor.*tenant definition refused/, 5_000);
    expect(line).toContain('tenant acme belongs to team-a (claimed first by kubernetes service team-a/acme); a claim from team-b is refused');
    for (let i = 0; i < 10; i++) expect(await outcome('acme')).toBe('k-one');
    expect(await psqlRouted('acme')).toEqual({ ok: true, text: 'k-one' });
  });

  it('deleting the owner\'s Service: the other namespace\'s waiting claim takes the tenant over (mergeClaims keeps no memory of owners)', async () => {
    // Documented behaviour, not an endorsement: ownership is decided afresh on every view (oldest
    // claim wins), so once team-a's Service is gone, team-b's claim is the oldest and the tenant
    // moves to team-b's server. Open sessions stay where they are; new ones go to team-b.
    const session = new pg.Client({ host: '127.0.0.1', port: ports.haproxy, user: 'app', database: 'postgres', options: '-c pgroute.tenant=acme' });
    await session.connect();
    try {
      const t = Date.now();
      fake.deleteService('team-a', 'acme');
      expect(await reaches('owner deleted -> other namespace takes over', 'acme', 'k-two', t)).toBeLessThan(WITHIN_MS);
      const r = await session.query<{ cluster_name: string }>('SHOW cluster_name');
      expect(r.rows[0]?.cluster_name).toBe('k-one');
    } finally {
      await session.end().catch(() => undefined);
    }
    expect(await psqlRouted('acme')).toEqual({ ok: true, text: 'k-two' });
    expect(await reloadCount(statePaths(state).masterSocket)).toBe(reloadsAtStart); // a move is a runtime `set server addr`
  });

  it('410 Gone (history compacted past the watch while the API server was away): re-lists and follows', async () => {
    const listsBefore = fake.counters.lists;
    await fake.stop();
    fake.updateService('team-b', 'acme-impostor', (svc) => {
      svc.spec.ports = [{ name: 'postgres', port: server(2).port, targetPort: server(2).port, protocol: 'TCP' }];
    });
    fake.compactHistory();
    const t = Date.now();
    await fake.start();
    // The informer restarts after a backoff (0.4-0.5 s), resumes from its old resourceVersion, gets
    // 410 Gone, lists again and sees the change.
    await reaches('410 Gone -> change followed', 'acme', 'k-three', t, 10_000);
    expect(fake.counters.lists).toBeGreaterThan(listsBefore);
    expect(await psqlRouted('acme')).toEqual({ ok: true, text: 'k-three' });
  });

  it('an API server restart: changes made after it are followed without restarting pgroute', async () => {
    const pid = watch?.pid;
    await fake.restart();
    const t = Date.now();
    service('team-c', 'globex', 'globex', server(0).port, T1);
    // Made while the watch is still re-connecting (backoff 0.4-0.5 s): followed once it is back.
    await reaches('restart -> change during reconnect followed', 'globex', 'k-one', t, 10_000);
    await waitFor(() => fake.openWatches > 0, { timeoutMs: 10_000, what: 'pgroute to watch again' });
    // And one made once it watches again: within a second.
    const t2 = Date.now();
    fake.deleteService('team-c', 'globex');
    expect(await reaches('restart -> later change followed', 'globex', 'refused 3D000', t2)).toBeLessThan(WITHIN_MS);
    const p = await psqlRouted('globex');
    expect(p.ok).toBe(false);
    expect(p.text).toMatch(/no tenant "globex" is served here/);
    expect(watch?.running()).toBe(true);
    expect(watch?.pid).toBe(pid);
    expect(await outcome('acme')).toBe('k-three');
  });
});
