// The sources' one retry schedule: doubling, capped, shortened at random by at most the jitter.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { backoffDelay } from '../../src/sources/backoff.js';

const never = (): number => 0; // no jitter drawn
const most = (): number => 0.999_999; // the most jitter

describe('backoffDelay', () => {
  it('doubles from the initial delay up to the cap (no jitter drawn)', () => {
    const policy = { initialMs: 100, maxMs: 2_000 };
    expect([1, 2, 3, 4, 5, 6, 100, 10_000].map((n) => backoffDelay(n, policy, never))).toEqual([100, 200, 400, 800, 1_600, 2_000, 2_000, 2_000]);
  });

  it('attempt 0 or below counts as the first retry', () => {
    expect(backoffDelay(0, { initialMs: 50, maxMs: 500 }, never)).toBe(50);
    expect(backoffDelay(-3, { initialMs: 50, maxMs: 500 }, never)).toBe(50);
  });

  it('jitter shortens a delay by up to its fraction (default 20%), never lengthens it', () => {
    expect(backoffDelay(1, { initialMs: 1_000, maxMs: 30_000 }, most)).toBe(800);
    expect(backoffDelay(99, { initialMs: 1_000, maxMs: 30_000 }, most)).toBe(24_000);
    expect(backoffDelay(1, { initialMs: 1_000, maxMs: 30_000, jitter: 0.5 }, () => 0.5)).toBe(750);
    expect(backoffDelay(3, { initialMs: 1_000, maxMs: 30_000, jitter: 0 }, most)).toBe(4_000);
  });

  it('spreads retries that start together (Math.random)', () => {
    const delays = new Set(Array.from({ length: 50 }, () => backoffDelay(6, { initialMs: 500, maxMs: 30_000 })));
    expect(delays.size).toBeGreaterThan(10);
  });

  it('refuses a policy that makes no sense', () => {
    expect(() => backoffDelay(1, { initialMs: 100, maxMs: 50 })).toThrow(/initialMs <= maxMs/);
    expect(() => backoffDelay(1, { initialMs: -1, maxMs: 50 })).toThrow(/initialMs <= maxMs/);
    expect(() => backoffDelay(1, { initialMs: 1, maxMs: 50, jitter: 1.5 })).toThrow(/jitter/);
  });

  it('every delay lies in [(1 - jitter) * base, base] with base = min(max, initial * 2^(attempt-1)), and never decreases without jitter (property)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 10_000 }),
        fc.integer({ min: 0, max: 100_000 }),
        fc.integer({ min: 1, max: 200 }),
        fc.double({ min: 0, max: 1, noNaN: true }),
        fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
        (initialMs, extra, attempt, jitter, r) => {
          const policy = { initialMs, maxMs: initialMs + extra, jitter };
          const base = Math.min(policy.maxMs, initialMs * 2 ** Math.min(attempt - 1, 30));
          const d = backoffDelay(attempt, policy, () => r);
          expect(d).toBeLessThanOrEqual(Math.round(base));
          expect(d).toBeGreaterThanOrEqual(Math.round((1 - jitter) * base) - 1);
          expect(backoffDelay(attempt + 1, { ...policy, jitter: 0 })).toBeGreaterThanOrEqual(backoffDelay(attempt, { ...policy, jitter: 0 }));
        },
      ),
    );
  });
});
