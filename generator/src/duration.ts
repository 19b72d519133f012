// HAProxy's duration syntax (`500ms`, `5s`, `1m`; no unit means milliseconds) in milliseconds. Pure.

const UNIT_MS: Record<string, number> = { us: 0.001, ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** The duration in milliseconds, or NaN when `value` is not one. */
export function durationMs(value: string): number {
  const m = /^(\d{1,12})(us|ms|s|m|h|d)?$/.exec(value);
  return m === null ? NaN : Number(m[1]) * (UNIT_MS[m[2] ?? 'ms'] ?? NaN);
}
