// TLS in the decision: the server name (SNI) as a tenant key, refused when it disagrees with the
// startup packet, and ports where clear text is refused.

import { describe, expect, it } from 'vitest';
import { CancelRateLimiter } from '../../src/decision/cancel-router.js';
import { decide } from '../../src/decision/decide.js';
import { RouteStore } from '../../src/routes-store.js';
import { decideConnection } from '../../src/server/decide-connection.js';
import type { ConnectionFacts, Verdict } from '../../src/decision/types.js';
import { CANCEL, facts, policy, startup, table } from './fixtures.js';

const SNI = '^(?<tenant>[a-z0-9-]+?)(?:-(?<target>pool|replica))?\\.db\\.example\\.com$';
const sniTable = table(policy({ keys: ['options'], sni: { pattern: SNI } }));

function over(f: ConnectionFacts, extra: Partial<ConnectionFacts>): ConnectionFacts {
  return { ...f, ...extra };
}

function run(f: ConnectionFacts, t = sniTable): Verdict {
  return decide(t, f);
}

describe('server name (SNI) as the tenant key', () => {
  it('names the tenant (case-insensitively) when the startup packet names none', () => {
    const v = run(over(facts(startup({ user: 'app', database: 'anything' })), { tls: true, sni: 'ACME.db.example.com' }));
    expect(v).toMatchObject({ kind: 'route', tenant: 'acme', target: 'primary' });
  });

  it('its target group chooses the target', () => {
    const v = run(over(facts(startup({ user: 'app', database: 'x' })), { tls: true, sni: 'acme-pool.db.example.com' }));
    expect(v).toMatchObject({ kind: 'route', tenant: 'acme', target: 'pool' });
  });

  it('agrees with options=-c pgroute.tenant=<same>', () => {
    const v = run(over(facts(startup({ user: 'app', database: 'x', options: '-c pgroute.tenant=acme' })), { tls: true, sni: 'acme.db.example.com' }));
    expect(v).toMatchObject({ kind: 'route', tenant: 'acme' });
  });

  it('a startup key that disagrees is refused (28000), naming both values the client sent', () => {
    const v = run(over(facts(startup({ user: 'app', database: 'x', options: '-c pgroute.tenant=globex' })), { tls: true, sni: 'acme.db.example.com' }));
    expect(v).toMatchObject({ kind: 'refuse', reason: 'conflicting-keys', sqlstate: '28000' });
    expect(v.kind === 'refuse' && v.message).toContain('"acme.db.example.com"');
    expect(v.kind === 'refuse' && v.message).toContain('"globex"');
  });

  it('a server name that does not match the pattern names nothing, and the refusal says so', () => {
    const v = run(over(facts(startup({ user: 'app', database: 'x' })), { tls: true, sni: 'acme.other.example.com' }));
    expect(v).toMatchObject({ kind: 'refuse', reason: 'no-key' });
    expect(v.kind === 'refuse' && v.message).toMatch(/^the TLS server name "acme\.other\.example\.com" does not name a tenant here; /);
  });

  it('a client that sent no server name is told the tenant is chosen by it', () => {
    for (const f of [over(facts(startup({ user: 'app', database: 'x' })), { tls: true }), facts(startup({ user: 'app', database: 'x' }))]) {
      const v = run(f);
      expect(v).toMatchObject({ kind: 'refuse', reason: 'no-key', sqlstate: '28000' });
      expect(v.kind === 'refuse' && v.message).toMatch(/^the tenant is chosen by the TLS server name \(SNI\) and this client sent none: connect with sslmode=require/);
    }
  });

  it('patterns are compiled with the u flag, as the generator checks them: "." is one code point', () => {
    const emoji = table(policy({ keys: ['options'], sni: { pattern: '^(?<tenant>[a-z]+)-.\\.db\\.example\\.com$' } }));
    // Server names are ASCII on the wire, but the pattern's flags are the policy's, whatever the input.
    const v = run(over(facts(startup({ user: 'app', database: 'x' })), { tls: true, sni: 'acme-\u{1F600}.db.example.com' }), emoji);
    expect(v).toMatchObject({ kind: 'route', tenant: 'acme' });
  });

  it('without an sni policy the server name is ignored', () => {
    const v = run(over(facts(startup({ user: 'app', database: 'acme' })), { tls: true, sni: 'globex.db.example.com' }), table());
    expect(v).toMatchObject({ kind: 'route', tenant: 'acme' });
  });
});

describe('TLS-required ports', () => {
  const required = table(policy({ tlsRequiredPorts: [5433] }));

  it('refuse clear text with 28000 and say how to connect', () => {
    const v = run(facts(startup({ user: 'app', database: 'acme' }), 5433), required);
    expect(v).toMatchObject({ kind: 'refuse', reason: 'tls-required', sqlstate: '28000' });
    expect(v.kind === 'refuse' && v.message).toContain('sslmode=require');
  });

  it('route TLS connections, and clear text on other ports', () => {
    expect(run(over(facts(startup({ user: 'app', database: 'acme' }), 5433), { tls: true }), required)).toMatchObject({ kind: 'route' });
    expect(run(facts(startup({ user: 'app', database: 'acme' }), 5432), required)).toMatchObject({ kind: 'route' });
  });

  it('a clear-text refusal names no tenant', () => {
    const v = run(facts(startup({ user: 'app', database: 'nosuch' }), 5433), required);
    expect(v.kind === 'refuse' && v.message).not.toContain('nosuch');
  });

  it('cancels are not refused (libpq before 17 always sends them in clear text)', () => {
    const v = decideConnection({ store: new RouteStore(required), cancelRate: new CancelRateLimiter(), now: () => 0 }, facts(CANCEL, 5433));
    expect(v).toMatchObject({ reason: 'cancel-unroutable' });
  });
});
