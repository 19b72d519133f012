// `pgroute watch --source docker --spawn-haproxy` against the real dockerd: labelled PostgreSQL
// containers become routable through the one pgroute port within a second of being ready (without
// a reload: additions go into spare backends), stops, relabels and removals are refused within a
// second, and after a dockerd restart new containers are followed without restarting pgroute.
//
// "Ready" is the first moment a direct connection to the container's own address succeeds; the
// routed side is polled concurrently, so event-to-routable = first routed success - ready.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { statePaths } from '../../generator/src/index.js';
import { cleanupOnExit, containerIp, docker, ensureDocker, removeContainers, restartDockerd, runContainer, testPrefix } from '../support/docker.js';
import { ensurePostgresImage } from '../support/docker-images.js';
import { reloadCount, startWatch } from '../support/pgroute.js';
import { portBlock } from '../support/ports.js';
import { sleep, type ProcessHandle } from '../support/process.js';
import { psql } from '../support/psql.js';
import { clusterName as showClusterName } from '../support/routed.js';

const ports = portBlock(5);
const P = testPrefix('docker-watch');
/** Tenant ids unique to this run (other runs' and files' containers share the engine). */
const TAG = `${(process.pid % 1296).toString(36)}${Date.now().toString(36).slice(-4)}`;
const id = (name: string): string => `dw${TAG}-${name}`;
/** The promise under test: a change is routable (or refused) within this time. */
const WITHIN_MS = 1_000;

let image = '';
let dir = '';
let state = '';
let watch: ProcessHandle | undefined;
const timings: Record<string, number> = {};

// ---- clients ------------------------------------------------------------------------------------

const clusterName = (cfg: pg.ClientConfig): Promise<string> => showClusterName({ user: 'postgres', ...cfg });
const direct = (ip: string): Promise<string> => clusterName({ host: ip, port: 5432 });
const routed = (tenant: string): Promise<string> => clusterName({ host: '127.0.0.1', port: ports.haproxy, options: `-c pgroute.tenant=${tenant}` });

/** psql through pgroute (what users run): the cluster name, or the error text. */
async function psqlRouted(tenant: string): Promise<{ ok: boolean; text: string }> {
  const r = await psql({ port: ports.haproxy, db: 'postgres', options: `-c pgroute.tenant=${tenant}`, command: 'SHOW cluster_name', timeoutMs: 5_000 });
  return r.code === 0 ? { ok: true, text: r.stdout.trim() } : { ok: false, text: r.stderr.trim() };
}

const refusal = (tenant: string): RegExp => new RegExp(`no tenant "${tenant}" is served here`);

// ---- containers ---------------------------------------------------------------------------------

async function pgContainer(name: string, labels: Record<string, string>): Promise<string> {
  await runContainer({ name: P + name, image, labels, env: { CLUSTER_NAME: name } });
  const ip = await containerIp(P + name, 'bridge');
  if (ip === undefined) throw new Error(`container ${P + name} has no IP on the bridge network`);
  return ip;
}

/**
 * Polls the container directly and through pgroute at the same time until the routed connection
 * lands on it; records routed-minus-ready (ms) under `what` and returns it.
 */
