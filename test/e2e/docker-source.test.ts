// The Docker source against the real engine (Debian's docker.io 20.10): labelled containers in,
// complete views out, within a second of every change; and through a dockerd restart.
//
// No host ports: the host reaches container IPs directly. Every container and network of a run is
// named with a per-run prefix and removed in afterAll (and at process exit if afterAll never runs).

import pg from 'pg';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DockerSource } from '../../generator/src/sources/docker.js';
import type { SourceView } from '../../generator/src/sources/source.js';
import {
  cleanupOnExit,
  containerIp,
  createNetwork,
  docker,
  ensureDocker,
  liveRestoreEnabled,
  removeContainers,
  removeNetworks,
  restartDockerd,
  runContainer,
  testPrefix,
} from '../support/docker.js';
import { ensurePostgresImage } from '../support/docker-images.js';
import { sleep } from '../support/process.js';

const P = testPrefix('docker-source');
const NET = `${P}net`;
const NET2 = `${P}net2`;
/** The promise of this file: a change shows in the view within this time. */
const WITHIN_MS = 1_000;
const SLEEPER = ['/bin/sleep', '3600'];
/** The operator's constraint this run admits by (--docker-constraint label=...); acme-dup lacks it. */
const RUN_LABEL = 'com.example.pgroute-run';

let image = '';
let source: DockerSource | undefined;
const views: { at: number; view: SourceView }[] = [];
const timings: Record<string, number> = {};

/** The part of a view that is about this run's containers (the engine may run others). */
function mine(view: SourceView): SourceView {
  const where = Object.fromEntries(Object.entries(view.where).filter(([, w]) => w.includes(P)));
  return { snapshot: { tenants: view.snapshot.tenants.filter((t) => Object.hasOwn(where, t.id)), refused: view.snapshot.refused.filter((r) => r.where.includes(P)) }, where };
}
function latest(): SourceView {
  const v = views.at(-1)?.view;
  if (v === undefined) throw new Error('no view yet');
  return mine(v);
}
interface TenantValue {
  id: string;
  host: string;
  port: unknown;
  enabled: unknown;
  maxconn?: number;
  targets?: Record<string, { host: string; port: unknown }>;
}
/** A tenant of the view as its labels say it: the primary's host and port on top. */
function tenant(view: SourceView, id: string): TenantValue | undefined {
  const t = view.snapshot.tenants.find((x) => x.id === id);
  if (t === undefined) return undefined;
  const { primary, ...targets } = t.targets;
  return { id, host: primary?.host ?? '', port: primary?.port, enabled: t.enabled, ...(t.maxconn === undefined ? {} : { maxconn: t.maxconn }), ...(Object.keys(targets).length === 0 ? {} : { targets }) };
}
function refusedOf(view: SourceView, name: string): string[] {
  return view.snapshot.refused.filter((r) => r.where.startsWith(`docker container ${P}${name} (`)).map((r) => r.reason);
}

/**
 * Waits until the latest view satisfies `ok`, at most `ms` after `since` (when the API call that
 * made the change returned); records the latency. The view may already have changed before the
 * call returned (a forced remove is slow): that counts as 0 ms.
 */
async function viewWithin(what: string, ok: (v: SourceView) => boolean, since: number, ms = WITHIN_MS): Promise<SourceView> {
  for (;;) {
    if (views.length > 0 && ok(latest())) {
      let first = views.length - 1;
      while (first > 0 && ok(mine((views[first - 1] as { view: SourceView }).view))) first--;
      timings[what] = Math.max(0, (views[first] as { at: number }).at - since);
      return latest();
    }
    if (Date.now() - since > ms) {
      throw new Error(`the view did not show "${what}" within ${ms} ms; latest view: ${JSON.stringify(views.length ? latest() : null, null, 1)}`);
    }
    await sleep(10);
  }
}

