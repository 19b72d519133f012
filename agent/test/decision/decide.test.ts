import { describe, expect, it } from 'vitest';
import { CancelRateLimiter } from '../../src/decision/cancel-router.js';
import { CancelTableModel } from './cancel-table-model.js';
import { decide, INTERNAL_ERROR_MESSAGE } from '../../src/decision/decide.js';
import type { ConnectionFacts, RefuseVerdict, RouteTable, Verdict } from '../../src/decision/types.js';
import type { DecodedPreamble } from '../../src/pg/preamble-types.js';
import { RouteStore } from '../../src/routes-store.js';
import { decideConnection } from '../../src/server/decide-connection.js';
import { CANCEL, facts, policy, startup, table, tenant, TENANTS } from './fixtures.js';

const T = table();
const REVEAL = table(policy({ revealDisabled: true }));
const NOW = 1_700_000_000_000;

function run(t: RouteTable, preamble: DecodedPreamble, port = 5432, address = '203.0.113.7'): Verdict {
  return decideWith(new Cancels(), t, facts(preamble, port, address), NOW);
}

/** HAProxy's cancel records (a model) and the agent's token buckets. */
class Cancels {
  readonly table = new CancelTableModel();
  constructor(readonly rate = new CancelRateLimiter()) {}
}

/**
 * decideConnection() as HAProxy drives it: a CancelRequest comes with its address's record, and a
 * routed startup is recorded by HAProxy's rules after the verdict.
 */
function decideWith(cancels: Cancels, t: RouteTable, f: ConnectionFacts, now: number): Verdict {
  const withRecord = f.preamble?.kind === 'cancel' ? cancels.table.cancelFacts(f) : f;
  const v = decideConnection({ store: new RouteStore(t), cancelRate: cancels.rate, now: () => now }, withRecord);
  cancels.table.recordVerdict(f.clientAddress, v);
  return v;
}

function refused(v: Verdict): RefuseVerdict {
  expect(v.kind).toBe('refuse');
  if (v.kind !== 'refuse') throw new Error('routed');
  return v;
}

describe('decide: routes', () => {
  it.each([
    ['database names the tenant, default target', { user: 'bob', database: 'acme' }, 5432, 'acme', 'primary'],
    ['port picks the target', { user: 'bob', database: 'acme' }, 6432, 'acme', 'pool'],
    ['unmapped port: default target', { user: 'bob', database: 'acme' }, 9999, 'acme', 'primary'],
    ['pattern target wins over port', { user: 'app.acme.replica' }, 6432, 'acme', 'replica'],
    ['pattern without target: port', { user: 'app.globex' }, 6432, 'globex', 'pool'],
    ['options wins, port target', { user: 'app.acme.replica', database: 'acme', options: '-c pgroute.tenant=globex' }, 6432, 'globex', 'pool'],
    ['options, database is the real database', { user: 'u', database: 'appdb', options: '-c pgroute.tenant=umbrella' }, 5432, 'umbrella', 'primary'],
  ] as const)('%s', (_n, params, port, tenantId, target) => {
    expect(run(T, startup(params), port)).toEqual({
      kind: 'route',
      tenant: tenantId,
      target,
      backend: `be_${tenantId}_${target}`,
      cancel: false,
    });
  });
});

