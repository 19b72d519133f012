import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { CANCEL_MAX_DESTINATIONS, CANCEL_RECORDS, cancelId } from '../../src/contract.js';
import { CANCEL_DEFAULTS, CancelRateLimiter, cancelTargetIndex, mergeRecords, normalizeAddress, recordIds, routeCancel } from '../../src/decision/cancel-router.js';
import { CancelTableModel } from './cancel-table-model.js';
import { policy, table, tenant } from './fixtures.js';

const T = table(policy(), [tenant('acme', true, ['primary', 'pool']), tenant('globex', true, ['primary']), tenant('initech', true, ['primary']), tenant('umbrella', true, ['primary']), tenant('hooli', true, ['primary'])]);
const NOW = 1_700_000_000_000;

describe('cancelId', () => {
  it('is two words of SHA-256("<tenant>/<target>"), the first odd, as HAProxy computes them', () => {
    const h = createHash('sha256').update('acme/primary').digest();
    const [a, b] = cancelId('acme', 'primary');
    expect(a).toBe((h.readUInt32BE(0) | 1) >>> 0);
    expect(b).toBe(h.readUInt32BE(4));
    // Measured with HAProxy 2.6 (show table after a routed startup to acme/primary).
    expect([a, b]).toEqual([2018127687, 483803735]);
  });

  it('differs for 10,000 targets (no collision among them) and is never the empty slot', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 5_000; i++) {
      for (const target of ['primary', 'pool']) {
        const [a, b] = cancelId(`tenant-${i}`, target);
        expect(a % 2).toBe(1);
        seen.add(`${a}:${b}`);
      }
    }
    expect(seen.size).toBe(10_000);
  });
});

describe('recordIds', () => {
  const words = (...ids: (readonly [number, number] | undefined)[]): number[] => ids.flatMap((id) => (id === undefined ? [0, 0] : [id[0], id[1]]));
  const A = [1, 2] as const;
  const B = [3, 4] as const;
  const C = [5, 6] as const;

  it('lists the ids newest first: the slot written last is (written - 1) mod 4', () => {
    expect(recordIds(words(A, B, C, undefined), 3)).toEqual([C, B, A]);
    // 5 written: slot 0 was overwritten last.
    expect(recordIds(words(C, A, B, [7, 8]), 5)).toEqual([C, [7, 8], B, A]);
  });

  it('leaves out empty slots, repeats and values that are not 32-bit words', () => {
    expect(recordIds(words(undefined, undefined, undefined, undefined), 0)).toEqual([]);
    expect(recordIds(words(A, A, undefined, undefined), 2)).toEqual([A]);
    expect(recordIds([-1, 2 ** 32, 1.5, Number.NaN, 0, 0, 0, 0], 1)).toEqual([]);
    expect(recordIds(words(A), Number.NaN)).toEqual([A]);
    expect(recordIds([], 4)).toEqual([]);
  });
});

describe('mergeRecords', () => {
  const id = (n: number): [number, number] => [2 * n + 1, n];

  it('takes the newest of every table first, then the next, leaving out repeats', () => {
    expect(mergeRecords([[id(1), id(2)], [id(3)], [id(1), id(4)]])).toEqual([id(1), id(3), id(2), id(4)]);
    expect(mergeRecords([[], [id(5)]])).toEqual([id(5)]);
    expect(mergeRecords([])).toEqual([]);
  });

  it('stops at CANCEL_MAX_DESTINATIONS', () => {
    const tables = [0, 1, 2].map((t) => [0, 1, 2, 3].map((k) => id(10 * t + k)));
    const merged = mergeRecords(tables);
    expect(merged).toHaveLength(CANCEL_MAX_DESTINATIONS);
    expect(merged.slice(0, 3)).toEqual([id(0), id(10), id(20)]);
  });
});

