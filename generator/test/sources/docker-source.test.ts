// DockerSource's lifecycle against a fake Engine (no sockets): events, coalesced lists, resync, outage and
// recovery, stop. The real engine is exercised in test/e2e/docker-source.test.ts.

import { PassThrough, Writable } from 'node:stream';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DockerSource, type DockerApi, type DockerSourceOptions } from '../../src/sources/docker.js';
import { recordCreated } from '../../src/sources/docker/created.js';
import type { ContainerSummary } from '../../src/sources/docker/claims.js';
import type { SourceView } from '../../src/sources/source.js';

class FakeEngine implements DockerApi {
  running: ContainerSummary[] = [];
  up = true;
  lists = 0;
  subscriptions = 0;
  readonly streams = new Set<PassThrough>();

  async listContainers(options: { filters?: { [key: string]: string[] } }): Promise<readonly ContainerSummary[]> {
    expect(options.filters).toEqual({ status: ['running'] });
    await tick();
    this.lists++;
    if (!this.up) throw Object.assign(new Error('connect ENOENT /var/run/docker.sock'), { code: 'ENOENT' });
    return this.running.map((c) => ({ ...c }));
  }

  async getEvents(options: { filters?: { type?: string[] } }): Promise<NodeJS.ReadableStream> {
    expect(options.filters).toEqual({ type: ['container', 'network'] });
    await tick();
    if (!this.up) throw Object.assign(new Error('connect ENOENT /var/run/docker.sock'), { code: 'ENOENT' });
    this.subscriptions++;
    const s = new PassThrough();
    this.streams.add(s);
    s.on('close', () => this.streams.delete(s));
    return s;
  }

  event(Type: string, Action: string, ID = 'x'.repeat(64)): void {
    for (const s of this.streams) s.write(`${JSON.stringify({ Type, Action, Actor: { ID }, time: 1 })}\n`);
  }

  down(): void {
    this.up = false;
    for (const s of this.streams) s.end();
  }
}

function tick(): Promise<void> {
  return new Promise((r) => setImmediate(r));
}
function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function pg(name: string, ip: string, labels: Record<string, string>, created = 1000): ContainerSummary {
  return { Id: `${name}`.padEnd(64, '0'), Names: [`/${name}`], Created: created, State: 'running', Labels: labels, NetworkSettings: { Networks: { bridge: { IPAddress: ip } } } };
}

interface Harness {
  engine: FakeEngine;
  source: DockerSource;
  views: SourceView[];
  logs: { level: number; msg: string }[];
}

const sources: DockerSource[] = [];
afterEach(async () => {
  await Promise.all(sources.splice(0).map((s) => s.stop()));
});

/** firstViewTimeoutMs null: none (as `watch` runs it), waiting with a warning every waitLogMs. */
function harness(opts: { resyncMs?: number; firstViewTimeoutMs?: number | null; waitLogMs?: number; admission?: DockerSourceOptions['admission']; stateDir?: string } = {}): Harness {
  const engine = new FakeEngine();
  const logs: { level: number; msg: string }[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const line of chunk.toString().split('\n').filter(Boolean)) logs.push(JSON.parse(line) as { level: number; msg: string });
      cb();
    },
  });
  const source = new DockerSource({
    docker: engine,
    // Lifecycle tests: which containers may declare tenants is docker-ownership.test.ts's concern.
    admission: opts.admission ?? { exposeByDefault: true, constraints: [] },
    ...(opts.stateDir === undefined ? {} : { stateDir: opts.stateDir }),
    log: pino({ level: 'debug' }, sink),
    retryMinMs: 10,
    retryMaxMs: 40,
    resyncMs: opts.resyncMs ?? 60_000,
    ...(opts.firstViewTimeoutMs === null ? {} : { firstViewTimeoutMs: opts.firstViewTimeoutMs ?? 2_000 }),
    ...(opts.waitLogMs === undefined ? {} : { waitLogMs: opts.waitLogMs }),
  });
  sources.push(source);
  return { engine, source, views: [], logs };
}

