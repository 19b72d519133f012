// The Kubernetes source against the real @kubernetes/client-node informers and a fake apiserver
// (test/support/fake-kube-apiserver.ts). Ports 24100-24149, one per test.

import { Writable } from 'node:stream';
import { ListWatch, Watch, CoreV1Api, type V1Service } from '@kubernetes/client-node';
import { pino, type Logger } from 'pino';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { FakeKubeApiServer, type FakeKubeApiServerOptions, type ServiceInput } from '../../../test/support/fake-kube-apiserver.js';
import { kubeConfigFor } from '../../../test/support/kube-config.js';
import { KubernetesSource, type KubernetesSourceOptions } from '../../src/sources/kubernetes.js';
import { targetPolicyFromFlags } from '../../src/sources/kubernetes/target-policy.js';
import type { SourceView } from '../../src/sources/source.js';
import type { Tenant } from '../../src/model.js';

const T0 = '2024-01-01T00:00:00Z';
const T1 = '2024-01-02T00:00:00Z';
const T2 = '2024-01-03T00:00:00Z';


/** A pino logger whose records the test can read. */
function captureLog(): { log: Logger; records: Record<string, unknown>[] } {
  const records: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const line of chunk.toString('utf8').split('\n')) if (line) records.push(JSON.parse(line) as Record<string, unknown>);
      cb();
    },
  });
  return { log: pino({ level: 'debug' }, sink), records };
}

