// planChange: runtime operations when the set of backends can stay, a reload (with reasons) when it
// cannot; and the interim layout the agent routes with while the plan is being applied.

import { describe, expect, it } from 'vitest';
import { desiredOccupants, EMPTY_LAYOUT, layoutForReload, routedBackends, targetKey, type Layout, type Occupant } from '../src/layout.js';
import type { Endpoint, Tenant } from '../src/model.js';
import { planChange, type PlanOptions } from '../src/plan.js';

function tenant(id: string, host: string, port = 5432, extra: Record<string, Endpoint> = {}, maxconn?: number): Tenant {
  const targets = { primary: { host, port }, ...extra };
  return maxconn === undefined ? { id, enabled: true, targets } : { id, enabled: true, targets, maxconn };
}
const wantedOf = (...tenants: Tenant[]): Map<string, Occupant> => desiredOccupants(tenants);
const opts = (now: number, extra: Partial<PlanOptions> = {}): PlanOptions => ({ now, spares: 2, restMs: 10_000, forcedReload: [], ...extra });

/** What each backend holds, compactly: name -> 'tenant/target' | 'free' | 'resting:tenant/target@until'. */
function states(l: Layout): Record<string, string> {
  return Object.fromEntries(
    l.backends.map((b) => [
      b.name,
      b.state.kind === 'occupied'
        ? `${b.state.occupant.tenant}/${b.state.occupant.target}`
        : b.state.kind === 'free'
          ? 'free'
          : `resting:${b.state.was.tenant}/${b.state.was.target}@${b.state.until}`,
    ]),
  );
}

const ACME = tenant('acme', '10.0.0.1');
const BETA = tenant('beta', '10.0.0.2');
/** acme and beta placed at the first load, two free spares. */
const BASE = layoutForReload(EMPTY_LAYOUT, wantedOf(ACME, BETA), 2);

