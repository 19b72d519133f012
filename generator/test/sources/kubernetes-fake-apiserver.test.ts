// The fake apiserver behaves as the real one does where informers depend on it. Ports 24150-24199.

import { readFileSync } from 'node:fs';
import http from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { FakeKubeApiServer, parseLabelSelector } from '../../../test/support/fake-kube-apiserver.js';

interface WatchEvent {
  type: string;
  object: { metadata?: { name?: string; resourceVersion?: string }; code?: number; reason?: string; kind?: string };
}

/** An open watch: its events as they arrive, and whether the server ended it. */
class WatchStream {
  readonly events: WatchEvent[] = [];
  ended = false;
  status = 0;
  private req: http.ClientRequest;
  private waiters: (() => void)[] = [];

  constructor(url: string) {
    this.req = http.get(url, (res) => {
      this.status = res.statusCode ?? 0;
      let buf = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        buf += chunk;
        let i: number;
        while ((i = buf.indexOf('\n')) >= 0) {
          this.events.push(JSON.parse(buf.slice(0, i)) as WatchEvent);
          buf = buf.slice(i + 1);
        }
        this.wake();
      });
      res.on('close', () => {
        this.ended = true;
        this.wake();
      });
    });
    this.req.on('error', () => {
      this.ended = true;
      this.wake();
    });
  }

  async until(cond: () => boolean, ms = 2000): Promise<void> {
    const deadline = Date.now() + ms;
    while (!cond()) {
      if (Date.now() > deadline) throw new Error(`timed out; events so far: ${JSON.stringify(this.events)}`);
      await new Promise<void>((resolve) => {
        this.waiters.push(resolve);
        setTimeout(resolve, 50);
      });
    }
  }

  close(): void {
    this.req.destroy();
  }

  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }
}

const servers: FakeKubeApiServer[] = [];
const streams: WatchStream[] = [];
afterEach(async () => {
  for (const s of streams.splice(0)) s.close();
  for (const s of servers.splice(0)) await s.stop();
});

async function server(port: number, options: { bookmarkIntervalMs?: number; historyLimit?: number } = {}): Promise<FakeKubeApiServer> {
  const s = new FakeKubeApiServer({ port, ...options });
  await s.start();
  servers.push(s);
  return s;
}

function watch(url: string): WatchStream {
  const w = new WatchStream(url);
  streams.push(w);
  return w;
}

