// The pipeline: debounced bursts, a longest wait for continuous streams, applies that never
// overlap, retries of failed applies with the newest view, and refusals logged once. A fake
// source and a fake applier (real timers, short delays).

import type { Logger } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import type { Applier, ApplyResult } from '../src/apply.js';
import type { Deployment, TenantSnapshot } from '../src/model.js';
import { Pipeline, type PipelineOptions } from '../src/pipeline.js';
import type { SourceView, TenantSource } from '../src/sources/source.js';
import { buildSnapshot, type RawTenant } from '../src/tenants.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

const DEPLOYMENT: Deployment = {
  listeners: [{ address: '127.0.0.1', port: 5432 }],
  policy: { keys: ['database'], targetByPort: {}, defaultTarget: 'primary', revealDisabled: false },
};

/** View number i: one tenant t<i> (so the applied snapshot says which view it came from). */
function view(i: number, extraRaws: readonly RawTenant[] = []): SourceView {
  return { snapshot: buildSnapshot([{ where: `view ${i}`, value: { id: `t${i}`, host: '10.0.0.1', port: 5432 } }, ...extraRaws]), where: { [`t${i}`]: `view ${i}` } };
}
const BAD = { where: 'bad.yaml', value: { id: 'Not An Id', host: '10.0.0.1', port: 5432 } };

class FakeSource implements TenantSource {
  readonly name = 'fake';
  emit: (view: SourceView) => void = () => {
    throw new Error('not started');
  };
  stopped = false;
  constructor(private readonly first: SourceView) {}
  async start(onView: (view: SourceView) => void): Promise<void> {
    this.emit = onView;
    onView(this.first);
  }
  async stop(): Promise<void> {
    this.stopped = true;
  }
}

interface Call {
  readonly view: number;
  readonly start: number;
  end: number;
  readonly deployment: Deployment;
}

class FakeApplier {
  readonly calls: Call[] = [];
  active = 0;
  maxActive = 0;
  delayMs = 0;
  /** Results to return, in order; then 'runtime'. */
  readonly results: ApplyResult['kind'][] = [];

  async apply(deployment: Deployment, snapshot: TenantSnapshot): Promise<ApplyResult> {
    const call: Call = { view: Number(snapshot.tenants[0]?.id.slice(1) ?? -1), start: Date.now(), end: 0, deployment };
    this.calls.push(call);
    this.active += 1;
    this.maxActive = Math.max(this.maxActive, this.active);
    await sleep(this.delayMs);
    this.active -= 1;
    call.end = Date.now();
    const kind = this.results.shift() ?? 'runtime';
    return { kind, detail: kind === 'failed' ? 'boom' : 'ok' };
  }

  get views(): number[] {
    return this.calls.map((c) => c.view);
  }
}

interface LogEntry {
  readonly level: string;
  readonly obj: Record<string, unknown>;
  readonly msg: string;
}
function fakeLog(): { log: Logger; entries: LogEntry[] } {
  const entries: LogEntry[] = [];
  const at =
    (level: string) =>
    (obj: Record<string, unknown>, msg: string): void => {
      entries.push({ level, obj, msg });
    };
  return { log: { info: at('info'), warn: at('warn'), error: at('error'), debug: at('debug') } as unknown as Logger, entries };
}

const running: Pipeline[] = [];
afterEach(async () => {
  for (const p of running.splice(0)) await p.stop();
});

function setup(first: SourceView, opts: Partial<PipelineOptions> = {}) {
  const source = new FakeSource(first);
  const applier = new FakeApplier();
  const { log, entries } = fakeLog();
  const results: ApplyResult[] = [];
  const pipeline = new Pipeline({
    source,
    applier: applier as unknown as Applier,
    deployment: DEPLOYMENT,
    log,
    quietMs: 30,
    maxWaitMs: 500,
    retryMs: 100,
    onApplied: (r) => results.push(r),
    ...opts,
  });
  running.push(pipeline);
  return { source, applier, entries, results, pipeline };
}