describe('planChange: runtime operations', () => {
  it('nothing changed: no operations, no reload, the same layout', () => {
    const plan = planChange(BASE, wantedOf(ACME, BETA), opts(0));
    expect(plan.ops).toEqual([]);
    expect(plan.reloadReasons).toEqual([]);
    expect(plan.layout).toEqual(BASE);
    expect(plan.interim).toEqual(BASE);
  });

  it('an addition takes the lowest free spare with a place operation; the interim does not route it yet', () => {
    const gamma = tenant('gamma', '10.0.0.3', 5433, {}, 7);
    const plan = planChange(BASE, wantedOf(ACME, BETA, gamma), opts(0));
    expect(plan.reloadReasons).toEqual([]);
    expect(plan.ops).toEqual([{ kind: 'place', backend: 'pg.spare.0', occupant: { tenant: 'gamma', target: 'primary', endpoint: { host: '10.0.0.3', port: 5433 }, maxconn: 7 } }]);
    expect(states(plan.layout)).toEqual({ 'pg.acme.primary': 'acme/primary', 'pg.beta.primary': 'beta/primary', 'pg.spare.0': 'gamma/primary', 'pg.spare.1': 'free' });
    expect(plan.layout.backends.find((b) => b.name === 'pg.spare.0')?.spare).toBe(true);
    expect(plan.layout.nextSpare).toBe(BASE.nextSpare);
    expect(routedBackends(plan.interim).has('gamma')).toBe(false);
    expect(plan.interim).toEqual(BASE);
  });

  it('two additions take the spares in order', () => {
    const plan = planChange(BASE, wantedOf(ACME, BETA, tenant('gamma', '10.0.0.3'), tenant('delta', '10.0.0.4')), opts(0));
    expect(plan.ops.map((o) => [o.kind, o.backend])).toEqual([
      ['place', 'pg.spare.0'],
      ['place', 'pg.spare.1'],
    ]);
  });

  it('a removal parks the backend and rests it for restMs; the interim already forgets it', () => {
    const plan = planChange(BASE, wantedOf(ACME), opts(1_000));
    expect(plan.reloadReasons).toEqual([]);
    expect(plan.ops).toEqual([{ kind: 'park', backend: 'pg.beta.primary' }]);
    expect(states(plan.layout)['pg.beta.primary']).toBe('resting:beta/primary@11000');
    expect(states(plan.interim)['pg.beta.primary']).toBe('resting:beta/primary@11000');
    expect([...routedBackends(plan.interim).keys()]).toEqual(['acme']);
  });

  it('a resting spare is not reused before `until`, then becomes free and is taken', () => {
    const withGamma = planChange(BASE, wantedOf(ACME, BETA, tenant('gamma', '10.0.0.3')), opts(0, { spares: 1 })).layout;
    // One spare in all (the layout has 2; take the second too so gamma's is the only candidate).
    const full = planChange(withGamma, wantedOf(ACME, BETA, tenant('gamma', '10.0.0.3'), tenant('delta', '10.0.0.4')), opts(0)).layout;
    expect(states(full)['pg.spare.1']).toBe('delta/primary');
    const vacated = planChange(full, wantedOf(ACME, BETA, tenant('delta', '10.0.0.4')), opts(1_000));
    expect(vacated.ops).toEqual([{ kind: 'park', backend: 'pg.spare.0' }]);

    const early = planChange(vacated.layout, wantedOf(ACME, BETA, tenant('delta', '10.0.0.4'), tenant('eps', '10.0.0.5')), opts(10_999));
    expect(early.ops).toEqual([]);
    expect(early.reloadReasons).toHaveLength(1);
    expect(early.reloadReasons[0]).toMatch(/^1 new target\(s\) .*no free spare backend.*\(eps\/primary\)$/);

    const onTime = planChange(vacated.layout, wantedOf(ACME, BETA, tenant('delta', '10.0.0.4'), tenant('eps', '10.0.0.5')), opts(11_000));
    expect(onTime.reloadReasons).toEqual([]);
    expect(onTime.ops).toEqual([{ kind: 'place', backend: 'pg.spare.0', occupant: { tenant: 'eps', target: 'primary', endpoint: { host: '10.0.0.5', port: 5432 } } }]);

    // Once rested, with nobody wanting it, it is simply free again.
    const rested = planChange(vacated.layout, wantedOf(ACME, BETA, tenant('delta', '10.0.0.4')), opts(20_000));
    expect(rested.ops).toEqual([]);
    expect(states(rested.layout)['pg.spare.0']).toBe('free');
    // ...but the interim never routes to it.
    expect(routedBackends(rested.interim).has('gamma')).toBe(false);
  });

  it('the same target coming back retakes its resting backend, even before `until`', () => {
    const gone = planChange(BASE, wantedOf(ACME), opts(0)).layout;
    const back = planChange(gone, wantedOf(ACME, tenant('beta', '10.0.0.9', 6000)), opts(10));
    expect(back.reloadReasons).toEqual([]);
    expect(back.ops).toEqual([{ kind: 'place', backend: 'pg.beta.primary', occupant: { tenant: 'beta', target: 'primary', endpoint: { host: '10.0.0.9', port: 6000 } } }]);
    expect(states(back.layout)).toEqual({ 'pg.acme.primary': 'acme/primary', 'pg.beta.primary': 'beta/primary', 'pg.spare.0': 'free', 'pg.spare.1': 'free' });
  });

  it('a resting spare is retaken by its own target rather than a free spare', () => {
    const withGamma = planChange(BASE, wantedOf(ACME, BETA, tenant('gamma', '10.0.0.3')), opts(0)).layout;
    const gone = planChange(withGamma, wantedOf(ACME, BETA), opts(0)).layout;
    const back = planChange(gone, wantedOf(ACME, BETA, tenant('gamma', '10.0.0.3')), opts(5));
    expect(back.ops.map((o) => [o.kind, o.backend])).toEqual([['place', 'pg.spare.0']]);
  });

  it('a new address is a move; a new maxconn a limit; both together are both', () => {
    const moved = planChange(BASE, wantedOf(ACME, tenant('beta', '10.0.0.20', 5440)), opts(0));
    expect(moved.ops).toEqual([{ kind: 'move', backend: 'pg.beta.primary', occupant: { tenant: 'beta', target: 'primary', endpoint: { host: '10.0.0.20', port: 5440 } } }]);
    expect(moved.reloadReasons).toEqual([]);
    expect(moved.layout.backends.find((b) => b.name === 'pg.beta.primary')?.state).toEqual({ kind: 'occupied', occupant: { tenant: 'beta', target: 'primary', endpoint: { host: '10.0.0.20', port: 5440 } } });
    // The moving tenant stays routable during the move (same tenant, same backend).
    expect(routedBackends(moved.interim).get('beta')).toEqual({ primary: 'pg.beta.primary' });

    const portOnly = planChange(BASE, wantedOf(ACME, tenant('beta', '10.0.0.2', 5999)), opts(0));
    expect(portOnly.ops.map((o) => o.kind)).toEqual(['move']);

    const limited = planChange(BASE, wantedOf(ACME, tenant('beta', '10.0.0.2', 5432, {}, 30)), opts(0));
    expect(limited.ops).toEqual([{ kind: 'limit', backend: 'pg.beta.primary', maxconn: 30 }]);

    const both = planChange(BASE, wantedOf(ACME, tenant('beta', '10.0.0.3', 5432, {}, 30)), opts(0));
    expect(both.ops.map((o) => o.kind)).toEqual(['move', 'limit']);

    // Dropping the limit sets it back to 0 (no limit).
    const unlimited = planChange(limited.layout, wantedOf(ACME, BETA), opts(0));
    expect(unlimited.ops).toEqual([{ kind: 'limit', backend: 'pg.beta.primary', maxconn: 0 }]);
  });

  it('an extra target of an existing tenant is an addition into a spare', () => {
    const plan = planChange(BASE, wantedOf(tenant('acme', '10.0.0.1', 5432, { pool: { host: '10.0.0.1', port: 6432 } }), BETA), opts(0));
    expect(plan.ops).toEqual([{ kind: 'place', backend: 'pg.spare.0', occupant: { tenant: 'acme', target: 'pool', endpoint: { host: '10.0.0.1', port: 6432 } } }]);
  });

  it('a swap (one leaves, one arrives) parks first, then places; the newcomer never takes the vacated backend', () => {
    const plan = planChange(BASE, wantedOf(ACME, tenant('gamma', '10.0.0.3')), opts(0));
    expect(plan.ops.map((o) => [o.kind, o.backend])).toEqual([
      ['park', 'pg.beta.primary'],
      ['place', 'pg.spare.0'],
    ]);
    expect([...routedBackends(plan.interim).keys()]).toEqual(['acme']);
  });
});

