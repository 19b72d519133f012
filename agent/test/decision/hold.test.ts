// Pause and resume in the agent: a paused tenant's startup is a 'hold' (never a route), and so is one
// to a target whose backend HAProxy is adding (pending in the interim table of a reload); the hold
// queue answers each held connection once: released against the table of that moment, refused at
// the timeout (57P03) or at once over the bound (53300), refused when the replica stops for good
// (57P01), or dropped when HAProxy goes away.

import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { decide } from '../../src/decision/decide.js';
import { HoldQueue, type HoldOutcome } from '../../src/decision/hold.js';
import type { RouteTable, TenantRoute, Verdict } from '../../src/decision/types.js';
import { facts, policy, startup, table, tenant } from './fixtures.js';

const acme = (extra: Partial<TenantRoute> = {}): TenantRoute => ({ ...tenant('acme', true), ...extra });
const paused = table(policy(), [acme({ paused: true }), tenant('globex', true)]);
const moved = table(policy(), [acme({ backends: { primary: 'pg.acme.primary.2' } }), tenant('globex', true)]);
const ask = (t: RouteTable, db = 'acme'): Verdict => decide(t, facts(startup({ user: 'u', database: db })));

describe('decide: a paused tenant', () => {
  it('is held, not routed and not refused; other tenants route', () => {
    expect(ask(paused)).toEqual({ kind: 'hold', cause: 'paused', tenant: 'acme', target: 'primary', backend: 'be_acme_primary' });
    expect(ask(paused, 'globex').kind).toBe('route');
  });

  it('a disabled flag or an address outside `allow` still refuses first', () => {
    expect(ask(table(policy(), [acme({ paused: true, enabled: false })])).kind).toBe('refuse');
    expect(ask(table(policy(), [acme({ paused: true, allow: ['10.0.0.0/8'] })])).kind).toBe('refuse');
  });
});

/** acme's only target renamed from `main` to `primary`: the interim table of the reload adding it. */
const renaming = table(policy(), [acme({ backends: {}, pending: ['primary'] }), tenant('globex', true)]);

describe('decide: a target whose backend is being added (pending)', () => {
  it('is held, without a backend; other tenants route', () => {
    expect(ask(renaming)).toEqual({ kind: 'hold', cause: 'pending', tenant: 'acme', target: 'primary' });
    expect(ask(renaming, 'globex').kind).toBe('route');
  });

  it('only the pending target: another target the tenant lacks is still unknown (08004), a served one routes', () => {
    const partly = table(policy(), [acme({ backends: { primary: 'be_acme_primary' }, pending: ['replica'] })]);
    expect(decide(partly, facts(startup({ user: 'u', database: 'acme' }), 5433))).toMatchObject({ kind: 'hold', cause: 'pending', target: 'replica' });
    expect(ask(partly)).toMatchObject({ kind: 'route', backend: 'be_acme_primary' });
    const unknown = table(policy({ targetByPort: { 5433: 'gold' } }), [acme({ backends: { primary: 'be_acme_primary' }, pending: ['replica'] })]);
    expect(decide(unknown, facts(startup({ user: 'u', database: 'acme' }), 5433))).toMatchObject({ kind: 'refuse', reason: 'unknown-target', sqlstate: '08004' });
  });

  it('a disabled flag or an address outside `allow` still refuses first; a paused tenant says paused', () => {
    expect(ask(table(policy(), [acme({ backends: {}, pending: ['primary'], enabled: false })])).kind).toBe('refuse');
    expect(ask(table(policy(), [acme({ backends: {}, pending: ['primary'], allow: ['10.0.0.0/8'] })])).kind).toBe('refuse');
    expect(ask(table(policy(), [acme({ backends: {}, pending: ['primary'], paused: true })]))).toMatchObject({ kind: 'hold', cause: 'paused' });
  });
});

