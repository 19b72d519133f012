// mergeClaims validates typed claims through the shared field parsers (tenants.ts). Before, it
// lowered them to YAML-like values that buildSnapshot parsed again; that lowering is kept here as
// the oracle: over random claims (conflicts, bad values, too many targets), both give the same
// tenants, the same refusals in the same order, and the same `where` for each tenant.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { RefusedTenant } from '../../src/model.js';
import { mergeClaims, type Claim } from '../../src/sources/labels.js';
import { buildSnapshot, type RawTenant } from '../../src/tenants.js';

/** The merge as it was: claims -> raw values, to be validated by buildSnapshot. */
function lowered(claims: readonly Claim[], refusedAlready: readonly RefusedTenant[] = []): { raws: RawTenant[]; refused: RefusedTenant[] } {
  const sorted = [...claims].sort((a, b) => a.createdAt - b.createdAt || (a.where < b.where ? -1 : a.where > b.where ? 1 : 0));
  const refused: RefusedTenant[] = [...refusedAlready];
  const byTenant = new Map<string, { owner: string; targets: Map<string, Claim> }>();
  for (const c of sorted) {
    let t = byTenant.get(c.tenant);
    if (t === undefined) byTenant.set(c.tenant, (t = { owner: c.owner, targets: new Map() }));
    // Refusal reasons are compared by who is refused; their wording is mergeClaims' own.
    if (c.owner !== t.owner || t.targets.has(c.target)) {
      refused.push({ where: c.where, id: c.tenant, reason: 'conflict' });
      continue;
    }
    t.targets.set(c.target, c);
  }
  const raws: RawTenant[] = [];
  for (const [id, t] of [...byTenant.entries()].sort(([a], [b]) => (a < b ? -1 : 1))) {
    const primary = t.targets.get('primary');
    if (primary === undefined) {
      for (const c of t.targets.values()) refused.push({ where: c.where, id, reason: 'no primary' });
      continue;
    }
    const targets: Record<string, { host: string; port: unknown }> = {};
    let enabled: unknown = true;
    for (const [name, c] of t.targets) {
      if (c.enabled === false) enabled = false;
      else if (c.enabled !== undefined && c.enabled !== true && enabled !== false) enabled = c.enabled;
      if (name !== 'primary') targets[name] = { host: c.host, port: c.port };
    }
    const value: Record<string, unknown> = { id, host: primary.host, port: primary.port, enabled };
    if (Object.keys(targets).length > 0) value.targets = targets;
    if (primary.maxconn !== undefined) value.maxconn = primary.maxconn;
    raws.push({ where: primary.where, value });
  }
  return { raws, refused };
}

const claimArb: fc.Arbitrary<Claim> = fc.record({
  tenant: fc.constantFrom('acme', 'globex', 'constructor', 'Bad_Id', ''),
  target: fc.constantFrom('primary', 'primary', 'pool', 'replica', 'Pool', 't1', 't2', 't3', 't4', 't5', 't6', 't7', 't8'),
  host: fc.constantFrom('10.0.0.1', 'db.team-a.svc.cluster.local', 'fe80::1%eth0', 'bad host', ''),
  port: fc.constantFrom<unknown>(5432, 6432, 'http', 0, 70_000),
  enabled: fc.constantFrom<unknown>(undefined, true, false, 'yes'),
  maxconn: fc.constantFrom<unknown>(undefined, 10, 'x', 0),
  where: fc.integer({ min: 0, max: 30 }).map((i) => `kubernetes service ns/s${i}`),
  owner: fc.constantFrom('', 'team-a', 'team-b'),
  createdAt: fc.integer({ min: 0, max: 5 }),
}).map((c) => (c.maxconn === undefined ? (({ maxconn: _drop, ...rest }) => rest)(c) : c));

describe('mergeClaims', () => {
  it('validates typed claims exactly as buildSnapshot validated their lowered values', () => {
    fc.assert(
      fc.property(fc.array(claimArb, { maxLength: 14 }), (claims) => {
        const old = lowered(claims);
        const expected = buildSnapshot(old.raws, old.refused);
        const view = mergeClaims(claims);
        expect(view.snapshot.tenants).toEqual(expected.tenants);
        const who = (r: RefusedTenant): [string, string | undefined] => [r.where, r.id];
        expect(view.snapshot.refused.map(who)).toEqual(expected.refused.map(who));
        // Validation refusals (all but the merge's own) say the same.
        const validation = (rs: readonly RefusedTenant[]): RefusedTenant[] => rs.filter((r) => !/already served|belongs to|no primary target|^conflict$|^no primary$/.test(r.reason));
        expect(validation(view.snapshot.refused)).toEqual(validation(expected.refused));
        expect(view.where).toEqual(Object.fromEntries(old.raws.filter((r) => expected.tenants.some((t) => t.id === (r.value as { id: string }).id)).map((r) => [(r.value as { id: string }).id, r.where])));
      }),
      { numRuns: 2_000 },
    );
  });
});
