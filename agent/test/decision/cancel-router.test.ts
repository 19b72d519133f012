import { describe, expect, it } from 'vitest';
import { CANCEL_DEFAULTS, CancelRouter, normalizeAddress, type CancelTarget } from '../../src/decision/cancel-router.js';

const to = (tenant: string, target = 'primary'): CancelTarget => ({ tenant, target, backend: `be_${tenant}_${target}` });
const H = 60 * 60 * 1000;

describe('CancelRouter', () => {
  it('has the documented defaults', () => {
    const r = new CancelRouter();
    expect([r.maxAddresses, r.maxBackendsPerAddress, r.ttlMs, r.cancelBurst, r.cancelRefillPerSecond]).toEqual([
      100_000, 4, 24 * H, 500, 100,
    ]);
    expect(CANCEL_DEFAULTS.ttlMs).toBe(24 * H);
  });

  it('rejects unusable options', () => {
    expect(() => new CancelRouter({ maxAddresses: 0 })).toThrow(RangeError);
    expect(() => new CancelRouter({ maxBackendsPerAddress: 1.5 })).toThrow(RangeError);
    expect(() => new CancelRouter({ ttlMs: Number.NaN })).toThrow(RangeError);
    expect(() => new CancelRouter({ cancelRefillPerSecond: -1 })).toThrow(RangeError);
  });

  it('unknown address: unroutable, and no memory is spent on it', () => {
    const r = new CancelRouter();
    expect(r.route('10.0.0.1', 0).kind).toBe('unroutable');
    expect(r.route('', 0).kind).toBe('unroutable');
    expect(r.size).toBe(0);
    r.record('', to('acme'), 0);
    expect(r.size).toBe(0);
  });

  it('routes to the most recently routed backend of the address', () => {
    const r = new CancelRouter();
    r.record('10.0.0.1', to('acme'), 0);
    r.record('10.0.0.1', to('globex'), 10);
    r.record('10.0.0.2', to('umbrella'), 20);
    expect(r.route('10.0.0.1', 30)).toEqual({ kind: 'route', to: to('globex') });
    r.record('10.0.0.1', to('acme'), 40); // acme again: most recent once more
    expect(r.route('10.0.0.1', 50)).toEqual({ kind: 'route', to: to('acme') });
    expect(r.route('10.0.0.2', 50)).toEqual({ kind: 'route', to: to('umbrella') });
  });

  it('accept() skips targets, falling back to older ones of the same address only', () => {
    const r = new CancelRouter();
    r.record('10.0.0.1', to('acme'), 0);
    r.record('10.0.0.1', to('globex'), 1);
    r.record('10.0.0.9', to('umbrella'), 2);
    expect(r.route('10.0.0.1', 3, (t) => t.tenant !== 'globex')).toEqual({ kind: 'route', to: to('acme') });
    expect(r.route('10.0.0.1', 3, (t) => t.tenant === 'umbrella').kind).toBe('unroutable');
  });

  it('records expire after ttlMs; expiry is per backend', () => {
    const r = new CancelRouter({ ttlMs: 1000 });
    r.record('10.0.0.1', to('acme'), 0);
    r.record('10.0.0.1', to('globex'), 800);
    expect(r.route('10.0.0.1', 1500, (t) => t.tenant === 'acme').kind).toBe('unroutable'); // acme's expired
    expect(r.route('10.0.0.1', 1500)).toEqual({ kind: 'route', to: to('globex') });
    expect(r.route('10.0.0.1', 1801).kind).toBe('unroutable');
    expect(r.size).toBe(0); // the expired address was dropped on lookup
  });

  it('keeps at most maxBackendsPerAddress distinct backends, dropping the least recent', () => {
    const r = new CancelRouter({ maxBackendsPerAddress: 2 });
    r.record('a', to('t1'), 0);
    r.record('a', to('t2'), 1);
    r.record('a', to('t1'), 2); // t1 refreshed: t2 is now least recent
    r.record('a', to('t3'), 3); // t2 dropped
    const seen = (tenant: string): boolean => r.route('a', 4, (t) => t.tenant === tenant).kind === 'route';
    expect([seen('t1'), seen('t2'), seen('t3')]).toEqual([true, false, true]);
  });

  it('evicts the least recently recorded address beyond maxAddresses', () => {
    const r = new CancelRouter({ maxAddresses: 3 });
    r.record('a', to('t'), 0);
    r.record('b', to('t'), 1);
    r.record('c', to('t'), 2);
    r.record('a', to('t'), 3); // a refreshed: b is least recent
    r.record('d', to('t'), 4);
    expect(r.size).toBe(3);
    expect(r.route('b', 5).kind).toBe('unroutable');
    for (const x of ['a', 'c', 'd']) expect(r.route(x, 5).kind).toBe('route');
  });

  it('memory stays bounded under many addresses', () => {
    const r = new CancelRouter({ maxAddresses: 1000 });
    for (let i = 0; i < 20_000; i++) r.record(`10.${i >> 16}.${(i >> 8) & 255}.${i & 255}`, to('t'), i);
    expect(r.size).toBe(1000);
  });

  it('sweep removes expired addresses; record() sweeps lazily', () => {
    const r = new CancelRouter({ ttlMs: 100 });
    for (let i = 0; i < 50; i++) r.record(`old${i}`, to('t'), 0);
    r.record('new', to('t'), 150);
    expect(r.sweep(150)).toBe(50);
    expect(r.size).toBe(1);
    for (let i = 0; i < 500; i++) r.record(`x${i}`, to('t'), 0);
    for (let i = 0; i < 64; i++) r.record(`y${i}`, to('t'), 1000);
    expect(r.size).toBeLessThan(500); // lazily swept by record()
  });

  it('token bucket: burst, then refill per second', () => {
    const r = new CancelRouter({ cancelBurst: 3, cancelRefillPerSecond: 2 });
    r.record('a', to('t'), 0);
    for (let i = 0; i < 3; i++) expect(r.route('a', 0).kind).toBe('route');
    expect(r.route('a', 0).kind).toBe('rate-limited');
    expect(r.route('a', 499).kind).toBe('rate-limited'); // 0.998 tokens
    expect(r.route('a', 500).kind).toBe('route');
    expect(r.route('a', 100_000).kind).toBe('route'); // refill caps at the burst
    expect(r.route('a', 100_000).kind).toBe('route');
    expect(r.route('a', 100_000).kind).toBe('route');
    expect(r.route('a', 100_000).kind).toBe('rate-limited');
    // a new startup does not refill the bucket
    r.record('a', to('t'), 100_000);
    expect(r.route('a', 100_000).kind).toBe('rate-limited');
    // other addresses have their own bucket
    r.record('b', to('t'), 100_000);
    expect(r.route('b', 100_000).kind).toBe('route');
  });

  it('a clock going backwards neither refills nor expires', () => {
    const r = new CancelRouter({ cancelBurst: 1, ttlMs: 1000 });
    r.record('a', to('t'), 5000);
    expect(r.route('a', 4000).kind).toBe('route');
    expect(r.route('a', 3000).kind).toBe('rate-limited');
  });

  it('normalizes address spellings', () => {
    expect(normalizeAddress('::FFFF:192.0.2.1')).toBe('192.0.2.1');
    expect(normalizeAddress('2001:DB8::1')).toBe('2001:db8::1');
    const r = new CancelRouter();
    r.record('::ffff:192.0.2.1', to('acme'), 0);
    expect(r.route('192.0.2.1', 1)).toEqual({ kind: 'route', to: to('acme') });
  });
});