describe('HoldQueue', () => {
  let current: RouteTable;
  let ended: [HoldOutcome, string][];
  let queue: HoldQueue;
  beforeEach(() => {
    vi.useFakeTimers();
    current = paused;
    ended = [];
    queue = new HoldQueue({ timeoutMs: 5_000, maxHeld: 2 }, { ended: (o, t) => ended.push([o, t]) });
  });
  afterEach(() => vi.useRealTimers());

  const waitOne = (): { answers: Verdict[]; waiter: ReturnType<HoldQueue['wait']> } => {
    const answers: Verdict[] = [];
    const waiter = queue.wait(() => ask(current), (v) => answers.push(v));
    return { answers, waiter };
  };

  it('answers at once when the tenant is not paused', () => {
    current = moved;
    const { answers, waiter } = waitOne();
    expect(waiter).toBeUndefined();
    expect(answers).toEqual([expect.objectContaining({ kind: 'route', backend: 'pg.acme.primary.2' })]);
  });

  it('releases held connections, once, to the backend of the table they are released with', () => {
    const a = waitOne();
    const b = waitOne();
    expect(queue.size).toBe(2);
    expect(queue.release()).toBe(0); // still paused: nothing goes
    current = moved;
    expect(queue.release()).toBe(2);
    for (const x of [a, b]) expect(x.answers).toEqual([expect.objectContaining({ kind: 'route', backend: 'pg.acme.primary.2' })]);
    vi.advanceTimersByTime(10_000);
    expect(a.answers).toHaveLength(1);
    expect(queue.size).toBe(0);
    expect(ended).toEqual([['released', 'acme'], ['released', 'acme']]);
  });

  it('refuses with 57P03 at the timeout, and with 53300 at once over the bound', () => {
    const a = waitOne();
    waitOne();
    const over = waitOne();
    expect(over.waiter).toBeUndefined();
    expect(over.answers).toEqual([expect.objectContaining({ kind: 'refuse', reason: 'pause-queue-full', sqlstate: '53300' })]);
    vi.advanceTimersByTime(4_999);
    expect(a.answers).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(a.answers).toEqual([
      expect.objectContaining({ kind: 'refuse', reason: 'pause-timeout', sqlstate: '57P03', message: 'tenant "acme" is paused for maintenance and was not resumed within 5s; try again later' }),
    ]);
    expect(queue.size).toBe(0);
    expect(ended.map(([o]) => o)).toEqual(['queue-full', 'timed-out', 'timed-out']);
  });

  it('a cancelled wait is never answered and frees its place', () => {
    const a = waitOne();
    a.waiter?.cancel();
    expect(queue.size).toBe(0);
    current = moved;
    queue.release();
    vi.advanceTimersByTime(10_000);
    expect(a.answers).toEqual([]);
    expect(ended).toEqual([['abandoned', 'acme']]);
  });

  it('shutdown (the replica stops for good) answers every held connection with 57P01 at once, and every later one; unpaused tenants still route', () => {
    const a = waitOne();
    const b = waitOne();
    expect(queue.shutdown()).toBe(2);
    const refusal = { kind: 'refuse', reason: 'pause-shutdown', sqlstate: '57P01', message: 'the router holding this connection for paused tenant "acme" is shutting down; connect again' };
    for (const x of [a, b]) expect(x.answers).toEqual([expect.objectContaining(refusal)]);
    expect(queue.size).toBe(0);
    const later = waitOne();
    expect(later.waiter).toBeUndefined();
    expect(later.answers).toEqual([expect.objectContaining(refusal)]);
    // Nothing is answered twice: neither the timeout nor a resume reaches them again.
    vi.advanceTimersByTime(10_000);
    current = moved;
    queue.release();
    expect([a, b, later].map((x) => x.answers.length)).toEqual([1, 1, 1]);
    expect(ended).toEqual([['shutdown', 'acme'], ['shutdown', 'acme'], ['shutdown', 'acme']]);
    expect(waitOne().answers).toEqual([expect.objectContaining({ kind: 'route', backend: 'pg.acme.primary.2' })]);
  });

  it('a pending target: released to its backend by the table that names it; at the timeout, 57P03 saying what was awaited', () => {
    current = renaming;
    const a = waitOne();
    expect(a.waiter).toBeDefined();
    current = moved;
    expect(queue.release()).toBe(1);
    expect(a.answers).toEqual([expect.objectContaining({ kind: 'route', backend: 'pg.acme.primary.2' })]);

    current = renaming;
    const b = waitOne();
    vi.advanceTimersByTime(5_000);
    expect(b.answers).toEqual([
      expect.objectContaining({
        kind: 'refuse',
        reason: 'pause-timeout',
        sqlstate: '57P03',
        message: 'tenant "acme" is being reconfigured and its target "primary" was not ready within 5s; try again later',
      }),
    ]);
    expect(ended).toEqual([['released', 'acme'], ['timed-out', 'acme']]);
  });

  it('a tenant disabled while paused is refused at release', () => {
    const a = waitOne();
    current = table(policy(), [acme({ enabled: false })]);
    queue.release();
    expect(a.answers).toEqual([expect.objectContaining({ kind: 'refuse', reason: 'disabled-tenant' })]);
  });
});