describe('planChange: reloads', () => {
  it('no free spare: a reload with a reason naming the targets; layoutForReload keeps the names', () => {
    const tight = layoutForReload(EMPTY_LAYOUT, wantedOf(ACME, BETA), 0);
    const wanted = wantedOf(ACME, tenant('beta', '10.0.0.22'), tenant('gamma', '10.0.0.3'));
    const plan = planChange(tight, wanted, opts(0, { spares: 1 }));
    expect(plan.ops).toEqual([]);
    expect(plan.reloadReasons).toHaveLength(1);
    expect(plan.reloadReasons[0]).toMatch(/^1 new target\(s\) .*no free spare backend.*\(gamma\/primary\)$/);
    expect(plan.layout).toEqual(layoutForReload(tight, wanted, 1));
    expect(states(plan.layout)).toEqual({ 'pg.acme.primary': 'acme/primary', 'pg.beta.primary': 'beta/primary', 'pg.gamma.primary': 'gamma/primary', 'pg.spare.0': 'free' });
  });

  it('more than three unplaced targets are summarised', () => {
    const tight = layoutForReload(EMPTY_LAYOUT, new Map(), 0);
    const plan = planChange(tight, wantedOf(tenant('a', '10.0.0.1'), tenant('b', '10.0.0.1'), tenant('c', '10.0.0.1'), tenant('d', '10.0.0.1')), opts(0));
    expect(plan.reloadReasons).toHaveLength(1);
    expect(plan.reloadReasons[0]).toMatch(/^4 new target\(s\) .*no free spare backend.*\(a\/primary, b\/primary, c\/primary, \.\.\.\)$/);
  });

  it('forced reasons pass through, before the spare reason, even when the runtime could have done it', () => {
    const plan = planChange(BASE, wantedOf(ACME, BETA, tenant('gamma', '10.0.0.3')), opts(0, { forcedReload: ['listeners changed'] }));
    expect(plan.reloadReasons).toEqual(['listeners changed']);
    expect(plan.ops).toEqual([]);
    // Reload placement: readable name, spares kept.
    expect(states(plan.layout)).toEqual({ 'pg.acme.primary': 'acme/primary', 'pg.beta.primary': 'beta/primary', 'pg.gamma.primary': 'gamma/primary', 'pg.spare.0': 'free', 'pg.spare.1': 'free' });

    const tight = layoutForReload(EMPTY_LAYOUT, wantedOf(ACME), 0);
    const both = planChange(tight, wantedOf(ACME, BETA), opts(0, { forcedReload: ['first start', 'x'] }));
    expect(both.reloadReasons.slice(0, 2)).toEqual(['first start', 'x']);
    expect(both.reloadReasons).toHaveLength(3);
    expect(both.reloadReasons[2]).toMatch(/no free spare backend.*\(beta\/primary\)$/);
  });

  it('a reload keeps every surviving name (runtime-placed spares too) and tops up spares with new indices', () => {
    // gamma into pg.spare.0, delta into pg.spare.1 (no spare left), beta leaves, then eps needs a reload.
    const l1 = planChange(BASE, wantedOf(ACME, BETA, tenant('gamma', '10.0.0.3'), tenant('delta', '10.0.0.4')), opts(0)).layout;
    const l2 = planChange(l1, wantedOf(ACME, tenant('gamma', '10.0.0.3'), tenant('delta', '10.0.0.4')), opts(0)).layout;
    const wanted = wantedOf(ACME, tenant('gamma', '10.0.0.33'), tenant('delta', '10.0.0.4'), tenant('eps', '10.0.0.5'));
    const plan = planChange(l2, wanted, opts(1));
    expect(plan.reloadReasons).toHaveLength(1);
    expect(states(plan.layout)).toEqual({
      'pg.acme.primary': 'acme/primary',
      'pg.spare.0': 'gamma/primary',
      'pg.spare.1': 'delta/primary',
      'pg.eps.primary': 'eps/primary',
      'pg.spare.2': 'free',
      'pg.spare.3': 'free',
    });
    expect(plan.layout.nextSpare).toBe(4);
    // The resting pg.beta.primary is dropped by the reload, and the interim does not route beta.
    expect(routedBackends(plan.interim).has('beta')).toBe(false);
    // The reload layout carries the new address of gamma.
    const g = plan.layout.backends.find((b) => b.name === 'pg.spare.0');
    expect(g?.state.kind === 'occupied' && g.state.occupant.endpoint.host).toBe('10.0.0.33');
  });

  it('the interim of a reload plan is the current layout minus what is vacated, and never the new placements', () => {
    const tight = layoutForReload(EMPTY_LAYOUT, wantedOf(ACME, BETA), 0);
    const plan = planChange(tight, wantedOf(ACME, tenant('gamma', '10.0.0.3')), opts(0));
    expect(plan.reloadReasons).not.toEqual([]);
    expect(routedBackends(plan.interim)).toEqual(new Map([['acme', { primary: 'pg.acme.primary' }]]));
    expect(routedBackends(plan.layout)).toEqual(new Map([['acme', { primary: 'pg.acme.primary' }], ['gamma', { primary: 'pg.gamma.primary' }]]));
    // The newcomer's backend, found by its (tenant, target) key, is the readable one the reload creates.
    const gamma = plan.layout.backends.find((b) => b.state.kind === 'occupied' && targetKey(b.state.occupant.tenant, b.state.occupant.target) === targetKey('gamma', 'primary'));
    expect(gamma?.name).toBe('pg.gamma.primary');
    expect(targetKey('gamma', 'primary')).toBe('gamma\0primary');
  });
});

