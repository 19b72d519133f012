// The limits map (generator/src/limits/limits-map.ts): every admission limit's ErrorResponse, keyed
// as HAProxy's rules build the key (haproxy/partials/limit-refusals.hbs), with exactly the bytes the
// agent composed before it stopped sending them with each verdict.

import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { encodeErrorResponse, type RouteTableDocument, type TenantRoute } from '../../agent/src/index.js';
import { limitKey, limitsEntries, limitsMapFile, LIMIT_KEY_KIND } from '../src/limits/limits-map.js';

const POLICY = { keys: ['options', 'database'], targetByPort: {}, defaultTarget: 'primary', revealDisabled: false } as const;
const table = (tenants: readonly TenantRoute[]): RouteTableDocument => ({ version: 'v', policy: POLICY as RouteTableDocument['policy'], tenants });
const fatal = (message: string, hint: string): string => encodeErrorResponse({ severity: 'FATAL', sqlstate: '53300', message, hint }).toString('base64');

describe('limitsEntries', () => {
  it('holds each limit that is set, keyed <tenant>/<c|r|a>/<value>, valued with its ErrorResponse in base64', () => {
    const entries = limitsEntries(
      table([
        { id: 'acme', enabled: true, backends: { primary: 'pg.acme.primary' }, limits: { maxClientConnections: 3, maxConnectionRate: 4, maxClientConnectionRate: 5 } },
        { id: 'globex', enabled: false, backends: {}, limits: { maxClientConnections: 0, maxConnectionRate: 7 } },
        { id: 'free', enabled: true, backends: { primary: 'pg.free.primary' } },
      ]),
    );
    expect(entries).toEqual(
      new Map([
        ['acme/c/3', fatal('too many connections for tenant "acme" (at most 3 at once)', 'Close idle connections or use a connection pool; retry when some have closed.')],
        ['acme/r/4', fatal('too many new connections per second for tenant "acme" (at most 4 a second)', 'Retry in a moment; keep connections open (a pool) instead of connecting for each query.')],
        ['acme/a/5', fatal('too many new connections per second from this client address for tenant "acme" (at most 5 a second)', 'Retry in a moment; keep connections open (a pool) instead of connecting for each query.')],
        ['globex/r/7', fatal('too many new connections per second for tenant "globex" (at most 7 a second)', 'Retry in a moment; keep connections open (a pool) instead of connecting for each query.')],
      ]),
    );
    expect(limitKey('acme', 'connections', 3)).toBe('acme/c/3');
  });

  it('renders "key value" lines HAProxy reads', () => {
    const text = limitsMapFile(limitsEntries(table([{ id: 'a-1', enabled: true, backends: {}, limits: { maxClientConnections: 1024, maxConnectionRate: 1000 } }])));
    const lines = text.trim().split('\n').filter((l) => !l.startsWith('#'));
    expect(lines).toHaveLength(2);
    for (const l of lines) expect(l).toMatch(/^a-1\/[cr]\/\d+ [A-Za-z0-9+/=]+$/);
  });

  it('spells each key as the HAProxy rules build it (the tenant, the letter, the limit\'s variable)', () => {
    const partial = readFileSync(join(dirname(fileURLToPath(import.meta.url)), '../../haproxy/partials/limit-refusals.hbs'), 'utf8');
    // The tenant: the route's second field (haproxy/partials/route-split.hbs), or with a per-address
    // rate the variable the agent sends with it.
    for (const [letter, variable, tenant] of [
      [LIMIT_KEY_KIND.connections, 'mc', 'var(txn.pgr.r),field(2,|)'],
      [LIMIT_KEY_KIND.rate, 'mr', 'var(txn.pgr.r),field(2,|)'],
      [LIMIT_KEY_KIND.clientRate, 'mcr', 'var(txn.pgr.t)'],
    ]) {
      expect(partial).toContain(`${tenant},concat(/${letter}/,txn.pgr.${variable}),map_str({{policy.refusalsMap}},{{policy.refusalDefault}}),b64dec`);
    }
  });
});