async function routableAfterReady(what: string, tenant: string, ip: string, cluster: string, timeoutMs = 30_000): Promise<number> {
  const t0 = Date.now();
  let ready: number | undefined;
  let routedAt: number | undefined;
  let lastRouted = '';
  const trace: string[] = [];
  const deadline = t0 + timeoutMs;
  const pollDirect = async (): Promise<void> => {
    while (ready === undefined && Date.now() < deadline) {
      try {
        if ((await direct(ip)) === cluster) ready = Date.now();
      } catch {
        await sleep(10);
      }
    }
  };
  const pollRouted = async (): Promise<void> => {
    while (routedAt === undefined && Date.now() < deadline) {
      try {
        const c = await routed(tenant);
        if (c === cluster) routedAt = Date.now();
        else lastRouted = `landed on ${c}`;
      } catch (err) {
        const m = (err as Error).message;
        if (m !== lastRouted) trace.push(`${Date.now() - t0} ms: ${m}`);
        lastRouted = m;
        await sleep(10);
      }
    }
  };
  await Promise.all([pollDirect(), pollRouted()]);
  if (ready === undefined) throw new Error(`${what}: the container ${ip} never answered directly within ${timeoutMs} ms`);
  if (routedAt === undefined) throw new Error(`${what}: not routable through pgroute within ${timeoutMs} ms (last: ${lastRouted})\n${watch?.output(40) ?? ''}`);
  const ms = Math.max(0, routedAt - ready);
  if (ms >= WITHIN_MS) console.log(`${what}: ready at ${ready - t0} ms, routed at ${routedAt - t0} ms; routed attempts:\n${trace.join('\n')}\n${watch?.output(30) ?? ''}`);
  timings[what] = ms;
  timings[`${what} (container start to ready)`] = ready - t0;
  return ms;
}

/**
 * Probes through pgroute until a new connection is refused with the unknown-tenant error; returns
 * the ms from `since` to the end of that refused probe. A probe starts every 10 ms without waiting
 * for the ones in flight: a connection that reached the stopped server just before the change
 * (HAProxy retries a refused connect after a one-second turn-around) must not hold up the next
 * probe, or the figure would be that connection's retries rather than when new ones are refused.
 */
async function refusedWithin(what: string, tenant: string, since: number, ms = WITHIN_MS): Promise<number> {
  let last = '';
  let refusedAt: number | undefined;
  const inFlight = new Set<Promise<void>>();
  while (refusedAt === undefined) {
    if (Date.now() - since > ms + 5_000) {
      await Promise.allSettled([...inFlight]);
      throw new Error(`${what}: ${tenant} was not refused within ${ms + 5_000} ms (last: ${last})`);
    }
    const probe = (async (): Promise<void> => {
      try {
        last = `routed to ${await routed(tenant)}`;
      } catch (err) {
        const e = err as Error & { code?: string };
        last = `${e.code ?? ''} ${e.message}`;
        if (e.code === '3D000' && refusal(tenant).test(e.message)) refusedAt ??= Date.now();
      }
    })();
    inFlight.add(probe);
    void probe.finally(() => inFlight.delete(probe));
    await sleep(10);
  }
  await Promise.allSettled([...inFlight]);
  timings[what] = refusedAt - since;
  // What psql users read.
  const p = await psqlRouted(tenant);
  expect(p.ok).toBe(false);
  expect(p.text).toMatch(refusal(tenant));
  return timings[what] as number;
}

// ---- lifecycle ----------------------------------------------------------------------------------

beforeAll(async () => {
  await ensureDocker();
  image = await ensurePostgresImage();
  cleanupOnExit(P);
  dir = mkdtempSync(join(tmpdir(), 'pgroute-docker-watch-'));
  state = join(dir, 'state');
  const t = Date.now();
  // Which containers may declare tenants is docker-ownership.test.ts's concern: these all may.
  watch = await startWatch(ports, state, ['--source', 'docker', '--spares', '8', '--docker-expose-by-default']);
  timings['pgroute watch start'] = Date.now() - t;
}, 180_000);

afterAll(async () => {
  await watch?.stop('SIGINT', 15_000);
  await removeContainers(P).catch(() => undefined);
  if (dir) rmSync(dir, { recursive: true, force: true });
  console.log(`docker-watch timings (ms): ${JSON.stringify(timings)}`);
}, 60_000);

