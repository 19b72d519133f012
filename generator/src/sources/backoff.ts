// The one retry schedule of the sources (Docker's events stream, Kubernetes' informers): exponential
// from `initialMs`, capped at `maxMs`, each delay shortened by a random part of up to `jitter` so that
// replicas (or informers) that failed together do not retry in step. Jitter only shortens: the cap
// stays the longest wait, as the sources' log lines promise. Pure: the caller counts the attempts
// and owns the timer.

export interface BackoffPolicy {
  /** Delay before the first retry (before jitter). */
  readonly initialMs: number;
  /** No delay is longer. */
  readonly maxMs: number;
  /** Fraction (0..1) by which a delay may be shortened at random; default 0.2. */
  readonly jitter?: number;
}

export const DEFAULT_JITTER = 0.2;

/**
 * The delay before retry number `attempt` (1 = the first retry after a failure):
 * min(maxMs, initialMs · 2^(attempt−1)) · (1 − jitter · random()), rounded to a millisecond.
 * `random` returns a number in [0, 1) (Math.random; tests pass their own).
 */
export function backoffDelay(attempt: number, policy: BackoffPolicy, random: () => number = Math.random): number {
  const { initialMs, maxMs } = policy;
  const jitter = policy.jitter ?? DEFAULT_JITTER;
  if (!(initialMs >= 0) || !(maxMs >= initialMs)) throw new RangeError(`backoff: need 0 <= initialMs <= maxMs, got ${initialMs} and ${maxMs}`);
  if (!(jitter >= 0 && jitter <= 1)) throw new RangeError(`backoff: jitter must be from 0 to 1, got ${jitter}`);
  // Past 2^30 every realistic policy is at its cap; bounding the exponent keeps the product finite.
  const exponent = Math.min(Math.max(0, Math.floor(attempt) - 1), 30);
  const base = Math.min(maxMs, initialMs * 2 ** exponent);
  return Math.round(base * (1 - jitter * Math.min(Math.max(random(), 0), 1)));
}