async function until(what: string, cond: () => boolean, timeoutMs = 1000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

const ids = (v: SourceView | undefined): string[] => (v?.snapshot.tenants ?? []).map((t) => t.id);
const refusedIn = (v: SourceView | undefined): { where: string; id?: string; reason: string }[] => [...(v?.snapshot.refused ?? [])];

describe('DockerSource (fake engine)', () => {
  it('delivers the first view before start() resolves, then follows events', async () => {
    const h = harness();
    h.engine.running = [pg('acme-db', '172.17.0.2', { 'pgroute.tenant': 'acme' })];
    await h.source.start((v) => h.views.push(v));
    expect(h.views).toHaveLength(1);
    expect(h.views[0]?.snapshot.tenants).toEqual([{ id: 'acme', enabled: true, targets: { primary: { host: '172.17.0.2', port: 5432 } } }]);
    expect(h.views[0]?.where).toEqual({ acme: 'docker container acme-db (acme-db00000)' });
    expect(h.source.connected).toBe(true);

    h.engine.running.push(pg('globex-db', '172.17.0.3', { 'pgroute.tenant': 'globex' }));
    h.engine.event('container', 'start');
    await until('globex', () => ids(h.views.at(-1)).includes('globex'));
    expect(ids(h.views.at(-1))).toEqual(['acme', 'globex']);
  });

  it('a burst of events costs one list; exec and create events cost none', async () => {
    const h = harness();
    await h.source.start((v) => h.views.push(v));
    const before = h.engine.lists;
    for (let i = 0; i < 5; i++) h.engine.event('container', `exec_start: pg_isready ${i}`);
    h.engine.event('container', 'create');
    await sleep(60);
    expect(h.engine.lists).toBe(before);
    h.engine.running = [pg('a', '10.0.0.1', { 'pgroute.tenant': 'a' })];
    for (let i = 0; i < 20; i++) h.engine.event('container', i % 2 ? 'die' : 'destroy');
    await until('view a', () => ids(h.views.at(-1)).includes('a'));
    await sleep(60);
    expect(h.engine.lists).toBe(before + 1);
  });

  it('a container that died is dropped even while dockerd still lists it as running; a restart brings it back', async () => {
    const h = harness();
    const a = pg('a', '10.0.0.1', { 'pgroute.tenant': 'a' });
    h.engine.running = [a, pg('b', '10.0.0.2', { 'pgroute.tenant': 'b' })];
    await h.source.start((v) => h.views.push(v));
    h.engine.event('container', 'die', a.Id); // dockerd has not caught up: a is still listed
    await until('a gone', () => ids(h.views.at(-1)).join() === 'b');
    h.engine.event('container', 'start', a.Id); // restarted (restart policy)
    await until('a back', () => ids(h.views.at(-1)).join() === 'a,b');
    h.engine.event('container', 'die', a.Id);
    await until('a gone again', () => ids(h.views.at(-1)).join() === 'b');
    h.engine.running = [pg('b', '10.0.0.2', { 'pgroute.tenant': 'b' })]; // caught up: forgotten
    h.engine.event('network', 'disconnect');
    await until('list', () => h.engine.lists >= 5);
    h.engine.running.push(a); // a new run of a, seen by a resync-like list without a start event
    h.engine.event('container', 'update');
    await until('a listed again', () => ids(h.views.at(-1)).join() === 'a,b');
  });

  it('pushes every list as a complete view (the pipeline compares): an unchanged one equals the last', async () => {
    const h = harness();
    h.engine.running = [pg('a', '10.0.0.1', { 'pgroute.tenant': 'a' })];
    await h.source.start((v) => h.views.push(v));
    h.engine.event('container', 'health_status: healthy');
    await until('a list', () => h.engine.lists >= 2);
    await until('its view', () => h.views.length === 2);
    expect(h.views[1]).toEqual(h.views[0]);
    expect(ids(h.views[1])).toEqual(['a']);
  });

  it('resyncs periodically even without events', async () => {
    const h = harness({ resyncMs: 50 });
    await h.source.start((v) => h.views.push(v));
    h.engine.running = [pg('quiet', '10.0.0.7', { 'pgroute.tenant': 'quiet' })];
    await until('resync', () => ids(h.views.at(-1)).includes('quiet'), 500);
  });

  it('keeps the last view while the engine is down, reconnects with backoff and re-lists', async () => {
    const h = harness();
    h.engine.running = [pg('acme-db', '172.17.0.2', { 'pgroute.tenant': 'acme' })];
    await h.source.start((v) => h.views.push(v));
    h.engine.down();
    await until('down', () => !h.source.connected);
    // Containers change during the outage; nothing is pushed, in particular no empty view.
    h.engine.running = [pg('globex-db', '172.17.0.3', { 'pgroute.tenant': 'globex' })];
    await sleep(200);
    expect(h.views).toHaveLength(1);
    expect(h.logs.filter((l) => l.level === 40).map((l) => l.msg)).toEqual([
      expect.stringMatching(/^lost Docker at the Docker API: events stream ended \(closed by dockerd\); keeping the last view \(1 tenants\); reconnecting every ≤40 ms$/),
    ]);
    const attempts = h.engine.lists;
    h.engine.up = true;
    await until('recovered', () => ids(h.views.at(-1)).includes('globex'), 200);
    expect(h.views).toHaveLength(2);
    expect(h.source.connected).toBe(true);
    expect(h.engine.lists).toBe(attempts + 1);
    expect(h.logs.some((l) => l.level === 30 && /^reconnected to Docker at the Docker API after \d+ ms; containers re-listed$/.test(l.msg))).toBe(true);
    // And events work on the new stream.
    h.engine.running = [];
    h.engine.event('container', 'die');
    await until('empty', () => h.views.at(-1)?.snapshot.tenants.length === 0);
  });

  it('a failing list while the stream looks alive forces a reconnect', async () => {
    const h = harness();
    await h.source.start((v) => h.views.push(v));
    h.engine.up = false; // the socket is dead but the stream has not noticed
    h.engine.event('container', 'start');
    await until('reconnect attempts', () => h.engine.streams.size === 0);
    h.engine.up = true;
    await until('resubscribed', () => h.engine.subscriptions === 2 && h.source.connected);
  });

  it('start() rejects with a clear message when no view can be made, and leaves nothing running', async () => {
    const h = harness({ firstViewTimeoutMs: 150 });
    h.engine.up = false;
    await expect(h.source.start((v) => h.views.push(v))).rejects.toThrow(
      /^gave up waiting for the first list of Docker containers at the Docker API after 0.15 s: .*ENOENT.*; check that dockerd is running/,
    );
    const lists = h.engine.lists;
    h.engine.up = true;
    await sleep(100);
    expect(h.engine.lists).toBe(lists);
    expect(h.views).toEqual([]);
  });

  it('without a first-view timeout (watch), start() waits for an engine that is down, says so repeatedly, and resolves once it answers', async () => {
    const h = harness({ firstViewTimeoutMs: null, waitLogMs: 50 });
    h.engine.up = false;
    let started = false;
    const start = h.source.start((v) => h.views.push(v)).then(() => (started = true));
    await until('two "still waiting" warnings', () => h.logs.filter((l) => l.msg.startsWith('still waiting for the first list of Docker containers at the Docker API')).length >= 2, 2_000);
    const warning = h.logs.find((l) => l.msg.startsWith('still waiting'));
    expect(warning).toMatchObject({ level: 40, lastError: expect.stringMatching(/ENOENT/) });
    expect(warning?.msg).toMatch(/retrying with backoff\): pgroute applies nothing from this source and \/readyz answers 503 until it arrives; check that dockerd is running/);
    expect(started).toBe(false);
    h.engine.up = true;
    await start;
    expect(h.views).toHaveLength(1);
    const warnings = h.logs.filter((l) => l.msg.startsWith('still waiting')).length;
    await sleep(150);
    expect(h.logs.filter((l) => l.msg.startsWith('still waiting')).length).toBe(warnings);
  });

  it('stop() while the first view is awaited ends start() with a rejection and leaves nothing running', async () => {
    const h = harness({ firstViewTimeoutMs: null });
    h.engine.up = false;
    const start = h.source.start((v) => h.views.push(v));
    await until('a failed attempt', () => h.logs.some((l) => l.msg.startsWith('lost Docker')));
    await h.source.stop();
    await expect(start).rejects.toThrow(/^the docker source was stopped before its first list of containers/);
    const lists = h.engine.lists;
    h.engine.up = true;
    await sleep(100);
    expect(h.engine.lists).toBe(lists);
  });

  it('start() waits for an engine that comes up within the timeout', async () => {
    const h = harness();
    h.engine.up = false;
    setTimeout(() => (h.engine.up = true), 100);
    await h.source.start((v) => h.views.push(v));
    expect(h.views).toHaveLength(1);
  });

  it('stop() ends the stream and every timer; later events do nothing', async () => {
    const h = harness({ resyncMs: 20 });
    await h.source.start((v) => h.views.push(v));
    expect(h.engine.streams.size).toBe(1);
    await h.source.stop();
    expect(h.engine.streams.size).toBe(0);
    const lists = h.engine.lists;
    h.engine.running = [pg('late', '10.0.0.9', { 'pgroute.tenant': 'late' })];
    await sleep(80);
    expect(h.engine.lists).toBe(lists);
    expect(h.views).toHaveLength(1);
  });

  it('stop() during an outage returns promptly', async () => {
    const h = harness();
    await h.source.start((v) => h.views.push(v));
    h.engine.down();
    await until('down', () => !h.source.connected);
    const t = Date.now();
    await h.source.stop();
    expect(Date.now() - t).toBeLessThan(50);
  });

  it('by default admits only the containers `tenant create` recorded in the state dir, read at every list', async () => {
    const stateDir = await mkdtemp(join(tmpdir(), 'pgroute-docker-admit-'));
    try {
      const h = harness({ admission: { exposeByDefault: false, constraints: [] }, stateDir });
      const created = { ...pg('pgroute-tenant-acme', '172.17.0.2', { 'pgroute.tenant': 'acme', 'pgroute.managed': 'true' }), Id: 'ac'.repeat(32) };
      const stranger = pg('stranger', '172.17.0.9', { 'pgroute.tenant': 'globex', 'pgroute.managed': 'true' });
      h.engine.running = [created, stranger];
      await h.source.start((v) => h.views.push(v));
      expect(ids(h.views.at(-1))).toEqual([]);
      expect(refusedIn(h.views.at(-1)).map((r) => r.where)).toEqual(['docker container pgroute-tenant-acme (acacacacacac)', 'docker container stranger (stranger0000)']);
      expect(refusedIn(h.views.at(-1))[1]?.reason).toMatch(/pgroute did not create it .* its label pgroute\.managed proves nothing/);

      // What `tenant create` does before it starts the container; the start event lists again.
      await recordCreated(stateDir, 'acme', created.Id);
      h.engine.event('container', 'start');
      await until('acme admitted', () => ids(h.views.at(-1)).join() === 'acme');
      expect(refusedIn(h.views.at(-1)).map((r) => r.where)).toEqual(['docker container stranger (stranger0000)']);
    } finally {
      await rm(stateDir, { recursive: true, force: true });
    }
  });
});