describe('planChange: targets that only a reload can shape (members, checks, queue limits)', () => {
  const cluster = (id: string): Tenant => ({
    id,
    enabled: true,
    targets: { primary: { host: '10.0.0.1', port: 5432, members: [{ host: '10.0.0.1', port: 5432 }, { host: '10.0.0.2', port: 5432 }], check: { kind: 'patroni', port: 8008, path: '/primary' } } },
  });

  it('a new cluster target never goes into a spare: reload', () => {
    const plan = planChange(BASE, wantedOf(ACME, BETA, cluster('gamma')), opts(0));
    expect(plan.ops).toEqual([]);
    expect(plan.reloadReasons).toHaveLength(1);
    expect(plan.reloadReasons[0]).toMatch(/gamma\/primary/);
  });

  it('a changed member list, check or queue limit is a reload', () => {
    const withCluster = layoutForReload(EMPTY_LAYOUT, wantedOf(cluster('acme')), 1);
    const plan = planChange(withCluster, wantedOf(ACME), opts(0));
    expect(plan.ops).toEqual([]);
    expect(plan.reloadReasons).toHaveLength(1);
    expect(plan.reloadReasons[0]).toMatch(/acme\/primary/);
    const queued = planChange(BASE, wantedOf({ ...ACME, maxqueue: 3 }, BETA), opts(0));
    expect(queued.reloadReasons).toHaveLength(1);
  });

  it('a vacated cluster backend is not retaken at runtime by its target coming back as one server (bug fix)', () => {
    // HAProxy has pg.acme.primary with servers s1 and s2 and a Patroni check; a runtime placement
    // would only set s1, leaving s2 and the check of the cluster in place.
    const withCluster = layoutForReload(EMPTY_LAYOUT, wantedOf(cluster('acme')), 1);
    const gone = planChange(withCluster, new Map(), opts(0));
    // Parked whole: both members go to maintenance, not only s1.
    expect(gone.ops).toEqual([{ kind: 'park', backend: 'pg.acme.primary', servers: 2 }]);
    const back = planChange(gone.layout, wantedOf(ACME), opts(1));
    expect(back.ops).toEqual([{ kind: 'place', backend: 'pg.spare.0', occupant: { tenant: 'acme', target: 'primary', endpoint: { host: '10.0.0.1', port: 5432 } } }]);
  });

  it('a vacated cluster backend under a spare name never becomes a free spare again (bug fix)', () => {
    // gamma took pg.spare.0 at runtime, became a cluster at a reload (keeping its name), then left.
    const l1 = planChange(BASE, wantedOf(ACME, BETA, tenant('gamma', '10.0.0.3')), opts(0)).layout;
    const l2 = planChange(l1, wantedOf(ACME, BETA, cluster('gamma')), opts(0));
    expect(l2.reloadReasons).not.toEqual([]);
    expect(l2.layout.backends.find((b) => b.name === 'pg.spare.0')?.state.kind).toBe('occupied');
    const l3 = planChange(l2.layout, wantedOf(ACME, BETA), opts(0)).layout;
    // Long after the rest, a newcomer takes a plain spare, never the former cluster backend.
    const later = planChange(l3, wantedOf(ACME, BETA, tenant('delta', '10.0.0.4')), opts(1_000_000));
    expect(later.ops.map((o) => [o.kind, o.backend])).toEqual([['place', 'pg.spare.1']]);
    expect(states(later.layout)['pg.spare.0']).toBe('resting:gamma/primary@10000');
  });
});

