// A tenant's allowed networks and admission limits in the decision: a client outside reads what an
// unknown tenant reads (unless revealDisabled), its cancels are refused like any unroutable cancel,
// and a routed startup carries the tenant's limits (a cancel never does).

import { describe, expect, it } from 'vitest';
import { CancelRateLimiter } from '../../src/decision/cancel-router.js';
import { CancelTableModel } from './cancel-table-model.js';
import { limitRefusals } from '../../src/decision/limits.js';
import { addressAllowed, networksProblem, parseNetwork } from '../../src/decision/networks.js';
import type { RouteTable, TenantRoute, Verdict } from '../../src/decision/types.js';
import { RouteStore } from '../../src/routes-store.js';
import { decideConnection } from '../../src/server/decide-connection.js';
import { CANCEL, facts, policy, startup, table, tenant } from './fixtures.js';

const LIMITS = { maxClientConnections: 3, maxConnectionRate: 10, maxClientConnectionRate: 0 };
const ACME: TenantRoute = { ...tenant('acme', true), allow: ['127.0.0.0/30', '2001:db8::/32'], limits: LIMITS };
const OPEN: TenantRoute = tenant('globex', true);

/** A startup decided as the agent does, recorded in `cancels` as HAProxy's rules do. */
function run(t: RouteTable, address: string, params: Record<string, string> = { user: 'u', database: 'acme' }, cancels = new CancelTableModel()): Verdict {
  const v = decideConnection({ store: new RouteStore(t), cancelRate: new CancelRateLimiter(), now: () => 1_000 }, facts(startup(params), 5432, address));
  cancels.recordVerdict(address, v);
  return v;
}

describe('networks', () => {
  it.each([
    ['10.0.0.0/8', { address: '10.0.0.0', prefix: 8, family: 'ipv4' }],
    ['192.0.2.7', { address: '192.0.2.7', prefix: 32, family: 'ipv4' }],
    ['2001:db8::/32', { address: '2001:db8::', prefix: 32, family: 'ipv6' }],
    ['::ffff:10.0.0.0/104', { address: '::ffff:10.0.0.0', prefix: 104, family: 'ipv6' }],
    ['0.0.0.0/0', { address: '0.0.0.0', prefix: 0, family: 'ipv4' }],
  ])('parses %s', (text, want) => expect(parseNetwork(text)).toEqual(want));

  it.each([
    ['10.0.0.0/33', 'prefix length must be a number from 0 to 32'],
    ['10.0.0.0/', 'prefix length'],
    ['10.0.0.0/8/8', 'prefix length'],
    ['10.0.0/8', 'is not an IP address'],
    ['fe80::1%eth0/64', 'is not an IP address'],
    ['10.1.0.0/8', 'did you mean 10.0.0.0/8?'],
    ['2001:db8::1/32', 'did you mean 2001:db8::/32?'],
    ['', 'must be text'],
  ])('refuses %j with its reason', (text, reason) => expect(parseNetwork(text)).toContain(reason));

  it('matches IPv4 networks, their IPv4-mapped IPv6 form, and IPv6 networks', () => {
    const allow = ['127.0.0.0/30', '2001:db8::/32'];
    expect(addressAllowed(allow, '127.0.0.2')).toBe(true);
    expect(addressAllowed(allow, '::ffff:127.0.0.3')).toBe(true);
    expect(addressAllowed(allow, '127.0.0.4')).toBe(false);
    expect(addressAllowed(allow, '2001:db8:1::7')).toBe(true);
    expect(addressAllowed(allow, '2001:db9::7')).toBe(false);
    expect(addressAllowed(allow, '')).toBe(false);
  });

  it('refuses an empty or oversized list', () => {
    expect(networksProblem([])).toContain('non-empty list');
    expect(networksProblem('10.0.0.0/8')).toContain('non-empty list');
    expect(networksProblem(Array.from({ length: 257 }, () => '10.0.0.0/8'))).toContain('at most 256');
  });
});

describe('decide: allowed networks', () => {
  const T = table(policy(), [ACME, OPEN]);
  const REVEAL = table(policy({ revealDisabled: true }), [ACME, OPEN]);

  it('routes a client inside, with the tenant limits', () => {
    expect(run(T, '127.0.0.2')).toEqual({ kind: 'route', tenant: 'acme', target: 'primary', backend: 'be_acme_primary', cancel: false, limits: LIMITS });
  });

  it('refuses a client outside with the very words of an unknown tenant', () => {
    const outside = run(T, '127.0.0.9');
    const unknown = run(T, '127.0.0.2', { user: 'u', database: 'nosuch' });
    expect(outside).toMatchObject({ kind: 'refuse', reason: 'address-not-allowed', sqlstate: '3D000', tenant: 'acme' });
    if (outside.kind !== 'refuse' || unknown.kind !== 'refuse') throw new Error('routed');
    expect(outside.message).toBe(unknown.message.replace('nosuch', 'acme'));
    expect(outside.logDetail).toContain('127.0.0.9 is outside the allowed networks');
  });

  it('with revealDisabled: 28000 naming the address', () => {
    expect(run(REVEAL, '10.9.9.9')).toMatchObject({ kind: 'refuse', sqlstate: '28000', message: 'tenant "acme" does not accept connections from 10.9.9.9' });
  });

  it('a tenant without allow takes every address', () => {
    expect(run(T, '198.51.100.1', { user: 'u', database: 'globex' })).toMatchObject({ kind: 'route', tenant: 'globex' });
  });

  it('a cancel is refused once the address is no longer allowed, routed while it is', () => {
    const cancels = new CancelTableModel();
    expect(run(T, '127.0.0.1', undefined, cancels).kind).toBe('route');
    const cancel = (t: RouteTable): Verdict =>
      decideConnection({ store: new RouteStore(t), cancelRate: new CancelRateLimiter(), now: () => 2_000 }, cancels.cancelFacts(facts(CANCEL, 5432, '127.0.0.1')));
    const routed = cancel(T);
    expect(routed).toMatchObject({ kind: 'route', tenant: 'acme', cancel: true });
    expect(routed).not.toHaveProperty('limits');
    const narrowed = table(policy(), [{ ...ACME, allow: ['127.0.0.2/32'] }, OPEN]);
    expect(cancel(narrowed)).toMatchObject({ kind: 'refuse', reason: 'cancel-unroutable' });
  });
});

describe('limit refusals', () => {
  it('53300 for each limit that is set, naming the tenant and the limit', () => {
    const r = limitRefusals('acme', { maxClientConnections: 3, maxConnectionRate: 0, maxClientConnectionRate: 5 });
    expect(r.connections).toMatchObject({ sqlstate: '53300', message: 'too many connections for tenant "acme" (at most 3 at once)' });
    expect(r.rate).toBeUndefined();
    expect(r.clientRate?.message).toContain('from this client address for tenant "acme" (at most 5 a second)');
  });
});