describe('decide: refusals', () => {
  const cases: Array<[string, RouteTable, DecodedPreamble, number, string, string, RegExp | string]> = [
    ['malformed', T, { kind: 'invalid', problem: 'too-long', message: 'startup packet is 12000 bytes, above the 10000-byte limit' }, 5432, 'malformed', '08P01', 'startup packet is 12000 bytes, above the 10000-byte limit'],
    ['ssl request', T, { kind: 'ssl-request' }, 5432, 'unexpected-negotiation', '08P01', /^unexpected SSL negotiation request: a client may send one as its first packet.*never inside TLS\)$/],
    ['gssenc request', T, { kind: 'gssenc-request' }, 5432, 'unexpected-negotiation', '08P01', /^unexpected GSSAPI encryption negotiation request/],
    ['no key (user only)', table(policy({ keys: ['user'] })), startup({ user: 'bob' }), 5432, 'no-key', '28000', 'the user name "bob" does not name a tenant; use a user name that includes your tenant id'],
    ['no key (options only)', table(policy({ keys: ['options'] })), startup({ user: 'app.acme' }), 5432, 'no-key', '28000', 'no tenant is named in the connection; name it with options=-c pgroute.tenant=<tenant>'],
    ['empty options value', T, startup({ user: 'app.acme', options: '-c pgroute.tenant=' }), 5432, 'no-key', '28000', /empty value/],
    ['conflicting keys', T, startup({ user: 'app.acme', database: 'globex' }), 5432, 'conflicting-keys', '28000', 'the connection names two different tenants: "acme" (user name) and "globex" (database name); name only one, or set it with options=-c pgroute.tenant=<tenant>'],
    ['unknown tenant (database)', T, startup({ user: 'bob', database: 'nosuch' }), 5432, 'unknown-tenant', '3D000', 'no tenant "nosuch" is served here; check the database name (or options=-c pgroute.tenant=...)'],
    ['unknown tenant (options)', T, startup({ user: 'bob', options: '-c pgroute.tenant=nosuch' }), 5432, 'unknown-tenant', '3D000', 'no tenant "nosuch" is served here; check the pgroute.tenant in options'],
    ['unknown tenant: case-sensitive', T, startup({ user: 'bob', database: 'ACME' }), 5432, 'unknown-tenant', '3D000', /^no tenant "ACME" is served here/],
    ['disabled tenant, hidden', T, startup({ user: 'bob', database: 'initech' }), 5432, 'disabled-tenant', '3D000', 'no tenant "initech" is served here; check the database name (or options=-c pgroute.tenant=...)'],
    ['disabled tenant, revealed', REVEAL, startup({ user: 'bob', database: 'initech' }), 5432, 'disabled-tenant', '57P03', 'tenant "initech" is disabled'],
    ['unknown target by port', T, startup({ user: 'bob', database: 'umbrella' }), 6432, 'unknown-target', '08004', 'tenant "umbrella" has no target "pool" (the target of port 6432)'],
    ['unknown target by pattern', T, startup({ user: 'app.globex.replica' }), 5432, 'unknown-target', '08004', 'tenant "globex" has no target "replica" (chosen by the user name)'],
    ['unknown target: prototype names are not targets', T, startup({ user: 'app.acme.constructor' }), 5432, 'unknown-target', '08004', /has no target "constructor"/],
    ['unknown default target', table(policy({ defaultTarget: 'gold' })), startup({ user: 'bob', database: 'acme' }), 5432, 'unknown-target', '08004', 'tenant "acme" has no target "gold" (the default target)'],
    ['cancel from an unknown address', T, CANCEL, 5432, 'cancel-unroutable', '08004', /^cancel request cannot be routed/],
    ['bad pattern: internal error', table(policy({ user: { mode: 'pattern', pattern: '[' } })), startup({ user: 'app.acme' }), 5432, 'internal-error', 'XX000', INTERNAL_ERROR_MESSAGE],
    ['unknown preamble kind', T, { kind: 'weird' } as unknown as DecodedPreamble, 5432, 'internal-error', 'XX000', INTERNAL_ERROR_MESSAGE],
  ];

  it.each(cases)('%s', (_n, t, preamble, port, reason, sqlstate, message) => {
    const v = refused(run(t, preamble, port));
    expect(v.reason).toBe(reason);
    expect(v.sqlstate).toBe(sqlstate);
    if (typeof message === 'string') expect(v.message).toBe(message);
    else expect(v.message).toMatch(message);
    expect(v.logDetail.length).toBeGreaterThan(0);
  });

  it('unknown and disabled tenants read byte-identical to the client; the log tells them apart', () => {
    // same input shape: the only difference is which table the tenant is in
    const asDisabled = refused(run(T, startup({ user: 'bob', database: 'initech' })));
    const asUnknown = refused(run(table(policy(), TENANTS.filter((t) => t.id !== 'initech')), startup({ user: 'bob', database: 'initech' })));
    expect(Buffer.from(asDisabled.message)).toEqual(Buffer.from(asUnknown.message));
    expect(asDisabled.sqlstate).toBe(asUnknown.sqlstate);
    expect(asDisabled.logDetail).toMatch(/disabled/);
    expect(asUnknown.logDetail).toMatch(/unknown/);
    expect(asUnknown.logDetail).not.toMatch(/disabled/);
    // the same holds for every source
    const variants: Array<Record<string, string>> = [{ user: 'app.initech' }, { user: 'x', options: '-c pgroute.tenant=initech' }];
    for (const params of variants) {
      const d = refused(run(T, startup(params)));
      const u = refused(run(table(policy(), TENANTS.filter((t) => t.id !== 'initech')), startup(params)));
      expect(d.message).toBe(u.message);
      expect(d.sqlstate).toBe(u.sqlstate);
      expect(d.reason).toBe('disabled-tenant');
      expect(u.reason).toBe('unknown-tenant');
    }
  });

  it('refusals carry the tenant only when it is one of the table', () => {
    expect(refused(run(T, startup({ user: 'bob', database: 'nosuch' }))).tenant).toBeUndefined();
    expect(refused(run(T, startup({ user: 'bob', database: 'initech' }))).tenant).toBe('initech');
    expect(refused(run(T, startup({ user: 'bob', database: 'umbrella' }), 6432)).tenant).toBe('umbrella');
  });

  it('echoed values are quoted, truncated and escaped', () => {
    const long = 'x'.repeat(200);
    const v1 = refused(run(T, startup({ user: 'bob', database: long })));
    expect(v1.message).toContain(`"${'x'.repeat(63)}..."`);
    expect(v1.message).not.toContain('x'.repeat(64));
    const v2 = refused(run(T, startup({ user: 'bob', database: 'a\u001b[2J"\\\nb\u202e' })));
    expect(v2.message).toContain('"a\\x1b[2J\\"\\\\\\x0ab\\u202e"');
    expect(v2.message).not.toMatch(/[\u0000-\u001f\u007f\u202e]/);
    expect(v2.logDetail).not.toMatch(/[\u0000-\u001f\u007f\u202e]/);
  });

  it('the malformed message has controls escaped', () => {
    const v = refused(run(T, { kind: 'invalid', problem: 'invalid-encoding', message: 'bad\u0000byte' }));
    expect(v.message).toBe('bad\\x00byte');
  });

  it('never throws, even on broken input', () => {
    const broken: unknown[] = [
      null,
      {},
      { preamble: null },
      { preamble: { kind: 'startup', params: null }, clientAddress: 'a', frontendPort: 1 },
    ];
    for (const f of broken) {
      const v = decide(T, f as never);
      expect(refused(v).reason).toBe('internal-error');
    }
    // a missing address only means the route cannot be remembered for cancels
    const noAddress = { preamble: startup({ user: 'bob', database: 'acme' }), clientAddress: null, frontendPort: 1 };
    expect(decide(T, noAddress as never)).toMatchObject({ kind: 'route', tenant: 'acme' });
    expect(refused(decideWith(new Cancels(), T, { ...noAddress, preamble: CANCEL } as never, NOW)).reason).toBe('cancel-unroutable');
    const v = decide(null as never, facts(startup({ user: 'a' })));
    expect(refused(v).reason).toBe('internal-error');
    const throwing = (): string => {
      throw new Error('boom');
    };
    const w = decide(T, facts(startup({ user: 'a', options: 'x' })), undefined, throwing);
    expect(refused(w)).toMatchObject({ reason: 'internal-error', sqlstate: 'XX000', message: INTERNAL_ERROR_MESSAGE });
    expect(refused(w).logDetail).toMatch(/boom/);
  });
});