async function pgContainer(name: string, labels: Record<string, string>, networks?: string[]): Promise<void> {
  await runContainer({ name: P + name, image, labels: { [RUN_LABEL]: P, ...labels }, env: { CLUSTER_NAME: name }, ...(networks ? { networks } : {}) });
}
async function sleeper(name: string, labels: Record<string, string>, networks?: string[]): Promise<void> {
  await runContainer({ name: P + name, image, labels: { [RUN_LABEL]: P, ...labels }, entrypoint: SLEEPER, ...(networks ? { networks } : {}) });
}

async function clusterName(host: string, port: number): Promise<string> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const client = new pg.Client({ host, port, user: 'postgres', database: 'postgres', connectionTimeoutMillis: 1000 });
    try {
      await client.connect();
      const r = await client.query<{ cluster_name: string }>('SHOW cluster_name');
      return r.rows[0]?.cluster_name ?? '';
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await sleep(100);
    } finally {
      await client.end().catch(() => undefined);
    }
  }
}

beforeAll(async () => {
  let t = Date.now();
  await ensureDocker();
  timings['ensureDocker'] = Date.now() - t;
  t = Date.now();
  image = await ensurePostgresImage();
  timings['ensurePostgresImage'] = Date.now() - t;
  cleanupOnExit(P);
  await createNetwork(NET);
  await createNetwork(NET2);
  // Created in this order, so acme-db is older than acme-dup (which is not admitted: age counts for nothing).
  await pgContainer('acme-db', { 'pgroute.tenant': 'acme', 'pgroute.maxconn': '20' }, [NET]);
  await sleep(1100); // Created has 1 s resolution
  await sleeper('acme-pool', { 'pgroute.tenant': 'acme', 'pgroute.target': 'pool', 'pgroute.port': '6432' }, [NET]);
  await pgContainer('globex-db', {
    'xdatabase-proxy-enabled': 'true',
    'xdatabase-proxy-deployment-id': 'globex',
    'xdatabase-proxy-database-type': 'postgresql',
    'xdatabase-proxy-destination-port': '5432',
  });
  await sleeper('globex-pool', {
    'xdatabase-proxy-enabled': 'true',
    'xdatabase-proxy-deployment-id': 'globex',
    'xdatabase-proxy-database-type': 'postgresql',
    'xdatabase-proxy-pooled': 'true',
    'xdatabase-proxy-destination-port': '6432',
  });
  await sleeper('umbrella-db', { 'pgroute.tenant': 'umbrella', 'pgroute.enabled': 'false' });
  await sleeper('acme-dup', { 'pgroute.tenant': 'acme', [RUN_LABEL]: 'another-run' }, [NET]);
  await sleeper('badport-db', { 'pgroute.tenant': 'badport', 'pgroute.port': 'http' });
  await sleeper('shop-mysql', { 'xdatabase-proxy-enabled': 'true', 'xdatabase-proxy-deployment-id': 'shop', 'xdatabase-proxy-database-type': 'mysql' });
  await sleeper('multi-db', { 'pgroute.tenant': 'multi', 'pgroute.network': NET }, ['bridge', NET]);
  await sleeper('unlabelled', { 'com.example.role': 'web' });
}, 180_000);

afterAll(async () => {
  await source?.stop();
  await removeContainers(P);
  await removeNetworks(P);
  console.log(`docker-source timings (ms): ${JSON.stringify(timings)}`);
}, 60_000);