describe('routeCancel', () => {
  it('routes to every recorded target of the table, most recent first; at most 4', () => {
    const model = new CancelTableModel();
    const addr = '192.0.2.1';
    for (const t of ['acme', 'globex', 'initech', 'umbrella', 'hooli']) model.record(addr, t, 'primary');
    const r = routeCancel(addr, model.ids(addr), T, new CancelRateLimiter(), NOW);
    expect(r.kind).toBe('route');
    if (r.kind !== 'route') return;
    // acme was the first of five: its slot went to hooli.
    expect(r.to.map((t) => t.tenant)).toEqual(['hooli', 'umbrella', 'initech', 'globex']);
    expect(r.to).toHaveLength(CANCEL_RECORDS);
    expect(r.to[0]).toEqual({ tenant: 'hooli', target: 'primary', backend: 'be_hooli_primary' });
  });

  it('never routes to a target the address was not routed to; unknown ids are skipped', () => {
    const model = new CancelTableModel();
    model.record('192.0.2.2', 'acme', 'pool');
    const forged: [number, number] = [12345, 678];
    const r = routeCancel('192.0.2.2', [forged, ...model.ids('192.0.2.2')], T, new CancelRateLimiter(), NOW);
    expect(r).toEqual({ kind: 'route', to: [{ tenant: 'acme', target: 'pool', backend: 'be_acme_pool' }] });
    expect(routeCancel('192.0.2.3', [forged], T, new CancelRateLimiter(), NOW).kind).toBe('unroutable');
    expect(routeCancel('192.0.2.3', [], T, new CancelRateLimiter(), NOW).kind).toBe('unroutable');
    expect(routeCancel('', model.ids('192.0.2.2'), T, new CancelRateLimiter(), NOW).kind).toBe('unroutable');
  });

  it('maps ids through this table: a target under another backend name on this replica goes there', () => {
    const here = table(policy(), [{ id: 'acme', enabled: true, backends: { primary: 'pg.spare.3' } }]);
    const r = routeCancel('192.0.2.4', [cancelId('acme', 'primary')], here, new CancelRateLimiter(), NOW);
    expect(r).toEqual({ kind: 'route', to: [{ tenant: 'acme', target: 'primary', backend: 'pg.spare.3' }] });
    expect(cancelTargetIndex(here)).toBe(cancelTargetIndex(here));
  });

  it('accept() drops targets (e.g. a tenant that no longer accepts the address)', () => {
    const model = new CancelTableModel();
    model.record('192.0.2.6', 'acme', 'primary');
    model.record('192.0.2.6', 'globex', 'primary');
    const r = routeCancel('192.0.2.6', model.ids('192.0.2.6'), T, new CancelRateLimiter(), NOW, (t) => t.tenant !== 'globex');
    expect(r).toEqual({ kind: 'route', to: [{ tenant: 'acme', target: 'primary', backend: 'be_acme_primary' }] });
  });

  it('an address without a record costs no bucket', () => {
    const rate = new CancelRateLimiter();
    routeCancel('192.0.2.5', [], T, rate, NOW);
    expect(rate.size).toBe(0);
  });
});

describe('CancelRateLimiter', () => {
  it('has the documented defaults and rejects unusable options', () => {
    const r = new CancelRateLimiter();
    expect([r.maxAddresses, r.cancelBurst, r.cancelRefillPerSecond]).toEqual([100_000, 500, 100]);
    expect(CANCEL_DEFAULTS.cancelBurst).toBe(500);
    expect(() => new CancelRateLimiter({ maxAddresses: 0 })).toThrow(RangeError);
    expect(() => new CancelRateLimiter({ maxAddresses: 1.5 })).toThrow(RangeError);
    expect(() => new CancelRateLimiter({ cancelRefillPerSecond: -1 })).toThrow(RangeError);
    expect(() => new CancelRateLimiter({ cancelBurst: Number.NaN })).toThrow(RangeError);
  });

  it('token bucket: burst, then refill per second; a clock going backwards does not refill', () => {
    const r = new CancelRateLimiter({ cancelBurst: 3, cancelRefillPerSecond: 2 });
    for (let i = 0; i < 3; i++) expect(r.take('10.0.0.1', NOW)).toBe(true);
    expect(r.take('10.0.0.1', NOW)).toBe(false);
    expect(r.take('10.0.0.2', NOW)).toBe(true); // per address
    expect(r.take('10.0.0.1', NOW + 499)).toBe(false);
    expect(r.take('10.0.0.1', NOW + 500)).toBe(true);
    expect(r.take('10.0.0.1', NOW - 10_000)).toBe(false);
    expect(r.take('10.0.0.1', NOW + 10_000)).toBe(true);
  });

  it('keeps at most maxAddresses buckets (least recently used evicted, which only forgives)', () => {
    const r = new CancelRateLimiter({ maxAddresses: 2, cancelBurst: 1, cancelRefillPerSecond: 0.001 });
    expect(r.take('10.0.0.1', NOW)).toBe(true);
    expect(r.take('10.0.0.2', NOW)).toBe(true);
    expect(r.take('10.0.0.1', NOW)).toBe(false); // 10.0.0.1 is now the most recently used
    expect(r.take('10.0.0.3', NOW)).toBe(true); // evicts 10.0.0.2
    expect(r.size).toBe(2);
    expect(r.take('10.0.0.2', NOW)).toBe(true);
    for (let i = 0; i < 1_000; i++) r.take(`10.1.${i >> 8}.${i & 255}`, NOW);
    expect(r.size).toBe(2);
  });

  it('one address under its spellings shares one bucket', () => {
    expect(normalizeAddress('::FFFF:192.0.2.1')).toBe('192.0.2.1');
    expect(normalizeAddress('2001:DB8::1')).toBe('2001:db8::1');
    const r = new CancelRateLimiter({ cancelBurst: 1, cancelRefillPerSecond: 0.001 });
    expect(r.take('::ffff:192.0.2.1', NOW)).toBe(true);
    expect(r.take('192.0.2.1', NOW)).toBe(false);
  });
});
