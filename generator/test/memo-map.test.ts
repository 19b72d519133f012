// The verdict memo's map (generator/src/memo/memo-map.ts): which targets may be routed from memory,
// with exactly the variables the agent sets (its sync: map-sync.test.ts).

import { describe, expect, it } from 'vitest';
import { cancelId, ROUTE_FIELDS, verdictActions, type RouteTableDocument, type TenantRoute } from '../../agent/src/index.js';
import { memoEntries, memoKey, memoMapFile, notMemoizable } from '../src/memo/memo-map.js';

const POLICY = { keys: ['options', 'database'], targetByPort: {}, defaultTarget: 'primary', revealDisabled: false } as const;
const LIMITS = { maxClientConnections: 1024, maxConnectionRate: 1000, maxClientConnectionRate: 0 };

function table(tenants: readonly TenantRoute[], policy: object = POLICY): RouteTableDocument {
  return { version: 'v', policy: policy as RouteTableDocument['policy'], tenants };
}

const acme: TenantRoute = { id: 'acme', enabled: true, backends: { primary: 'pg.acme.primary', pool: 'pg.spare.3' }, limits: LIMITS };

describe('memoEntries', () => {
  it("holds every target of an enabled tenant, keyed by its cancel id, valued with the agent's own variables", () => {
    const entries = memoEntries(table([acme]));
    expect([...entries.keys()].sort()).toEqual([memoKey('acme', 'pool'), memoKey('acme', 'primary')].sort());
    const [a, b] = cancelId('acme', 'primary');
    const key = memoKey('acme', 'primary');
    expect(key).toBe(`${a}:${b}`);
    const value = entries.get(key) ?? '';
    // Split as HAProxy splits it (route-split.hbs): the route and the tenant's limits.
    expect(new Map(value.split('|').map((f, i) => [ROUTE_FIELDS[i], f]))).toEqual(
      new Map([['be', 'pg.acme.primary'], ['t', 'acme'], ['tgt', 'primary'], ['mc', '1024'], ['mr', '1000']]),
    );
    // These are the SET-VARs the agent sends for this route, no more, no less: its route variable,
    // and the cancel id, which is the key itself (a hit sets ca, cb from its memo entry: memo-lookup.hbs).
    const sent = verdictActions({ kind: 'route', tenant: 'acme', target: 'primary', backend: 'pg.acme.primary', cancel: false, limits: LIMITS });
    expect(new Map(sent.map((x) => [x.name.toString(), x.value]))).toEqual(new Map([['r', value], ['ca', String(a)], ['cb', String(b)]]));
  });

  it('leaves the limit fields out for a route without limits (HAProxy then counts nothing, as with the agent)', () => {
    const entries = memoEntries(table([{ id: 'a', enabled: true, backends: { primary: 'pg.a.primary' } }]));
    expect([...entries]).toEqual([[memoKey('a', 'primary'), 'pg.a.primary|a|primary']]);
  });

  it('leaves out what the client address, a per-address rate or an unknown field decides', () => {
    const out = [
      { ...acme, id: 'off', enabled: false },
      { ...acme, id: 'nets', allow: ['10.0.0.0/8'] },
      { ...acme, id: 'rate', limits: { ...LIMITS, maxClientConnectionRate: 5 } },
      { ...acme, id: 'paused', paused: true } as TenantRoute,
      { ...acme, id: 'odd', limits: { ...LIMITS, burst: 3 } as never },
    ];
    for (const t of out) expect(notMemoizable(t), t.id).toBeDefined();
    expect(memoEntries(table(out)).size).toBe(0);
    expect(notMemoizable(acme)).toBeUndefined();
  });

  it('a target being added (pending: no backend yet) gets no entry; the tenant keeps those of its routed targets', () => {
    const adding: TenantRoute = { ...acme, pending: ['replica'] };
    expect(notMemoizable(adding)).toBeUndefined();
    expect([...memoEntries(table([adding])).keys()].sort()).toEqual([memoKey('acme', 'pool'), memoKey('acme', 'primary')].sort());
    expect(memoEntries(table([{ id: 'new', enabled: true, backends: {}, pending: ['primary'] }])).size).toBe(0);
  });

  it('memoizes nothing under a policy field it does not know', () => {
    expect(memoEntries(table([acme], { ...POLICY, holdAll: true })).size).toBe(0);
  });

  it('renders a map file HAProxy reads as "key value" lines', () => {
    const text = memoMapFile(memoEntries(table([acme])));
    const lines = text.trim().split('\n').filter((l) => !l.startsWith('#'));
    expect(lines).toHaveLength(2); // two targets
    for (const l of lines) expect(l).toMatch(/^\d+:\d+ [A-Za-z0-9.|_-]+$/);
  });
});
