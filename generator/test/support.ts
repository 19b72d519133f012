// Shared fixtures for the generator tests (not a test file itself).

import { desiredOccupants, EMPTY_LAYOUT, layoutForReload, type Layout } from '../src/layout.js';
import type { Listener, TenantSnapshot } from '../src/model.js';
import { ConfigError } from '../src/errors.js';

export const FALLBACK: Listener = { address: '127.0.0.1', port: 5432 };
export const ORIGIN = 'tenants.yaml';

/** Runs fn, expects a ConfigError, returns its message. */
export function configErrorOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    if (err instanceof ConfigError) return err.message;
    throw new Error(`expected a ConfigError, got ${String(err)}`, { cause: err });
  }
  throw new Error('expected a ConfigError, nothing was thrown');
}

/** The config split into the tenant backends (from the first `backend pg.` line to the next other
 * section) and everything else. */
export function splitTenantBackends(cfg: string): { section: string[]; outside: string[] } {
  const lines = cfg.split('\n');
  let start = lines.findIndex((l) => l.startsWith('backend pg.'));
  if (start < 0) return { section: [], outside: lines };
  if (lines[start - 1]?.startsWith('# ')) start -= 1; // the backend's own comment line
  let end = lines.findIndex((l, i) => i > start && /^(frontend|backend (?!pg\.)|global|defaults)/.test(l));
  if (end < 0) end = lines.length;
  return { section: lines.slice(start, end), outside: [...lines.slice(0, start), ...lines.slice(end)] };
}

/** Every `backend <name>` declared in a haproxy.cfg. */
export function declaredBackends(cfg: string): string[] {
  return [...cfg.matchAll(/^backend (\S+)$/gm)].map((m) => m[1] as string);
}

/** The layout a first generation gives a snapshot (no spares, so the output shows tenants only). */
export function layoutOf(snapshot: TenantSnapshot, spares = 0): Layout {
  return layoutForReload(EMPTY_LAYOUT, desiredOccupants(snapshot.tenants), spares);
}