interface Harness {
  fake: FakeKubeApiServer;
  source: KubernetesSource;
  views: SourceView[];
  records: Record<string, unknown>[];
  latest(): SourceView;
  /** Waits (1 s by default) until the latest view satisfies `check` (which may use expect). */
  until(check: (view: SourceView) => void, ms?: number): Promise<void>;
}

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function harness(
  port: number,
  options: Partial<KubernetesSourceOptions> = {},
  seed: (fake: FakeKubeApiServer) => void = () => {},
  startSource = true,
  fakeOptions: Partial<FakeKubeApiServerOptions> = {},
): Promise<Harness> {
  const fake = new FakeKubeApiServer({ port, bookmarkIntervalMs: 200, ...fakeOptions });
  await fake.start();
  cleanups.push(() => fake.stop());
  seed(fake);
  const { log, records } = captureLog();
  const source = new KubernetesSource({ kubeConfig: kubeConfigFor(fake.url), namespaces: [], log, backoff: { initialMs: 50, maxMs: 200 }, ...options });
  cleanups.push(() => source.stop());
  const views: SourceView[] = [];
  const h: Harness = {
    fake,
    source,
    views,
    records,
    latest() {
      const v = views[views.length - 1];
      if (!v) throw new Error('no view yet');
      return v;
    },
    async until(check, ms = 1000) {
      const deadline = Date.now() + ms;
      for (;;) {
        try {
          check(h.latest());
          return;
        } catch (err) {
          if (Date.now() > deadline) throw err;
        }
        await sleep(20);
      }
    },
  };
  if (startSource) {
    await source.start((v) => views.push(v));
    // The first view comes once the lists are in; the watches follow a moment later. Tests that
    // close, compact or count watches need them open, however busy the machine is.
    const perKind = Math.max(1, options.namespaces?.length ?? 0);
    const watches = perKind * (options.ownership === 'declared' ? 2 : 1);
    const deadline = Date.now() + 5_000;
    while (fake.openWatches < watches && Date.now() < deadline) await sleep(10);
  }
  return h;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function pg(namespace: string, name: string, labels: Record<string, string>, more: Partial<ServiceInput> = {}): ServiceInput {
  return { namespace, name, labels, ports: [{ name: 'postgres', port: 5432 }], ...more };
}

/** tenant id -> its definition as a tenants file would say it (primary host and port on top), for comparing at a glance. */
function tenants(view: SourceView): Record<string, unknown> {
  return Object.fromEntries(view.snapshot.tenants.map((t) => [t.id, flat(t)]));
}

function flat(t: Tenant): Record<string, unknown> {
  const { primary, ...extra } = t.targets;
  const out: Record<string, unknown> = { id: t.id, host: primary?.host, port: primary?.port, enabled: t.enabled };
  if (Object.keys(extra).length > 0) out.targets = extra;
  if (t.maxconn !== undefined) out.maxconn = t.maxconn;
  return out;
}

function refusedWhere(view: SourceView): string[] {
  return view.snapshot.refused.map((r) => r.where);
}

describe('KubernetesSource', () => {
  it('turns the initial list into a view, reading both label vocabularies', async () => {
    const h = await harness(24100, {}, (fake) => {
      fake.createService(pg('team-a', 'acme-db', { 'pgroute.tenant': 'acme' }));
      fake.createService(pg('team-a', 'acme-pool', { 'pgroute.tenant': 'acme', 'pgroute.target': 'pool', 'pgroute.maxconn': '50' }));
      fake.createService(pg('team-b', 'globex', { 'xdatabase-proxy-enabled': 'true', 'xdatabase-proxy-deployment-id': 'globex', 'xdatabase-proxy-database-type': 'postgresql', 'xdatabase-proxy-destination-port': '6432' }));
      fake.createService(pg('team-b', 'web', { app: 'web' }));
    });
    expect(h.views).toHaveLength(1);
    expect(tenants(h.latest())).toEqual({
      acme: { id: 'acme', host: 'acme-db.team-a.svc.cluster.local', port: 5432, enabled: true, targets: { pool: { host: 'acme-pool.team-a.svc.cluster.local', port: 5432 } } },
      globex: { id: 'globex', host: 'globex.team-b.svc.cluster.local', port: 6432, enabled: true },
    });
    expect(h.latest().where).toEqual({ acme: 'kubernetes service team-a/acme-db', globex: 'kubernetes service team-b/globex' });
    expect(h.latest().snapshot.refused).toEqual([]);
    expect(h.latest().snapshot.tenants.map((t) => t.id)).toEqual(['acme', 'globex']);
    expect(h.fake.counters.lists).toBe(1);
  });

  it('follows additions, modifications and deletions within a second', async () => {
    const h = await harness(24101, {}, (fake) => fake.createService(pg('ns', 'acme', { 'pgroute.tenant': 'acme' })));
    h.fake.createService(pg('ns', 'globex', { 'pgroute.tenant': 'globex' }));
    await h.until((v) => expect(Object.keys(tenants(v))).toEqual(['acme', 'globex']));
    h.fake.setLabels('ns', 'acme', { 'pgroute.tenant': 'acme', 'pgroute.enabled': 'false', 'pgroute.port': '5433' });
    await h.until((v) => expect(tenants(v).acme).toMatchObject({ enabled: false, port: 5433 }));
    h.fake.deleteService('ns', 'globex');
    await h.until((v) => expect(Object.keys(tenants(v))).toEqual(['acme']));
    // A Service that drops its labels stops being a tenant.
    h.fake.setLabels('ns', 'acme', {});
    await h.until((v) => expect(v).toEqual({ snapshot: { tenants: [], refused: [] }, where: {} }));
    expect(h.fake.counters.lists).toBe(1);
  });

  it('a burst of changes: every view is complete and sorted, none loses a tenant, the last has them all', async () => {
    const h = await harness(24102);
    for (let i = 0; i < 20; i++) h.fake.createService(pg('ns', `t${i}`, { 'pgroute.tenant': `t${i}` }));
    await h.until((v) => expect(v.snapshot.tenants).toHaveLength(20));
    // The pipeline throttles; the source only batches what arrives in one turn of the event loop.
    expect(h.views.length).toBeLessThanOrEqual(21);
    for (const [i, v] of h.views.entries()) {
      const ids = v.snapshot.tenants.map((t) => t.id);
      expect(ids).toEqual([...ids].sort());
      if (i > 0) expect(ids.length).toBeGreaterThanOrEqual(h.views[i - 1]?.snapshot.tenants.length ?? 0);
    }
  });

  it('chooses the address and port of each kind of Service', async () => {
    const seed = (fake: FakeKubeApiServer): void => {
      fake.createService({ namespace: 'ns', name: 'plain', labels: { 'pgroute.tenant': 'plain' }, clusterIP: '10.0.0.7', ports: [{ port: 5433, targetPort: 15433 }] });
      fake.createService({ namespace: 'ns', name: 'named', labels: { 'pgroute.tenant': 'named' }, ports: [{ name: 'metrics', port: 9187 }, { name: 'PostgreSQL', port: 5432 }] });
      fake.createService({ namespace: 'ns', name: 'headless', labels: { 'pgroute.tenant': 'headless' }, clusterIP: 'None', ports: [{ name: 'pg', port: 5432, targetPort: 15432 }] });
      fake.createService({ namespace: 'ns', name: 'ext', labels: { 'pgroute.tenant': 'ext', 'pgroute.port': '25060' }, type: 'ExternalName', externalName: 'db.example.com.' });
      fake.createService({ namespace: 'ns', name: 'twoports', labels: { 'pgroute.tenant': 'twoports' }, ports: [{ name: 'a', port: 1 }, { name: 'b', port: 2 }] });
      fake.createService({ namespace: 'ns', name: 'noports', labels: { 'pgroute.tenant': 'noports' } });
    };
    // Every port and this ExternalName allowed: what is chosen, not what is allowed (below).
    const policy = targetPolicyFromFlags('db.example.com', '1-65535');
    const dns = await harness(24103, { policy }, seed);
    expect(tenants(dns.latest())).toMatchObject({
      plain: { host: 'plain.ns.svc.cluster.local', port: 5433 },
      named: { host: 'named.ns.svc.cluster.local', port: 5432 },
      headless: { host: 'headless.ns.svc.cluster.local', port: 15432 },
      ext: { host: 'db.example.com', port: 25060 },
    });
    expect(dns.latest().snapshot.refused).toEqual([
      { where: 'kubernetes service ns/noports', id: 'noports', reason: 'the Service has no ports; set the pgroute.port label' },
      { where: 'kubernetes service ns/twoports', id: 'twoports', reason: 'the Service has 2 ports (a, b) and none is named postgres, postgresql, pg; name the PostgreSQL port or set the pgroute.port label' },
    ]);
    const ip = await harness(24104, { address: 'cluster-ip', clusterDomain: 'k8s.internal', policy }, seed);
    expect(tenants(ip.latest())).toMatchObject({
      plain: { host: '10.0.0.7', port: 5433 },
      headless: { host: 'headless.ns.svc.k8s.internal', port: 15432 },
      ext: { host: 'db.example.com' },
    });
    expect((tenants(ip.latest()).named as { host: string }).host).toMatch(/^10\.96\./);
  });

  it('by default refuses ExternalName Services and ports other than 5432-5439 and 6432, keeping the other tenants', async () => {
    const h = await harness(24128, {}, (fake) => {
      fake.createService(pg('ns', 'acme', { 'pgroute.tenant': 'acme' }));
      fake.createService({ namespace: 'ns', name: 'meta', labels: { 'pgroute.tenant': 'meta', 'pgroute.port': '80' }, type: 'ExternalName', externalName: '169.254.169.254' });
      fake.createService({ namespace: 'ns', name: 'ext', labels: { 'pgroute.tenant': 'ext', 'pgroute.port': '5432' }, type: 'ExternalName', externalName: 'db.example.com' });
      fake.createService(pg('ns', 'kubelet', { 'pgroute.tenant': 'kubelet', 'pgroute.port': '10250' }));
      fake.createService({ namespace: 'ns', name: 'api', labels: { 'pgroute.tenant': 'api' }, ports: [{ name: 'https', port: 6443 }] });
    });
    expect(Object.keys(tenants(h.latest()))).toEqual(['acme']);
    expect(refusedWhere(h.latest())).toEqual(['kubernetes service ns/api', 'kubernetes service ns/ext', 'kubernetes service ns/kubelet', 'kubernetes service ns/meta']);
    for (const r of h.latest().snapshot.refused) expect(r.reason).toMatch(/--kube-allowed-ports does not allow|--kube-allow-external-names does not allow|never relays to/);
    // Allowed later (a new source, as after a restart with the flags): the same Services route.
    const allowed = await harness(24129, { policy: targetPolicyFromFlags('db.example.com', '5432,6443,10250') }, (fake) => {
      fake.createService({ namespace: 'ns', name: 'ext', labels: { 'pgroute.tenant': 'ext', 'pgroute.port': '5432' }, type: 'ExternalName', externalName: 'db.example.com' });
      fake.createService({ namespace: 'ns', name: 'api', labels: { 'pgroute.tenant': 'api' }, ports: [{ name: 'https', port: 6443 }] });
    });
    expect(tenants(allowed.latest())).toMatchObject({ ext: { host: 'db.example.com', port: 5432 }, api: { port: 6443 } });
  });

  it('sees only the watched namespaces', async () => {
    const h = await harness(24105, { namespaces: ['team-a', 'team-b'] }, (fake) => {
      fake.createService(pg('team-a', 'acme', { 'pgroute.tenant': 'acme' }));
      fake.createService(pg('team-c', 'stranger', { 'pgroute.tenant': 'stranger' }));
    });
    h.fake.createService(pg('team-b', 'globex', { 'pgroute.tenant': 'globex' }));
    h.fake.createService(pg('team-c', 'initech', { 'pgroute.tenant': 'initech' }));
    await h.until((v) => expect(Object.keys(tenants(v))).toEqual(['acme', 'globex']));
    await sleep(100);
    expect(Object.keys(tenants(h.latest()))).toEqual(['acme', 'globex']);
    expect(h.latest().snapshot.refused).toEqual([]);
    // One informer per namespace, each on its namespaced path.
    expect(h.fake.requests.filter((r) => !r.includes('watch=true')).map((r) => r.split('?')[0]).sort()).toEqual(['GET /api/v1/namespaces/team-a/services', 'GET /api/v1/namespaces/team-b/services']);
  });

  it('applies the extra label selector on the apiserver', async () => {
    const h = await harness(24106, { labelSelector: 'pgroute=yes' }, (fake) => {
      fake.createService(pg('ns', 'acme', { 'pgroute.tenant': 'acme', pgroute: 'yes' }));
      fake.createService(pg('ns', 'globex', { 'pgroute.tenant': 'globex' }));
    });
    expect(Object.keys(tenants(h.latest()))).toEqual(['acme']);
    h.fake.setLabels('ns', 'globex', { 'pgroute.tenant': 'globex', pgroute: 'yes' });
    await h.until((v) => expect(Object.keys(tenants(v))).toEqual(['acme', 'globex']));
    h.fake.setLabels('ns', 'acme', { 'pgroute.tenant': 'acme' });
    await h.until((v) => expect(Object.keys(tenants(v))).toEqual(['globex']));
    expect(h.fake.requests.every((r) => r.includes('labelSelector=pgroute%3Dyes'))).toBe(true);
  });

  it('lets the oldest namespace keep a tenant: a newer claim from another namespace is refused, even when recreated', async () => {
    const h = await harness(24107, {}, (fake) => {
      fake.createService(pg('team-b', 'acme', { 'pgroute.tenant': 'acme' }, { creationTimestamp: T1 }));
      fake.createService(pg('team-a', 'acme', { 'pgroute.tenant': 'acme' }, { creationTimestamp: T0 }));
    });
    const owned = (v: SourceView): void => {
      expect(tenants(v).acme).toMatchObject({ host: 'acme.team-a.svc.cluster.local' });
      expect(v.snapshot.refused).toEqual([
        {
          where: 'kubernetes service team-b/acme',
          id: 'acme',
          reason: 'tenant acme belongs to team-a (claimed first by kubernetes service team-a/acme); a claim from team-b is refused',
        },
      ]);
    };
    owned(h.latest());
    // Deleting and recreating the newer claim makes it newer still: it does not take over.
    h.fake.deleteService('team-b', 'acme');
    await h.until((v) => expect(v.snapshot.refused).toEqual([]));
    h.fake.createService(pg('team-b', 'acme', { 'pgroute.tenant': 'acme' }, { creationTimestamp: T2 }));
    await h.until(owned);
    // Nor can the other namespace add a target to a tenant it does not own.
    h.fake.createService(pg('team-b', 'acme-pool', { 'pgroute.tenant': 'acme', 'pgroute.target': 'pool' }, { creationTimestamp: T2 }));
    await h.until((v) => expect(refusedWhere(v)).toEqual(['kubernetes service team-b/acme', 'kubernetes service team-b/acme-pool']));
    expect(tenants(h.latest()).acme).not.toHaveProperty('targets');
    // Once the owner's Service is gone, the remaining claim is the oldest one.
    h.fake.deleteService('team-a', 'acme');
    await h.until((v) => expect(tenants(v).acme).toMatchObject({ host: 'acme.team-b.svc.cluster.local', targets: { pool: { host: 'acme-pool.team-b.svc.cluster.local' } } }));
  });

  it('refuses a second Service for the same target in one namespace', async () => {
    const h = await harness(24108, {}, (fake) => {
      fake.createService(pg('ns', 'acme-1', { 'pgroute.tenant': 'acme' }, { creationTimestamp: T0 }));
      fake.createService(pg('ns', 'acme-2', { 'pgroute.tenant': 'acme' }, { creationTimestamp: T0 }));
    });
    // Same creation second: the tie is broken by name, so the result does not depend on list order.
    expect(h.latest().snapshot.refused).toEqual([{ where: 'kubernetes service ns/acme-2', id: 'acme', reason: 'target primary of tenant acme is already served by kubernetes service ns/acme-1' }]);
    expect(tenants(h.latest()).acme).toMatchObject({ host: 'acme-1.ns.svc.cluster.local' });
  });

  it('passes bad tenant ids and bad labels on to the refusals', async () => {
    const h = await harness(24109, {}, (fake) => {
      fake.createService(pg('ns', 'good', { 'pgroute.tenant': 'good' }));
      fake.createService(pg('ns', 'bad-id', { 'pgroute.tenant': 'Bad_Id' }));
      fake.createService(pg('ns', 'bad-port', { 'pgroute.tenant': 'badport', 'pgroute.port': 'http' }));
      fake.createService(pg('ns', 'bad-enabled', { 'pgroute.tenant': 'badenabled', 'pgroute.enabled': 'maybe' }));
      fake.createService(pg('ns', 'mysql', { 'xdatabase-proxy-enabled': 'true', 'xdatabase-proxy-deployment-id': 'shop', 'xdatabase-proxy-database-type': 'mysql' }));
      fake.createService(pg('ns', 'pool-only', { 'pgroute.tenant': 'lonely', 'pgroute.target': 'pool' }));
    });
    const snapshot = h.latest().snapshot;
    expect(snapshot.tenants.map((t) => t.id)).toEqual(['good']);
    const reasons = Object.fromEntries(snapshot.refused.map((r) => [r.where.replace('kubernetes service ', ''), r.reason]));
    expect(Object.keys(reasons).sort()).toEqual(['ns/bad-enabled', 'ns/bad-id', 'ns/bad-port', 'ns/mysql', 'ns/pool-only']);
    expect(reasons['ns/bad-port']).toMatch(/port must be an integer from 1 to 65535/);
    expect(reasons['ns/bad-enabled']).toMatch(/enabled must be true or false/);
    expect(reasons['ns/mysql']).toMatch(/PostgreSQL only/);
    expect(reasons['ns/pool-only']).toMatch(/no primary target/);
    expect(reasons['ns/bad-id']).toBeDefined();
  });

  it('re-lists after 410 Gone and ends up with the right view', async () => {
    const h = await harness(24110, {}, (fake) => {
      fake.createService(pg('ns', 'acme', { 'pgroute.tenant': 'acme' }));
      fake.createService(pg('ns', 'globex', { 'pgroute.tenant': 'globex' }));
    });
    expect(h.fake.counters.lists).toBe(1);
    // The watch drops; before the informer is back, things change and the history is compacted,
    // so the informer's resourceVersion is too old.
    h.fake.closeAllWatches();
    h.fake.deleteService('ns', 'globex');
    h.fake.createService(pg('ns', 'initech', { 'pgroute.tenant': 'initech' }));
    h.fake.compactHistory();
    await h.until((v) => expect(Object.keys(tenants(v))).toEqual(['acme', 'initech']));
    expect(h.fake.counters.lists).toBe(2);
    // 410 is routine, not a failure: nothing was logged as one.
    expect(h.records.filter((r) => r.level === 40)).toEqual([]);
    // No intermediate view lost what was there all along.
    expect(h.views.every((v) => Object.keys(tenants(v)).includes('acme'))).toBe(true);
    // And it goes on following changes.
    h.fake.createService(pg('ns', 'umbrella', { 'pgroute.tenant': 'umbrella' }));
    await h.until((v) => expect(Object.keys(tenants(v))).toEqual(['acme', 'initech', 'umbrella']));
  });

  it('asks for bookmarks, so a quiet namespace resumes after compaction without listing again', async () => {
    const h = await harness(24119, { namespaces: ['quiet'] }, (fake) => fake.createService(pg('quiet', 'acme', { 'pgroute.tenant': 'acme' })), true, { bookmarkIntervalMs: 60_000 });
    // Elsewhere the cluster moves on; only a bookmark tells the quiet watch the new resourceVersion.
    for (let i = 0; i < 5; i++) h.fake.createService(pg('busy', `s${i}`, {}));
    h.fake.sendBookmarks();
    await sleep(100);
    h.fake.compactHistory();
    h.fake.closeAllWatches();
    h.fake.createService(pg('quiet', 'globex', { 'pgroute.tenant': 'globex' }));
    await h.until((v) => expect(Object.keys(tenants(v))).toEqual(['acme', 'globex']));
    expect(h.fake.counters.lists).toBe(1);
    expect(h.fake.requests.some((r) => r.includes('allowWatchBookmarks=true'))).toBe(true);
  });

  it('resumes a cleanly closed watch from its resourceVersion without listing again', async () => {
    const h = await harness(24111, {}, (fake) => fake.createService(pg('ns', 'acme', { 'pgroute.tenant': 'acme' })));
    const watches = h.fake.counters.watches;
    h.fake.closeAllWatches();
    h.fake.createService(pg('ns', 'globex', { 'pgroute.tenant': 'globex' }));
    await h.until((v) => expect(Object.keys(tenants(v))).toEqual(['acme', 'globex']));
    expect(h.fake.counters.lists).toBe(1);
    expect(h.fake.counters.watches).toBeGreaterThan(watches);
  });

  it('survives an apiserver restart: keeps the last view during the outage, then follows changes', async () => {
    const h = await harness(24112, { namespaces: ['team-a', 'team-b'] }, (fake) => {
      fake.createService(pg('team-a', 'acme', { 'pgroute.tenant': 'acme' }));
      fake.createService(pg('team-b', 'globex', { 'pgroute.tenant': 'globex' }));
    });
    await h.fake.stop();
    // Outage: the informers fail, log, and retry with backoff.
    await sleep(400);
    const viewsDuringOutage = h.views.length;
    expect(viewsDuringOutage).toBe(1);
    const warnings = h.records.filter((r) => r.level === 40);
    expect(warnings.length).toBeGreaterThanOrEqual(2);
    expect(warnings[0]?.msg).toMatch(/listing\/watching kubernetes services failed; retrying \(the last view stays in force\)/);
    // The cut watch ends with "Premature close"; the retries meet a closed port.
    expect(warnings.map((w) => String(w.err))).toContainEqual(expect.stringMatching(/ECONNREFUSED/));
    // Changes made while it is down are picked up when it comes back...
    h.fake.deleteService('team-b', 'globex');
    await h.fake.start();
    await h.until((v) => expect(Object.keys(tenants(v))).toEqual(['acme']), 2000);
    // ...and so are changes made afterwards.
    h.fake.createService(pg('team-b', 'initech', { 'pgroute.tenant': 'initech' }));
    await h.until((v) => expect(Object.keys(tenants(v))).toEqual(['acme', 'initech']));
    expect(h.views.every((v) => v.snapshot.tenants.length > 0)).toBe(true);
  });

  it('survives an abruptly cut watch', async () => {
    const h = await harness(24113, {}, (fake) => fake.createService(pg('ns', 'acme', { 'pgroute.tenant': 'acme' })));
    h.fake.closeAllWatches({ abrupt: true });
    h.fake.createService(pg('ns', 'globex', { 'pgroute.tenant': 'globex' }));
    await h.until((v) => expect(Object.keys(tenants(v))).toEqual(['acme', 'globex']));
  });

  it('retries a failing first list, and start() resolves with the first complete view', async () => {
    const h = await harness(24114, { namespaces: ['a', 'b'] }, (fake) => {
      fake.createService(pg('a', 'acme', { 'pgroute.tenant': 'acme' }));
      fake.createService(pg('b', 'globex', { 'pgroute.tenant': 'globex' }));
      fake.failNextRequests(3, 403);
    });
    // Never a partial first view from only one of the namespaces.
    expect(h.views.map((v) => Object.keys(tenants(v)))).toEqual([['acme', 'globex']]);
    expect(h.fake.counters.failed).toBe(3);
    const warning = h.records.find((r) => r.level === 40);
    expect(warning?.msg).toMatch(/check the credentials and that they may list and watch services in [ab]/);
    expect(warning?.status).toBe(403);
  });

  it('renews watches after their timeout without listing again', async () => {
    const h = await harness(24115, { watchTimeoutSeconds: 1 }, (fake) => fake.createService(pg('ns', 'acme', { 'pgroute.tenant': 'acme' })));
    await sleep(2300);
    expect(h.fake.counters.watches).toBeGreaterThanOrEqual(2);
    expect(h.fake.counters.lists).toBe(1);
    expect(h.fake.requests.some((r) => /timeoutSeconds=[12]&|timeoutSeconds=[12]$/.test(r))).toBe(true);
    expect(h.records.filter((r) => r.level === 40)).toEqual([]);
    h.fake.createService(pg('ns', 'globex', { 'pgroute.tenant': 'globex' }));
    await h.until((v) => expect(Object.keys(tenants(v))).toEqual(['acme', 'globex']));
  });

  it('gives up on a watch the apiserver never ends, and resumes it without listing again', async () => {
    const h = await harness(24118, { watchTimeoutSeconds: 1 }, (fake) => fake.createService(pg('ns', 'acme', { 'pgroute.tenant': 'acme' })), true, { honourTimeoutSeconds: false });
    // Asked for 1 s, the client-side deadline is 1.1 s + 1 s.
    await sleep(2600);
    expect(h.fake.counters.watches).toBe(2);
    expect(h.fake.counters.lists).toBe(1);
    expect(h.records.filter((r) => r.level === 40)).toEqual([]);
    h.fake.createService(pg('ns', 'globex', { 'pgroute.tenant': 'globex' }));
    await h.until((v) => expect(Object.keys(tenants(v))).toEqual(['acme', 'globex']));
  });

  it('stop() closes every watch and pushes no more views', async () => {
    const h = await harness(24116, { namespaces: ['a', 'b'] });
    // The first view comes after the lists; the watches follow.
    await vi.waitFor(() => expect(h.fake.openWatches).toBe(2), { timeout: 5_000, interval: 20 });
    await h.source.stop();
    await vi.waitFor(() => expect(h.fake.openWatches).toBe(0), { timeout: 5_000, interval: 20 });
    const n = h.views.length;
    h.fake.createService(pg('a', 'acme', { 'pgroute.tenant': 'acme' }));
    await sleep(200);
    expect(h.views.length).toBe(n);
    expect(h.records.filter((r) => r.level === 40)).toEqual([]);
  });

  it('stop() during start leaves no watch behind and rejects start', async () => {
    const h = await harness(24117, { namespaces: ['a', 'b', 'c'] }, () => {}, false);
    // The three lists are held in the API server (one more GET than the start sends): the start is
    // in flight, however fast the machine, until this test lets the answers go.
    h.fake.holdRequests('GET', 4);
    const started = h.source.start((v) => h.views.push(v));
    const lists = (): number => h.fake.requests.filter((r) => r.startsWith('GET ')).length;
    while (lists() < 3) await sleep(5);
    await h.source.stop();
    await expect(started).rejects.toThrow(/stopped before/);
    // Now the lists are answered (the fourth GET releases them): a stopped source opens no watch.
    await fetch(`${h.fake.url}/api/v1/namespaces/a/services`);
    await sleep(300);
    expect(h.fake.openWatches).toBe(0);
    expect(h.views).toEqual([]);
  });
});

describe('KubernetesSource with declared ownership (--kube-ownership declared)', () => {
  const declared = { ownership: 'declared' } as const;
  const notDeclared = (tenant: string, ns: string, owner?: string): string =>
    `tenant ${tenant} is not declared for namespace ${ns} (annotation pgroute.io/tenants on Namespace ${ns})` + (owner === undefined ? '' : `; it is declared for namespace ${owner}`);
  const hostOf = (v: SourceView, id: string): string | undefined => (tenants(v)[id] as { host?: string } | undefined)?.host;

  it('routes a tenant to the namespace that declares it, and follows annotation changes without a restart', async () => {
    const h = await harness(24123, declared, (fake) => {
      fake.createNamespace({ name: 'team-a', annotations: { 'pgroute.io/tenants': 'acme' } });
      fake.createNamespace({ name: 'team-b' });
      // team-b's claim is the older one: it does not matter here.
      fake.createService(pg('team-b', 'acme-impostor', { 'pgroute.tenant': 'acme' }, { creationTimestamp: T0 }));
      fake.createService(pg('team-a', 'acme', { 'pgroute.tenant': 'acme' }, { creationTimestamp: T1 }));
    });
    expect(hostOf(h.latest(), 'acme')).toBe('acme.team-a.svc.cluster.local');
    expect(h.latest().snapshot.refused).toEqual([{ where: 'kubernetes service team-b/acme-impostor', id: 'acme', reason: notDeclared('acme', 'team-b', 'team-a') }]);
    expect(h.records.find((r) => r.msg === 'watching kubernetes services and namespaces')).toMatchObject({ ownership: 'declared', namespaces: ['*'] });
    expect(h.fake.resourceCounters.namespaces.lists).toBe(1);

    // The owner's Service goes away (a redeploy): nobody gets acme meanwhile, and team-a gets it back.
    h.fake.deleteService('team-a', 'acme');
    await h.until((v) => expect(tenants(v)).toEqual({}));
    expect(h.latest().snapshot.refused.map((r) => r.where)).toEqual(['kubernetes service team-b/acme-impostor']);
    h.fake.createService(pg('team-a', 'acme', { 'pgroute.tenant': 'acme' }, { creationTimestamp: T2 }));
    await h.until((v) => expect(hostOf(v, 'acme')).toBe('acme.team-a.svc.cluster.local'));

    // The admin declares acme for team-b too: an error, every claim refused, both namespaces named.
    h.fake.setNamespaceAnnotations('team-b', { 'pgroute.io/tenants': 'acme' });
    await h.until((v) => expect(tenants(v)).toEqual({}));
    expect(h.latest().snapshot.refused.map((r) => r.reason)).toEqual([
      'tenant acme is declared for 2 namespaces (team-a, team-b; annotation pgroute.io/tenants): every claim of it is refused until one Namespace alone declares it',
      'tenant acme is declared for 2 namespaces (team-a, team-b; annotation pgroute.io/tenants): every claim of it is refused until one Namespace alone declares it',
    ]);
    // ...then takes it from team-a: team-b's claim is accepted, team-a's refused.
    h.fake.setNamespaceAnnotations('team-a', {});
    await h.until((v) => expect(hostOf(v, 'acme')).toBe('acme-impostor.team-b.svc.cluster.local'));
    expect(h.latest().snapshot.refused).toEqual([{ where: 'kubernetes service team-a/acme', id: 'acme', reason: notDeclared('acme', 'team-a', 'team-b') }]);

    // Deleting a Namespace deletes its Services and its declarations.
    h.fake.deleteNamespace('team-b');
    await h.until((v) => expect(v).toEqual({ snapshot: { tenants: [], refused: [{ where: 'kubernetes service team-a/acme', id: 'acme', reason: notDeclared('acme', 'team-a') }] }, where: {} }));
    expect(h.fake.resourceCounters.namespaces.lists).toBe(1);
    expect(h.records.filter((r) => r.level === 40)).toEqual([]);
  });

  it('with --namespace, reads only those Namespace objects (fieldSelector metadata.name), each with its own list and watch', async () => {
    const h = await harness(24124, { ...declared, namespaces: ['team-a', 'team-b'] }, (fake) => {
      fake.createNamespace({ name: 'team-a', annotations: { 'pgroute.io/tenants': 'acme, globex-*' } });
      fake.createNamespace({ name: 'team-b', annotations: { 'pgroute.io/tenants': 'initech' } });
      // Not watched: its declaration of acme is not seen, so it is no conflict.
      fake.createNamespace({ name: 'team-c', annotations: { 'pgroute.io/tenants': 'acme' } });
      fake.createService(pg('team-a', 'acme', { 'pgroute.tenant': 'acme' }));
      fake.createService(pg('team-a', 'globex-eu', { 'pgroute.tenant': 'globex-eu' }));
      fake.createService(pg('team-b', 'globex-us', { 'pgroute.tenant': 'globex-us' }));
    });
    expect(Object.keys(tenants(h.latest()))).toEqual(['acme', 'globex-eu']);
    expect(h.latest().snapshot.refused).toEqual([{ where: 'kubernetes service team-b/globex-us', id: 'globex-us', reason: notDeclared('globex-us', 'team-b', 'team-a') }]);
    // The first view comes once both lists are in; their watches may still be on their way.
    const namespaceGets = (): string[] => h.fake.requests.filter((r) => r.startsWith('GET /api/v1/namespaces?'));
    await vi.waitFor(() => expect(namespaceGets().filter((r) => r.includes('watch=true'))).toHaveLength(2), { timeout: 5_000, interval: 20 });
    const namespaceRequests = namespaceGets();
    expect(namespaceRequests.filter((r) => !r.includes('watch=true')).sort()).toEqual([
      'GET /api/v1/namespaces?fieldSelector=metadata.name%3Dteam-a',
      'GET /api/v1/namespaces?fieldSelector=metadata.name%3Dteam-b',
    ]);
    expect(namespaceRequests.filter((r) => r.includes('watch=true'))).toHaveLength(2);
    expect(namespaceRequests.every((r) => /fieldSelector=metadata\.name%3Dteam-[ab](&|$)/.test(r))).toBe(true);
    // A change to a Namespace that is not watched is not seen; one to a watched Namespace is.
    h.fake.setNamespaceAnnotations('team-c', { 'pgroute.io/tenants': 'globex-us' });
    h.fake.setNamespaceAnnotations('team-b', { 'pgroute.io/tenants': 'initech globex-us' });
    await h.until((v) => expect(v.snapshot.refused.map((r) => r.reason)).toEqual([
      'tenant globex-us is declared for 2 namespaces (team-a, team-b; annotation pgroute.io/tenants): every claim of it is refused until one Namespace alone declares it',
    ]));
    expect(Object.keys(tenants(h.latest()))).toEqual(['acme', 'globex-eu']);
  });

  it('re-lists Namespaces after 410 Gone, and reports bad annotations without failing', async () => {
    const h = await harness(24125, declared, (fake) => {
      fake.createNamespace({ name: 'team-a', annotations: { 'pgroute.io/tenants': 'acme' } });
      fake.createService(pg('team-a', 'acme', { 'pgroute.tenant': 'acme' }));
      fake.createService(pg('team-a', 'globex', { 'pgroute.tenant': 'globex' }));
    });
    expect(Object.keys(tenants(h.latest()))).toEqual(['acme']);
    h.fake.closeAllWatches();
    h.fake.setNamespaceAnnotations('team-a', { 'pgroute.io/tenants': 'acme,globex, Bad_Entry, *' });
    h.fake.compactHistory();
    await h.until((v) => expect(Object.keys(tenants(v))).toEqual(['acme', 'globex']));
    expect(h.fake.resourceCounters.namespaces.lists).toBe(2);
    expect(h.latest().snapshot.refused.map((r) => r.where)).toEqual(['kubernetes namespace team-a', 'kubernetes namespace team-a']);
    expect(h.latest().snapshot.refused[1]?.reason).toBe('annotation pgroute.io/tenants on Namespace team-a: "*" would declare every tenant id; list the ids, or use a prefix such as acme-*; that entry is ignored');
    // An oversized value declares nothing at all (fail closed), and is reported.
    h.fake.setNamespaceAnnotations('team-a', { 'pgroute.io/tenants': `acme ${'x'.repeat(70_000)}` });
    await h.until((v) => expect(tenants(v)).toEqual({}));
    expect(h.latest().snapshot.refused[0]?.reason).toMatch(/^annotation pgroute\.io\/tenants on Namespace team-a: the value is 70005 characters long, more than the 65536 read; the namespace declares no tenant until it is fixed$/);
    expect(h.records.filter((r) => r.level === 40)).toEqual([]);
  });

  it('says which access is missing when listing Namespaces is forbidden, and starts once it is granted', async () => {
    const h = await harness(24126, declared, (fake) => {
      fake.createNamespace({ name: 'team-a', annotations: { 'pgroute.io/tenants': 'acme' } });
      fake.createService(pg('team-a', 'acme', { 'pgroute.tenant': 'acme' }));
      // Both first lists (Services and Namespaces) are refused.
      fake.failNextRequests(2, 403);
    });
    expect(h.views.map((v) => Object.keys(tenants(v)))).toEqual([['acme']]);
    const messages = h.records.filter((r) => r.level === 40).map((r) => String(r.msg));
    expect(messages).toContainEqual(expect.stringMatching(/^listing\/watching kubernetes namespaces failed; check the credentials and that they may list and watch namespaces \(a ClusterRole; needed by --kube-ownership declared\)/));
    expect(messages).toContainEqual(expect.stringMatching(/^listing\/watching kubernetes services failed; check the credentials and that they may list and watch services in every namespace/));
  });

  it('first-claim (the default) never reads Namespaces', async () => {
    const h = await harness(24127, { namespaces: ['team-a'] }, (fake) => {
      fake.createNamespace({ name: 'team-a', annotations: { 'pgroute.io/tenants': 'other' } });
      fake.createService(pg('team-a', 'acme', { 'pgroute.tenant': 'acme' }));
    });
    expect(Object.keys(tenants(h.latest()))).toEqual(['acme']);
    expect(h.fake.resourceCounters.namespaces).toEqual({ lists: 0, watches: 0, gets: 0 });
    expect(h.records.find((r) => r.msg === 'watching kubernetes services')).toMatchObject({ ownership: 'first-claim' });
  });

  it('refuses an unknown ownership mode', () => {
    const { log } = captureLog();
    expect(() => new KubernetesSource({ namespaces: [], log, ownership: 'oldest' as never })).toThrow(/kubernetes ownership "oldest" is not one of first-claim, declared/);
  });
});

// What the source relies on (or works around) in client-node 1.4's ListWatch; if an upgrade changes
// any of it, these say so first.
describe('client-node ListWatch against the fake apiserver', () => {
  async function informer(port: number, seed: (fake: FakeKubeApiServer) => void): Promise<{ fake: FakeKubeApiServer; lw: ListWatch<V1Service>; errors: unknown[] }> {
    const fake = new FakeKubeApiServer({ port });
    await fake.start();
    cleanups.push(() => fake.stop());
    seed(fake);
    const kc = kubeConfigFor(fake.url);
    const api = kc.makeApiClient(CoreV1Api);
    const lw = new ListWatch<V1Service>('/api/v1/services', new Watch(kc), () => api.listServiceForAllNamespaces(), false);
    const errors: unknown[] = [];
    lw.on('error', (err: unknown) => errors.push(err));
    cleanups.push(() => lw.stop());
    await lw.start();
    return { fake, lw, errors };
  }

  it('re-lists by itself after an ERROR 410 event', async () => {
    const { fake, lw, errors } = await informer(24120, (f) => f.createService(pg('ns', 'a', {})));
    fake.closeAllWatches();
    fake.createService(pg('ns', 'b', {}));
    fake.compactHistory();
    for (let i = 0; i < 50 && lw.list().length < 2; i++) await sleep(20);
    expect(lw.list().map((s) => s.metadata?.name)).toEqual(['a', 'b']);
    expect(fake.counters.lists).toBe(2);
    expect(errors).toEqual([]);
  });

  it('stops for good after any other error, e.g. an abruptly cut watch', async () => {
    const { fake, errors } = await informer(24121, () => {});
    await vi.waitFor(() => expect(fake.openWatches).toBe(1), { timeout: 5_000, interval: 20 });
    fake.closeAllWatches({ abrupt: true });
    await vi.waitFor(() => expect(errors).toHaveLength(1), { timeout: 5_000, interval: 20 });
    await sleep(100);
    expect(errors).toHaveLength(1);
    expect(String((errors[0] as Error).message)).toMatch(/Premature close/);
    expect(fake.counters.watches).toBe(1);
    expect(fake.openWatches).toBe(0);
  });

  it('reports its own stop() as an error (AbortError)', async () => {
    const { lw, errors } = await informer(24122, () => {});
    await lw.stop();
    await sleep(100);
    expect(errors.map((e) => (e as Error).name)).toEqual(['AbortError']);
  });
});