describe('Pipeline', () => {
  it('start applies the first view before resolving, with the default deployment', async () => {
    const { applier, pipeline, results } = setup(view(0));
    const r = await pipeline.start();
    expect(r.kind).toBe('runtime');
    expect(applier.views).toEqual([0]);
    expect(applier.calls[0]?.deployment).toBe(DEPLOYMENT);
    expect(results).toHaveLength(1);
  });

  it("a view's own deployment wins over the default", async () => {
    const own: Deployment = { ...DEPLOYMENT, listeners: [{ address: '127.0.0.1', port: 6000 }] };
    const { applier, pipeline } = setup({ ...view(0), deployment: own });
    await pipeline.start();
    expect(applier.calls[0]?.deployment).toBe(own);
  });

  it('debounce: a burst of 10 views in 20 ms is one apply, of the last view', async () => {
    const { source, applier, pipeline } = setup(view(0), { quietMs: 50 });
    await pipeline.start();
    for (let i = 1; i <= 10; i++) {
      source.emit(view(i));
      await sleep(2);
    }
    await sleep(200);
    expect(applier.views).toEqual([0, 10]);
  });

  it('max wait: a continuous stream is applied at least every maxWaitMs, not only when it stops', async () => {
    const { source, applier, pipeline } = setup(view(0), { quietMs: 50, maxWaitMs: 150 });
    await pipeline.start();
    const t0 = Date.now();
    let i = 1;
    while (Date.now() - t0 < 700) {
      source.emit(view(i++));
      await sleep(10);
    }
    const during = applier.calls.slice(1).filter((c) => c.start - t0 < 700);
    expect(during.length).toBeGreaterThanOrEqual(3);
    expect((during[0]?.start ?? Infinity) - t0).toBeLessThan(150 + 100);
    for (let k = 1; k < during.length; k++) expect((during[k]?.start ?? 0) - (during[k - 1]?.start ?? 0)).toBeLessThan(150 + 100);
    // Views applied in order, and the newest one at the end.
    await sleep(200);
    const applied = applier.views;
    expect([...applied].sort((a, b) => a - b)).toEqual(applied);
    expect(applied.at(-1)).toBe(i - 1);
  });

  it('applies never overlap; the newest view waiting is applied right after', async () => {
    const { source, applier, pipeline } = setup(view(0), { quietMs: 5, maxWaitMs: 20 });
    await pipeline.start();
    applier.delayMs = 80;
    for (let i = 1; i <= 30; i++) {
      source.emit(view(i));
      await sleep(7);
    }
    await sleep(400);
    expect(applier.maxActive).toBe(1);
    for (let k = 1; k < applier.calls.length; k++) expect(applier.calls[k]?.start).toBeGreaterThanOrEqual(applier.calls[k - 1]?.end ?? Infinity);
    expect(applier.views.at(-1)).toBe(30);
    // Skipped intermediate views: far fewer applies than views.
    expect(applier.calls.length).toBeLessThan(15);
  });

  it('applies never overlap with the first apply either (a view arriving while start() applies waits for it)', async () => {
    const { source, applier, pipeline } = setup(view(0), { quietMs: 5, maxWaitMs: 20 });
    applier.delayMs = 150;
    const started = pipeline.start();
    await sleep(20);
    source.emit(view(1));
    await started;
    await sleep(250);
    expect(applier.views).toEqual([0, 1]);
    expect(applier.maxActive).toBe(1);
    expect(applier.calls[1]?.start).toBeGreaterThanOrEqual(applier.calls[0]?.end ?? Infinity);
  });

  it('a failed apply is retried later with the newest view', async () => {
    const { applier, pipeline, entries } = setup(view(0), { retryMs: 80 });
    applier.results.push('failed', 'failed');
    expect((await pipeline.start()).kind).toBe('failed');
    await sleep(400);
    // failed, failed (retry), ok (retry): then nothing more.
    expect(applier.views).toEqual([0, 0, 0]);
    expect(entries.filter((e) => e.msg === 'tenants applied').map((e) => [e.level, e.obj.kind])).toEqual([
      ['error', 'failed'],
      ['error', 'failed'],
      ['info', 'runtime'],
    ]);
  });

  it('a newer view arriving before the retry is what gets applied', async () => {
    const { source, applier, pipeline } = setup(view(0), { retryMs: 150, quietMs: 10 });
    applier.results.push('failed', 'failed');
    await pipeline.start();
    source.emit(view(1)); // fails too
    await sleep(400);
    expect(applier.views[0]).toBe(0);
    expect(applier.views.slice(1).every((v) => v === 1)).toBe(true);
    expect(applier.views.at(-1)).toBe(1);
  });

  it('the retry of a failed view never re-applies it after a newer view was applied', async () => {
    const { source, applier, pipeline } = setup(view(0), { retryMs: 200, quietMs: 10 });
    applier.results.push('failed');
    await pipeline.start();
    source.emit(view(1)); // applied (ok) well before the retry of view 0 fires
    await sleep(400);
    expect(applier.views).toEqual([0, 1]);
  });

  it('each refusal is logged once, not on every view; a new set of refusals is logged again', async () => {
    const { source, applier, pipeline, entries } = setup(view(0, [BAD]), { quietMs: 5 });
    await pipeline.start();
    for (let i = 1; i <= 3; i++) {
      source.emit(view(i, [BAD]));
      await sleep(40);
    }
    expect(applier.views).toEqual([0, 1, 2, 3]);
    const refusals = (): LogEntry[] => entries.filter((e) => e.msg === 'tenant definition refused');
    expect(refusals()).toHaveLength(1);
    expect(refusals()[0]).toMatchObject({ level: 'warn', obj: { where: 'bad.yaml' } });
    source.emit(view(4, [BAD, { where: 'worse.yaml', value: 'nope' }]));
    await sleep(40);
    expect(refusals()).toHaveLength(3);
    source.emit(view(5));
    await sleep(40);
    source.emit(view(6, [BAD]));
    await sleep(40);
    expect(refusals()).toHaveLength(4);
  });

  it('a view equal to the newest one (structurally) is not applied again', async () => {
    const { source, applier, pipeline } = setup(view(0), { quietMs: 5 });
    await pipeline.start();
    source.emit(view(1));
    await sleep(40);
    source.emit(view(1));
    source.emit({ ...view(1), where: { t1: 'view 1' } });
    await sleep(40);
    expect(applier.views).toEqual([0, 1]);
    source.emit(view(0));
    await sleep(40);
    expect(applier.views).toEqual([0, 1, 0]);
  });

  it('unchanged results are not logged as applied', async () => {
    const { applier, pipeline, entries } = setup(view(0));
    applier.results.push('unchanged');
    await pipeline.start();
    expect(entries.filter((e) => e.msg === 'tenants applied')).toEqual([]);
  });

  it('stop: the source stops, a running apply is awaited, and later views are ignored', async () => {
    const { source, applier, pipeline } = setup(view(0), { quietMs: 5, maxWaitMs: 10 });
    await pipeline.start();
    applier.delayMs = 100;
    source.emit(view(1));
    await sleep(30); // view 1 is being applied
    const stopping = pipeline.stop();
    source.emit(view(2));
    await stopping;
    expect(source.stopped).toBe(true);
    expect(applier.active).toBe(0);
    await sleep(100);
    expect(applier.views).toEqual([0, 1]);
  });

  it('a source that delivers no first view is an error', async () => {
    const source: TenantSource = { name: 'mute', start: async () => undefined, stop: async () => undefined };
    const { log } = fakeLog();
    const p = new Pipeline({ source, applier: new FakeApplier() as unknown as Applier, deployment: DEPLOYMENT, log });
    await expect(p.start()).rejects.toThrow(/mute source started without a first view/);
  });
});