describe('pgroute watch --source docker (real dockerd, HAProxy spawned)', () => {
  let reloadsAtStart = 0;

  it('a container with pgroute labels is routable within a second of being ready, without a reload', async () => {
    reloadsAtStart = await reloadCount(statePaths(state).masterSocket);
    const tenant = id('pg');
    const ip = await pgContainer('pg', { 'pgroute.tenant': tenant });
    expect(await routableAfterReady('add: pgroute labels', tenant, ip, 'pg')).toBeLessThan(WITHIN_MS);
    expect(await psqlRouted(tenant)).toEqual({ ok: true, text: 'pg' });
    expect(await reloadCount(statePaths(state).masterSocket)).toBe(reloadsAtStart);
  });

  it('a container with xdatabase-proxy labels works the same', async () => {
    const tenant = id('xdb');
    const ip = await pgContainer('xdb', {
      'xdatabase-proxy-enabled': 'true',
      'xdatabase-proxy-deployment-id': tenant,
      'xdatabase-proxy-database-type': 'postgresql',
      'xdatabase-proxy-destination-port': '5432',
    });
    expect(await routableAfterReady('add: xdatabase-proxy labels', tenant, ip, 'xdb')).toBeLessThan(WITHIN_MS);
    expect(await psqlRouted(tenant)).toEqual({ ok: true, text: 'xdb' });
    expect(await reloadCount(statePaths(state).masterSocket)).toBe(reloadsAtStart);
  });

  it('stopping a container: refused with the unknown-tenant error within a second', async () => {
    await docker.getContainer(P + 'pg').stop({ t: 5 });
    expect(await refusedWithin('stop -> refused', id('pg'), Date.now())).toBeLessThan(WITHIN_MS);
  });

  it('relabel (recreate with pgroute.enabled=false): refused, although the new container answers', async () => {
    const tenant = id('xdb');
    await docker.getContainer(P + 'xdb').remove({ force: true });
    expect(await refusedWithin('relabel: old container removed -> refused', tenant, Date.now())).toBeLessThan(WITHIN_MS);
    const ip = await pgContainer('xdb', {
      'xdatabase-proxy-enabled': 'true',
      'xdatabase-proxy-deployment-id': tenant,
      'xdatabase-proxy-database-type': 'postgresql',
      'pgroute.enabled': 'false',
    });
    const t = Date.now();
    while ((await direct(ip).catch(() => '')) !== 'xdb') {
      if (Date.now() - t > 20_000) throw new Error('the relabelled container never answered directly');
      await sleep(20);
    }
    // Ready and disabled: refused with the same words as an unknown tenant; the log says why.
    await refusedWithin('relabel: disabled -> refused', tenant, Date.now());
    await sleep(300); // give pgroute the time it would need to (wrongly) route it
    await refusedWithin('relabel: still refused', tenant, Date.now());
    await watch?.waitForOutput(new RegExp(`disabled-tenant.*${tenant}|${tenant}.*disabled-tenant`), 5_000);
  });

  it('removing a routable container: refused within a second', async () => {
    const tenant = id('rm');
    const ip = await pgContainer('rm', { 'pgroute.tenant': tenant });
    expect(await routableAfterReady('add: before remove', tenant, ip, 'rm')).toBeLessThan(WITHIN_MS);
    await docker.getContainer(P + 'rm').remove({ force: true });
    expect(await refusedWithin('remove -> refused', tenant, Date.now())).toBeLessThan(WITHIN_MS);
  });

  it('after a dockerd restart, a new labelled container is routable again (pgroute not restarted)', async () => {
    const pid = watch?.pid;
    const r = await restartDockerd();
    timings['dockerd stop'] = r.stopMs;
    timings['dockerd start'] = r.startMs;
    const tBack = Date.now();
    await watch?.waitForOutput(/reconnected to Docker/, 15_000);
    timings['pgroute reconnected after dockerd answered'] = Date.now() - tBack;
    const tenant = id('after');
    const ip = await pgContainer('after', { 'pgroute.tenant': tenant });
    expect(await routableAfterReady('add: after dockerd restart', tenant, ip, 'after')).toBeLessThan(WITHIN_MS);
    expect(await psqlRouted(tenant)).toEqual({ ok: true, text: 'after' });
    expect(watch?.running()).toBe(true);
    expect(watch?.pid).toBe(pid);
  }, 120_000);

  it('none of the additions reloaded HAProxy (they went into spare backends)', async () => {
    expect(await reloadCount(statePaths(state).masterSocket)).toBe(reloadsAtStart);
    expect(watch?.output()).not.toMatch(/reloading HAProxy/);
  });
});