describe('DockerSource with the real engine', () => {
  it('first view: tenants, targets, addresses and refusals from both label vocabularies', async () => {
    const t = Date.now();
    source = new DockerSource({
      log: pino({ level: process.env['PGROUTE_LOG_LEVEL'] ?? 'warn' }),
      resyncMs: 600_000,
      admission: { exposeByDefault: false, constraints: [{ kind: 'label', key: RUN_LABEL, value: P }] },
    });
    await source.start((view) => views.push({ at: Date.now(), view }));
    timings['source.start()'] = Date.now() - t;
    const v = latest();

    const acmeIp = await containerIp(P + 'acme-db', NET);
    const poolIp = await containerIp(P + 'acme-pool', NET);
    const globexIp = await containerIp(P + 'globex-db', 'bridge');
    const globexPoolIp = await containerIp(P + 'globex-pool', 'bridge');
    const multiIp = await containerIp(P + 'multi-db', NET);
    expect(tenant(v, 'acme')).toEqual({ id: 'acme', host: acmeIp, port: 5432, enabled: true, maxconn: 20, targets: { pool: { host: poolIp, port: 6432 } } });
    expect(tenant(v, 'globex')).toEqual({ id: 'globex', host: globexIp, port: 5432, enabled: true, targets: { pool: { host: globexPoolIp, port: 6432 } } });
    expect(tenant(v, 'umbrella')).toMatchObject({ enabled: false });
    expect(tenant(v, 'multi')).toMatchObject({ host: multiIp }); // pgroute.network picks NET over bridge
    expect(v.where.acme).toMatch(new RegExp(`^docker container ${P}acme-db \\([0-9a-f]{12}\\)$`));
    expect(refusedOf(v, 'acme-dup')).toEqual([expect.stringMatching(/^the container may not declare tenants: pgroute did not create it/)]);
    expect(refusedOf(v, 'shop-mysql')).toEqual([expect.stringContaining('PostgreSQL only')]);
    expect(Object.values(v.where).some((w) => w.includes('unlabelled'))).toBe(false);

    // Validation refuses the bad port label with its reason; the rest stay.
    const snap = v.snapshot;
    expect(snap.tenants.map((x) => x.id).sort()).toEqual(['acme', 'globex', 'multi', 'umbrella']);
    expect(snap.refused.find((r) => r.id === 'badport')?.reason).toMatch(/port/);

    // The addresses are real: the PostgreSQL containers answer there.
    expect(await clusterName(acmeIp as string, 5432)).toBe('acme-db');
    expect(await clusterName(globexIp as string, 5432)).toBe('globex-db');
  });

  it('start: a new container shows up', async () => {
    await pgContainer('initech-db', { 'pgroute.tenant': 'initech' });
    const t = Date.now();
    const ip = await containerIp(P + 'initech-db', 'bridge');
    await viewWithin('start', (v) => tenant(v, 'initech')?.host === ip, t);
  });

  it('stop: a stopped container goes away', async () => {
    await docker.getContainer(P + 'initech-db').stop({ t: 5 });
    const t = Date.now();
    await viewWithin('stop', (v) => tenant(v, 'initech') === undefined, t);
  });

  it('relabel (recreate with new labels): the pool moves to port 6433', async () => {
    await docker.getContainer(P + 'acme-pool').remove({ force: true });
    const tGone = Date.now();
    await viewWithin('relabel: old pool removed', (v) => tenant(v, 'acme')?.targets === undefined, tGone);
    await sleeper('acme-pool', { 'pgroute.tenant': 'acme', 'pgroute.target': 'pool', 'pgroute.port': '6433' }, [NET]);
    const t = Date.now();
    const ip = await containerIp(P + 'acme-pool', NET);
    await viewWithin('relabel', (v) => tenant(v, 'acme')?.targets?.['pool']?.port === 6433 && tenant(v, 'acme')?.targets?.['pool']?.host === ip, t);
  });

  it('remove: removing the duplicate clears its refusal', async () => {
    await docker.getContainer(P + 'acme-dup').remove({ force: true });
    const t = Date.now();
    await viewWithin('remove', (v) => refusedOf(v, 'acme-dup').length === 0, t);
    expect(tenant(latest(), 'acme')?.host).toBe(await containerIp(P + 'acme-db', NET));
  });

  it('rename: the view names the container by its new name', async () => {
    await docker.getContainer(P + 'umbrella-db').rename({ name: `${P}umbrella-renamed` });
    const t = Date.now();
    await viewWithin('rename', (v) => Object.values(v.where).some((w) => w.startsWith(`docker container ${P}umbrella-renamed (`)), t);
  });

  it('pause / unpause: a paused container is not served', async () => {
    const c = docker.getContainer(P + 'umbrella-renamed');
    await c.pause();
    let t = Date.now();
    await viewWithin('pause', (v) => tenant(v, 'umbrella') === undefined, t);
    await c.unpause();
    t = Date.now();
    await viewWithin('unpause', (v) => tenant(v, 'umbrella') !== undefined, t);
  });

  it('network connect: a container labelled for a network it is not on is refused until it is connected', async () => {
    await sleeper('late-db', { 'pgroute.tenant': 'late', 'pgroute.network': NET2 });
    let t = Date.now();
    await viewWithin('label names a missing network', (v) => refusedOf(v, 'late-db').some((r) => r.includes(`names network "${NET2}", but the container is not attached to it`)), t);
    await docker.getNetwork(NET2).connect({ Container: P + 'late-db' });
    t = Date.now();
    const ip = await containerIp(P + 'late-db', NET2);
    await viewWithin('network connect', (v) => tenant(v, 'late')?.host === ip && refusedOf(v, 'late-db').length === 0, t);
  });

  it('crash: a container whose process exits on its own goes away (measured from its FinishedAt)', async () => {
    await runContainer({ name: `${P}crash-db`, image, labels: { [RUN_LABEL]: P, 'pgroute.tenant': 'crash' }, entrypoint: ['/bin/sleep', '1.5'] });
    await viewWithin('crash: up', (v) => tenant(v, 'crash') !== undefined, Date.now());
    const c = docker.getContainer(`${P}crash-db`);
    let finishedAt = 0;
    const deadline = Date.now() + 10_000;
    while (finishedAt === 0 && Date.now() < deadline) {
      const st = (await c.inspect()).State;
      if (!st.Running && st.FinishedAt.startsWith('2')) finishedAt = Date.parse(st.FinishedAt);
      else await sleep(50);
    }
    expect(finishedAt).toBeGreaterThan(0);
    await viewWithin('crash', (v) => tenant(v, 'crash') === undefined, finishedAt);
  });

  it('survives a dockerd restart: keeps the last view while it is down, follows changes made after', async () => {
    const live = await liveRestoreEnabled();
    const before = latest();
    let downViews = -1;
    const r = await restartDockerd(async () => {
      const pushedBefore = views.length;
      await sleep(1_000); // the source retries meanwhile
      expect(source?.connected).toBe(false);
      downViews = views.length - pushedBefore;
    });
    timings['dockerdStop'] = r.stopMs;
    timings['dockerdStart'] = r.startMs;
    // Down: no view at all, in particular no empty one (with live-restore, containers kept running
    // and nothing changed; without it, they stopped and the views before the exit showed that).
    expect(downViews).toBe(0);
    const tBack = Date.now();
    while (!source?.connected) {
      if (Date.now() - tBack > 5_000) throw new Error('the source did not reconnect within 5 s of dockerd answering again');
      await sleep(20);
    }
    timings['reconnect'] = Date.now() - tBack;
    if (live) expect(latest()).toEqual(before);

    await pgContainer('hooli-db', { 'pgroute.tenant': 'hooli' });
    const t = Date.now();
    const ip = await containerIp(P + 'hooli-db', 'bridge');
    await viewWithin('after restart: start', (v) => tenant(v, 'hooli')?.host === ip, t);
    expect(await clusterName(ip as string, 5432)).toBe('hooli-db');
    await docker.getContainer(P + 'hooli-db').remove({ force: true });
    const t2 = Date.now();
    await viewWithin('after restart: remove', (v) => tenant(v, 'hooli') === undefined, t2);
  }, 90_000);

  it('stop() ends the events stream: later changes are not seen', async () => {
    await source?.stop();
    const n = views.length;
    await sleeper('after-stop', { 'pgroute.tenant': 'afterstop' });
    await sleep(300);
    expect(views.length).toBe(n);
  });
});