async function getJson(url: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(url);
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

interface ListBody {
  metadata: { resourceVersion: string };
  items: { metadata: { name: string; namespace: string; resourceVersion: string } }[];
}

describe('fake kube-apiserver', () => {
  it('keeps one monotonic resourceVersion and lists with it', async () => {
    const s = await server(24150);
    const a = s.createService({ namespace: 'team-a', name: 'db', ports: [{ port: 5432 }] });
    const b = s.createService({ namespace: 'team-b', name: 'db', ports: [{ port: 5432 }] });
    const a2 = s.setLabels('team-a', 'db', { x: 'y' });
    expect(Number(b.metadata.resourceVersion)).toBeGreaterThan(Number(a.metadata.resourceVersion));
    expect(Number(a2.metadata.resourceVersion)).toBeGreaterThan(Number(b.metadata.resourceVersion));
    expect(a2.metadata.creationTimestamp).toBe(a.metadata.creationTimestamp);
    expect(a2.spec.ports?.[0]).toEqual({ port: 5432, protocol: 'TCP', targetPort: 5432 });
    const all = (await getJson(`${s.url}/api/v1/services`)).body as unknown as ListBody;
    expect(all.metadata.resourceVersion).toBe(a2.metadata.resourceVersion);
    expect(all.items.map((i) => `${i.metadata.namespace}/${i.metadata.name}`)).toEqual(['team-a/db', 'team-b/db']);
    const nsOnly = (await getJson(`${s.url}/api/v1/namespaces/team-b/services`)).body as unknown as ListBody;
    expect(nsOnly.items.map((i) => i.metadata.namespace)).toEqual(['team-b']);
    s.deleteService('team-b', 'db');
    const after = (await getJson(`${s.url}/api/v1/services`)).body as unknown as ListBody;
    expect(Number(after.metadata.resourceVersion)).toBe(Number(a2.metadata.resourceVersion) + 1);
    expect(s.counters.lists).toBe(3);
  });

  it('filters by label selector like the apiserver (exists, !, =, ==, !=, in, notin, comma = AND)', async () => {
    const s = await server(24151);
    s.createService({ namespace: 'n', name: 'a', labels: { 'pgroute.tenant': 'acme', tier: 'db' } });
    s.createService({ namespace: 'n', name: 'b', labels: { 'pgroute.tenant': 'globex' } });
    s.createService({ namespace: 'n', name: 'c', labels: { tier: 'web' } });
    const names = async (sel: string): Promise<string[]> =>
      ((await getJson(`${s.url}/api/v1/services?labelSelector=${encodeURIComponent(sel)}`)).body as unknown as ListBody).items.map((i) => i.metadata.name);
    expect(await names('pgroute.tenant')).toEqual(['a', 'b']);
    expect(await names('!pgroute.tenant')).toEqual(['c']);
    expect(await names('pgroute.tenant=acme')).toEqual(['a']);
    expect(await names('pgroute.tenant==globex')).toEqual(['b']);
    expect(await names('tier!=db')).toEqual(['b', 'c']);
    expect(await names('pgroute.tenant,tier=db')).toEqual(['a']);
    expect(await names('tier in (db, web),!pgroute.tenant')).toEqual(['c']);
    expect(await names('tier notin (web)')).toEqual(['a', 'b']);
    expect(await names('')).toEqual(['a', 'b', 'c']);
    const bad = await getJson(`${s.url}/api/v1/services?labelSelector=${encodeURIComponent('a=(b')}`);
    expect(bad.status).toBe(400);
    expect(bad.body).toMatchObject({ kind: 'Status', reason: 'BadRequest', code: 400 });
    expect(() => parseLabelSelector('x in (a,b),y')).not.toThrow();
  });

  it('watches from a resourceVersion: replays later changes, then streams live ones', async () => {
    const s = await server(24152);
    s.createService({ namespace: 'n', name: 'a' });
    const rv = s.resourceVersion;
    s.createService({ namespace: 'n', name: 'b' });
    s.deleteService('n', 'a');
    const w = watch(`${s.url}/api/v1/namespaces/n/services?watch=true&resourceVersion=${rv}`);
    await w.until(() => w.events.length === 2);
    expect(w.events.map((e) => `${e.type} ${e.object.metadata?.name}`)).toEqual(['ADDED b', 'DELETED a']);
    // The DELETED object carries the deletion's resourceVersion.
    expect(w.events[1]?.object.metadata?.resourceVersion).toBe(s.resourceVersion);
    s.setLabels('n', 'b', { x: '1' });
    s.createService({ namespace: 'other', name: 'z' });
    await w.until(() => w.events.length === 3);
    expect(w.events[2]).toMatchObject({ type: 'MODIFIED', object: { metadata: { name: 'b', resourceVersion: String(Number(s.resourceVersion) - 1) } } });
    expect(s.counters.watches).toBe(1);
    expect(s.openWatches).toBe(1);
  });

  it('without a resourceVersion a watch starts with ADDED events for what exists', async () => {
    const s = await server(24153);
    s.createService({ namespace: 'n', name: 'a' });
    const w = watch(`${s.url}/api/v1/services?watch=true`);
    await w.until(() => w.events.length === 1);
    expect(w.events[0]).toMatchObject({ type: 'ADDED', object: { metadata: { name: 'a' } } });
  });

  it('sends moves into and out of a label selection as ADDED and DELETED', async () => {
    const s = await server(24154);
    s.createService({ namespace: 'n', name: 'a' });
    const w = watch(`${s.url}/api/v1/services?watch=true&resourceVersion=${s.resourceVersion}&labelSelector=pgroute.tenant`);
    await w.until(() => s.openWatches === 1);
    s.setLabels('n', 'a', { 'pgroute.tenant': 'acme' });
    s.setLabels('n', 'a', { 'pgroute.tenant': 'acme', more: 'x' });
    s.setLabels('n', 'a', {});
    await w.until(() => w.events.length === 3);
    expect(w.events.map((e) => e.type)).toEqual(['ADDED', 'MODIFIED', 'DELETED']);
  });

  it('answers a watch from a compacted resourceVersion with ERROR 410 Expired and ends it', async () => {
    const s = await server(24155);
    s.createService({ namespace: 'n', name: 'a' });
    const old = s.resourceVersion;
    s.createService({ namespace: 'n', name: 'b' });
    s.compactHistory();
    const w = watch(`${s.url}/api/v1/services?watch=true&resourceVersion=${old}`);
    await w.until(() => w.ended);
    expect(w.status).toBe(200);
    expect(w.events).toEqual([
      {
        type: 'ERROR',
        object: { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message: `too old resource version: ${old} (${s.resourceVersion})`, reason: 'Expired', code: 410 },
      },
    ]);
    // From the current resourceVersion the watch works.
    const ok = watch(`${s.url}/api/v1/services?watch=true&resourceVersion=${s.resourceVersion}`);
    await ok.until(() => s.openWatches === 1);
    s.deleteService('n', 'a');
    await ok.until(() => ok.events.length === 1);
    expect(ok.events[0]?.type).toBe('DELETED');
  });

  it('also expires resourceVersions beyond the history limit', async () => {
    const s = await server(24156, { historyLimit: 2 });
    const first = s.resourceVersion;
    for (const n of ['a', 'b', 'c']) s.createService({ namespace: 'n', name: n });
    const w = watch(`${s.url}/api/v1/services?watch=true&resourceVersion=${first}`);
    await w.until(() => w.ended);
    expect(w.events[0]?.object.code).toBe(410);
  });

  it('honours timeoutSeconds, sends bookmarks when allowed, closes watches, and restarts with its state', async () => {
    const s = await server(24157, { bookmarkIntervalMs: 100 });
    s.createService({ namespace: 'n', name: 'a' });
    const timed = watch(`${s.url}/api/v1/services?watch=true&resourceVersion=${s.resourceVersion}&timeoutSeconds=1&allowWatchBookmarks=true`);
    await timed.until(() => timed.events.some((e) => e.type === 'BOOKMARK'));
    expect(timed.events.find((e) => e.type === 'BOOKMARK')?.object).toEqual({ kind: 'Service', apiVersion: 'v1', metadata: { resourceVersion: s.resourceVersion } });
    await timed.until(() => timed.ended, 3000);

    const open = watch(`${s.url}/api/v1/services?watch=true&resourceVersion=${s.resourceVersion}`);
    await open.until(() => s.openWatches === 1);
    s.closeAllWatches();
    await open.until(() => open.ended);
    expect(open.events).toEqual([]);

    const rv = s.resourceVersion;
    await s.restart();
    const list = (await getJson(`${s.url}/api/v1/services`)).body as unknown as ListBody;
    expect(list.metadata.resourceVersion).toBe(rv);
    expect(list.items.map((i) => i.metadata.name)).toEqual(['a']);
    expect(s.counters.watches).toBe(2);
  });

  it('serves Namespaces with the same machinery: list, get, one history and resourceVersion, field selectors', async () => {
    const s = await server(24159);
    const a = s.createNamespace({ name: 'team-a', annotations: { 'pgroute.io/tenants': 'acme' } });
    expect(a).toMatchObject({
      metadata: { name: 'team-a', labels: { 'kubernetes.io/metadata.name': 'team-a' }, annotations: { 'pgroute.io/tenants': 'acme' } },
      spec: { finalizers: ['kubernetes'] },
      status: { phase: 'Active' },
    });
    expect(a.metadata).not.toHaveProperty('namespace');
    const svc = s.createService({ namespace: 'team-a', name: 'db' });
    const b = s.createNamespace({ name: 'team-b' });
    expect(Number(svc.metadata.resourceVersion)).toBe(Number(a.metadata.resourceVersion) + 1);
    expect(Number(b.metadata.resourceVersion)).toBe(Number(svc.metadata.resourceVersion) + 1);
    const list = (await getJson(`${s.url}/api/v1/namespaces`)).body as unknown as ListBody & { kind: string };
    expect(list.kind).toBe('NamespaceList');
    expect(list.metadata.resourceVersion).toBe(s.resourceVersion);
    expect(list.items.map((i) => i.metadata.name)).toEqual(['team-a', 'team-b']);
    const one = (await getJson(`${s.url}/api/v1/namespaces?fieldSelector=${encodeURIComponent('metadata.name=team-b')}`)).body as unknown as ListBody;
    expect(one.items.map((i) => i.metadata.name)).toEqual(['team-b']);
    const labelled = (await getJson(`${s.url}/api/v1/namespaces?labelSelector=${encodeURIComponent('kubernetes.io/metadata.name in (team-a)')}`)).body as unknown as ListBody;
    expect(labelled.items.map((i) => i.metadata.name)).toEqual(['team-a']);
    expect((await getJson(`${s.url}/api/v1/namespaces/team-a`)).body).toMatchObject({ kind: 'Namespace', metadata: { name: 'team-a' } });
    expect(await getJson(`${s.url}/api/v1/namespaces/nope`)).toMatchObject({ status: 404, body: { reason: 'NotFound', message: 'namespaces "nope" not found' } });
    const bad = await getJson(`${s.url}/api/v1/namespaces?fieldSelector=${encodeURIComponent('metadata.namespace=x')}`);
    expect(bad).toMatchObject({ status: 400, body: { reason: 'BadRequest', message: '"metadata.namespace" is not a known field selector: only "metadata.name", "status.phase"' } });
    // A Service list is still only Services.
    expect(((await getJson(`${s.url}/api/v1/services`)).body as unknown as ListBody).items.map((i) => i.metadata.name)).toEqual(['db']);
    expect(s.resourceCounters.namespaces).toEqual({ lists: 4, watches: 0, gets: 2 });
    expect(s.resourceCounters.services).toEqual({ lists: 1, watches: 0, gets: 0 });
    // An update that changes nothing writes nothing; the name label cannot be removed.
    const rv = s.resourceVersion;
    expect(s.setNamespaceAnnotations('team-a', { 'pgroute.io/tenants': 'acme' }).metadata.resourceVersion).toBe(a.metadata.resourceVersion);
    expect(s.updateNamespace('team-a', (n) => void (n.metadata.labels = {})).metadata.labels).toEqual({ 'kubernetes.io/metadata.name': 'team-a' });
    expect(s.resourceVersion).toBe(rv);
  });

  it('watches Namespaces (one of them by fieldSelector), with ADDED/MODIFIED/DELETED, bookmarks and 410 Gone', async () => {
    const s = await server(24160, { bookmarkIntervalMs: 100 });
    s.createNamespace({ name: 'team-a' });
    s.createNamespace({ name: 'team-b' });
    s.createService({ namespace: 'team-a', name: 'db' });
    const from = s.resourceVersion;
    const all = watch(`${s.url}/api/v1/namespaces?watch=true&resourceVersion=${from}&allowWatchBookmarks=true`);
    const onlyA = watch(`${s.url}/api/v1/namespaces?watch=true&resourceVersion=${from}&fieldSelector=${encodeURIComponent('metadata.name=team-a')}`);
    const services = watch(`${s.url}/api/v1/services?watch=true&resourceVersion=${from}`);
    await all.until(() => s.openWatches === 3);
    s.setNamespaceAnnotations('team-b', { 'pgroute.io/tenants': 'globex' });
    s.setNamespaceAnnotations('team-a', { 'pgroute.io/tenants': 'acme' });
    s.deleteNamespace('team-a');
    await onlyA.until(() => onlyA.events.length === 4);
    expect(onlyA.events.map((e) => e.type)).toEqual(['MODIFIED', 'MODIFIED', 'MODIFIED', 'DELETED']);
    expect(onlyA.events.every((e) => e.object.metadata?.name === 'team-a')).toBe(true);
    await all.until(() => all.events.filter((e) => e.type !== 'BOOKMARK').length === 5 && all.events.some((e) => e.type === 'BOOKMARK'));
    expect(all.events.filter((e) => e.type !== 'BOOKMARK').map((e) => `${e.type} ${e.object.metadata?.name}`)).toEqual([
      'MODIFIED team-b',
      'MODIFIED team-a',
      'MODIFIED team-a',
      'MODIFIED team-a',
      'DELETED team-a',
    ]);
    expect(all.events.find((e) => e.type === 'BOOKMARK')?.object.kind).toBe('Namespace');
    // Deleting the Namespace deleted its Service first; Service watches see only Services.
    await services.until(() => services.events.length === 1);
    expect(services.events.map((e) => `${e.type} ${e.object.metadata?.name}`)).toEqual(['DELETED db']);
    expect(s.getNamespace('team-a')).toBeUndefined();
    expect(() => s.createService({ namespace: 'team-b', name: 'x' })).not.toThrow();
    // Compaction expires Namespace watches as it does Service watches.
    s.compactHistory();
    const expired = watch(`${s.url}/api/v1/namespaces?watch=true&resourceVersion=${from}`);
    await expired.until(() => expired.ended);
    expect(expired.events.map((e) => e.object.code)).toEqual([410]);
    // Without a resourceVersion: ADDED for what exists.
    const fresh = watch(`${s.url}/api/v1/namespaces?watch=true`);
    await fresh.until(() => fresh.events.length === 1);
    expect(fresh.events[0]).toMatchObject({ type: 'ADDED', object: { metadata: { name: 'team-b' } } });
  });

  it('refuses new Services in a Terminating Namespace', async () => {
    const s = await server(24161);
    s.createNamespace({ name: 'team-a' });
    s.updateNamespace('team-a', (n) => {
      n.status.phase = 'Terminating';
    });
    expect(() => s.createService({ namespace: 'team-a', name: 'x' })).toThrow(/unable to create new content in namespace team-a because it is being terminated/);
    expect(() => s.createService({ namespace: 'elsewhere', name: 'x' })).not.toThrow();
  });

  it('injects failures as Status objects', async () => {
    const s = await server(24158);
    s.failNextRequests(1, 503);
    const failed = await getJson(`${s.url}/api/v1/services`);
    expect(failed).toMatchObject({ status: 503, body: { kind: 'Status', reason: 'ServiceUnavailable', code: 503 } });
    expect((await getJson(`${s.url}/api/v1/services`)).status).toBe(200);
    expect((await getJson(`${s.url}/api/v1/pods`)).status).toBe(404);
  });
});

describe('the server module itself', () => {
  it('imports nothing but Node built-ins (bench/run.sh runs it alone, compiled without its packages)', () => {
    const source = readFileSync(new URL('../../../test/support/fake-kube-apiserver.ts', import.meta.url), 'utf8');
    const runtimeImports = [...source.matchAll(/^import (?!type )[^'"]*['"]([^'"]+)['"]/gm)].map((m) => m[1]);
    expect(runtimeImports.length).toBeGreaterThan(0);
    expect(runtimeImports.filter((spec) => !spec?.startsWith('node:'))).toEqual([]);
  });
});