describe('decide: cancels', () => {
  it('decide() needs the cancel records read for it; decideConnection() without a record refuses', () => {
    expect(refused(decide(T, facts(CANCEL, 5432, '198.51.100.9'))).reason).toBe('internal-error');
    const ctx = { store: new RouteStore(T), cancelRate: new CancelRateLimiter(), now: () => NOW };
    // A cancel in the startup message (an HAProxy configuration older than this agent): no record.
    expect(refused(decideConnection(ctx, facts(CANCEL, 5432, '198.51.100.9'))).logDetail).toMatch(/regenerate the HAProxy configuration/);
  });

  it('routes a cancel to every backend the address was routed to, most recent first', () => {
    const cancels = new Cancels();
    const addr = '198.51.100.1';
    expect(decideWith(cancels, T, facts(startup({ user: 'app.acme' }), 6432, addr), NOW).kind).toBe('route');
    expect(decideWith(cancels, T, facts(startup({ user: 'app.globex' }), 5432, addr), NOW + 1000).kind).toBe('route');
    expect(decideWith(cancels, T, facts(CANCEL, 5432, addr), NOW + 2000)).toEqual({
      kind: 'route',
      tenant: 'globex',
      target: 'primary',
      backend: 'be_globex_primary',
      cancel: true,
      copies: ['be_acme_pool'],
    });
    expect(refused(decideWith(cancels, T, facts(CANCEL, 5432, '198.51.100.2'), NOW + 2000)).reason).toBe('cancel-unroutable');
  });

  it('a single destination has no copies; a repeated one is recorded once', () => {
    const cancels = new Cancels();
    const addr = '198.51.100.3';
    for (let i = 0; i < 3; i++) decideWith(cancels, T, facts(startup({ user: 'app.acme' }), 5432, addr), NOW);
    expect(decideWith(cancels, T, facts(CANCEL, 5432, addr), NOW)).toEqual({ kind: 'route', tenant: 'acme', target: 'primary', backend: 'be_acme_primary', cancel: true });
  });

  it('refused startups are not recorded', () => {
    const cancels = new Cancels();
    decideWith(cancels, T, facts(startup({ user: 'bob', database: 'initech' }), 5432, '192.0.2.9'), NOW);
    expect(refused(decideWith(cancels, T, facts(CANCEL, 5432, '192.0.2.9'), NOW)).reason).toBe('cancel-unroutable');
  });

  it('skips recorded targets the current table no longer has', () => {
    const cancels = new Cancels();
    const addr = '192.0.2.10';
    decideWith(cancels, T, facts(startup({ user: 'app.acme' }), 5432, addr), NOW);
    decideWith(cancels, T, facts(startup({ user: 'app.globex' }), 5432, addr), NOW + 1);
    const withoutGlobex = table(policy(), TENANTS.filter((t) => t.id !== 'globex'));
    expect(decideWith(cancels, withoutGlobex, facts(CANCEL, 5432, addr), NOW + 2)).toEqual({ kind: 'route', tenant: 'acme', target: 'primary', backend: 'be_acme_primary', cancel: true });
    const renamed = table(policy(), [tenant('acme', true, ['pool'])]);
    expect(refused(decideWith(cancels, renamed, facts(CANCEL, 5432, addr), NOW + 3)).reason).toBe('cancel-unroutable');
  });

  it('a disabled tenant still gets its sessions cancelled', () => {
    const cancels = new Cancels();
    const addr = '192.0.2.11';
    decideWith(cancels, T, facts(startup({ user: 'app.acme' }), 5432, addr), NOW);
    const disabled = table(policy(), [tenant('acme', false, ['primary', 'pool', 'replica'])]);
    expect(decideWith(cancels, disabled, facts(CANCEL, 5432, addr), NOW + 1)).toMatchObject({ kind: 'route', backend: 'be_acme_primary' });
  });

  it('rate-limits cancels per address', () => {
    const cancels = new Cancels(new CancelRateLimiter({ cancelBurst: 2, cancelRefillPerSecond: 1 }));
    const addr = '192.0.2.12';
    decideWith(cancels, T, facts(startup({ user: 'app.acme' }), 5432, addr), NOW);
    expect(decideWith(cancels, T, facts(CANCEL, 5432, addr), NOW).kind).toBe('route');
    expect(decideWith(cancels, T, facts(CANCEL, 5432, addr), NOW).kind).toBe('route');
    const v = refused(decideWith(cancels, T, facts(CANCEL, 5432, addr), NOW));
    expect(v).toMatchObject({ reason: 'cancel-rate-limited', sqlstate: '53300' });
    expect(decideWith(cancels, T, facts(CANCEL, 5432, addr), NOW + 1000).kind).toBe('route');
  });
});
