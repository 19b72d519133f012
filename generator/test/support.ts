// Shared fixtures for the generator tests (not a test file itself).

import { desiredOccupants, EMPTY_LAYOUT, layoutForReload, type Layout } from '../src/layout.js';
import type { Listener, TenantSnapshot } from '../src/model.js';
import { createServer, type Server, type Socket } from 'node:net';
import { ConfigError } from '../src/errors.js';
import { loadTemplates } from '../src/render/templates.js';

export const FALLBACK: Listener = { address: '127.0.0.1', port: 5432 };
export const ORIGIN = 'tenants.yaml';
/** pgroute's templates, compiled once for every test. */
export const TEMPLATES = loadTemplates();

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

/**
 * A stand-in for a HAProxy CLI socket (admin or master): a unix-socket server that hands each
 * connection's first command line to `onLine`, which answers on the socket.
 */
export function cliSocket(path: string, onLine: (line: string, sock: Socket) => void): Promise<Server> {
  const server = createServer((sock) => {
    let buf = '';
    sock.setEncoding('utf8');
    sock.on('data', (d: string) => {
      buf += d;
      const nl = buf.indexOf('\n');
      if (nl >= 0) onLine(buf.slice(0, nl), sock);
    });
  });
  return new Promise((resolve) => server.listen(path, () => resolve(server)));
}
