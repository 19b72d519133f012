// The layout of a (re)load: readable names for tenants placed at a reload, spares topped up with
// indices never used before, and names that never change while a target lives.

import { describe, expect, it } from 'vitest';
import {
  desiredOccupants,
  EMPTY_LAYOUT,
  layoutForReload,
  routedBackends,
  sameOccupant,
  targetKey,
  type Layout,
  type LayoutBackend,
  type Occupant,
} from '../src/layout.js';
import type { Endpoint, Tenant } from '../src/model.js';

function tenant(id: string, host: string, port: number, extra: Record<string, Endpoint> = {}, maxconn?: number): Tenant {
  const targets = { primary: { host, port }, ...extra };
  return maxconn === undefined ? { id, enabled: true, targets } : { id, enabled: true, targets, maxconn };
}

function occ(tenantId: string, target: string, host = '10.0.0.1', port = 5432, maxconn?: number): Occupant {
  return maxconn === undefined ? { tenant: tenantId, target, endpoint: { host, port } } : { tenant: tenantId, target, endpoint: { host, port }, maxconn };
}

const names = (l: Layout): string[] => l.backends.map((b) => b.name);

describe('desiredOccupants', () => {
  it('lists every target of every tenant under its key, with maxconn only when set', () => {
    const wanted = desiredOccupants([tenant('acme', '10.0.0.1', 5432, { pool: { host: '10.0.0.2', port: 6432 } }, 20), tenant('beta', '::1', 5433)]);
    expect([...wanted.keys()]).toEqual([targetKey('acme', 'primary'), targetKey('acme', 'pool'), targetKey('beta', 'primary')]);
    expect(wanted.get(targetKey('acme', 'pool'))).toEqual({ tenant: 'acme', target: 'pool', endpoint: { host: '10.0.0.2', port: 6432 }, maxconn: 20 });
    const beta = wanted.get(targetKey('beta', 'primary'));
    expect(beta).toEqual({ tenant: 'beta', target: 'primary', endpoint: { host: '::1', port: 5433 } });
    expect(beta !== undefined && 'maxconn' in beta).toBe(false);
  });

  it('keys cannot collide across tenant and target', () => {
    expect(targetKey('a', 'bc')).not.toBe(targetKey('ab', 'c'));
  });
});

describe('sameOccupant', () => {
  it('compares tenant, target, host, port and maxconn', () => {
    const a = occ('acme', 'primary', '10.0.0.1', 5432, 10);
    expect(sameOccupant(a, occ('acme', 'primary', '10.0.0.1', 5432, 10))).toBe(true);
    expect(sameOccupant(a, occ('acme', 'pool', '10.0.0.1', 5432, 10))).toBe(false);
    expect(sameOccupant(a, occ('beta', 'primary', '10.0.0.1', 5432, 10))).toBe(false);
    expect(sameOccupant(a, occ('acme', 'primary', '10.0.0.2', 5432, 10))).toBe(false);
    expect(sameOccupant(a, occ('acme', 'primary', '10.0.0.1', 5433, 10))).toBe(false);
    expect(sameOccupant(a, occ('acme', 'primary', '10.0.0.1', 5432))).toBe(false);
  });
});

describe('layoutForReload: the first layout', () => {
  it('names tenants pg.<tenant>.<target> in sorted order, then N spares pg.spare.<n>', () => {
    const wanted = desiredOccupants([
      tenant('zeta', '10.0.0.3', 5432),
      tenant('acme', '10.0.0.1', 5432, { replica: { host: '10.0.0.2', port: 5432 }, pool: { host: '10.0.0.2', port: 6432 } }),
      tenant('beta', '10.0.0.4', 5432),
    ]);
    const layout = layoutForReload(EMPTY_LAYOUT, wanted, 3);
    expect(names(layout)).toEqual([
      'pg.acme.pool',
      'pg.acme.primary',
      'pg.acme.replica',
      'pg.beta.primary',
      'pg.zeta.primary',
      'pg.spare.0',
      'pg.spare.1',
      'pg.spare.2',
    ]);
    expect(layout.nextSpare).toBe(3);
    for (const b of layout.backends.slice(0, 5)) {
      expect(b.spare).toBe(false);
      expect(b.state.kind).toBe('occupied');
    }
    for (const b of layout.backends.slice(5)) expect(b).toEqual({ name: b.name, spare: true, state: { kind: 'free' } });
    const acmePool = layout.backends[0];
    expect(acmePool?.state).toEqual({ kind: 'occupied', occupant: occ('acme', 'pool', '10.0.0.2', 6432) });
  });

  it('no tenants and no spares is an empty layout', () => {
    expect(layoutForReload(EMPTY_LAYOUT, new Map(), 0)).toEqual({ backends: [], nextSpare: 0 });
  });
});

describe('layoutForReload: a later reload', () => {
  // acme and beta placed at a reload; gamma taken into pg.spare.0 at runtime; old vacated from
  // pg.spare.1 and resting; pg.spare.2 and pg.spare.3 free.
  const current: Layout = {
    backends: [
      { name: 'pg.acme.primary', spare: false, state: { kind: 'occupied', occupant: occ('acme', 'primary') } },
      { name: 'pg.beta.primary', spare: false, state: { kind: 'occupied', occupant: occ('beta', 'primary') } },
      { name: 'pg.spare.0', spare: true, state: { kind: 'occupied', occupant: occ('gamma', 'primary', '10.0.0.7') } },
      { name: 'pg.spare.1', spare: true, state: { kind: 'resting', until: 50_000, was: occ('old', 'primary') } },
      { name: 'pg.spare.2', spare: true, state: { kind: 'free' } },
      { name: 'pg.spare.3', spare: true, state: { kind: 'free' } },
    ],
    nextSpare: 4,
  };

  it('keeps every existing name for surviving targets, runtime-placed spares included, with the wanted occupant', () => {
    const wanted = new Map<string, Occupant>([
      [targetKey('gamma', 'primary'), occ('gamma', 'primary', '10.0.0.8', 5433, 5)],
      [targetKey('acme', 'primary'), occ('acme', 'primary')],
      [targetKey('aaa', 'primary'), occ('aaa', 'primary')],
    ]);
    const layout = layoutForReload(current, wanted, 2);
    const byName = new Map(layout.backends.map((b) => [b.name, b]));
    expect(byName.get('pg.spare.0')).toEqual({ name: 'pg.spare.0', spare: true, state: { kind: 'occupied', occupant: occ('gamma', 'primary', '10.0.0.8', 5433, 5) } });
    expect(byName.get('pg.acme.primary')?.state).toEqual({ kind: 'occupied', occupant: occ('acme', 'primary') });
    // beta left: its backend is gone; the newcomer gets a readable name.
    expect(byName.has('pg.beta.primary')).toBe(false);
    expect(byName.get('pg.aaa.primary')?.state).toEqual({ kind: 'occupied', occupant: occ('aaa', 'primary') });
    // Resting spares are dropped; free ones kept up to the spare count.
    expect(names(layout)).toEqual(['pg.acme.primary', 'pg.spare.0', 'pg.aaa.primary', 'pg.spare.2', 'pg.spare.3']);
    expect(layout.nextSpare).toBe(4);
  });

  it('drops free spares beyond the spare count', () => {
    const layout = layoutForReload(current, new Map([[targetKey('acme', 'primary'), occ('acme', 'primary')]]), 1);
    expect(names(layout)).toEqual(['pg.acme.primary', 'pg.spare.2']);
    expect(layout.nextSpare).toBe(4);
  });

  it('tops spares up with NEW indices, never reusing the name of a spare that was dropped', () => {
    const layout = layoutForReload(current, new Map(), 5);
    expect(names(layout)).toEqual(['pg.spare.2', 'pg.spare.3', 'pg.spare.4', 'pg.spare.5', 'pg.spare.6']);
    expect(layout.nextSpare).toBe(7);
    // pg.spare.0 (gamma's) and pg.spare.1 (resting) are gone and never come back as free spares.
    const again = layoutForReload(layout, new Map(), 8);
    expect(names(again)).toEqual(['pg.spare.2', 'pg.spare.3', 'pg.spare.4', 'pg.spare.5', 'pg.spare.6', 'pg.spare.7', 'pg.spare.8', 'pg.spare.9']);
  });

  it('drops resting backends that are not spares', () => {
    const l: Layout = {
      backends: [{ name: 'pg.acme.primary', spare: false, state: { kind: 'resting', until: 1, was: occ('acme', 'primary') } }],
      nextSpare: 0,
    };
    expect(layoutForReload(l, new Map(), 0)).toEqual({ backends: [], nextSpare: 0 });
  });

  it('never gives a readable name held by a kept backend to another target', () => {
    // A hand-edited layout.json where pg.beta.primary is held by acme: beta must get another name.
    const odd: Layout = { backends: [{ name: 'pg.beta.primary', spare: false, state: { kind: 'occupied', occupant: occ('acme', 'primary') } }], nextSpare: 0 };
    const layout = layoutForReload(odd, desiredOccupants([tenant('acme', '10.0.0.1', 5432), tenant('beta', '10.0.0.2', 5432)]), 0);
    expect(names(layout)).toEqual(['pg.beta.primary', 'pg.beta.primary.2']);
    expect(new Set(names(layout)).size).toBe(2);
  });

  it('is stable: reloading the same wanted set twice changes nothing', () => {
    const wanted = desiredOccupants([tenant('acme', '10.0.0.1', 5432), tenant('beta', '10.0.0.2', 5432)]);
    const once = layoutForReload(EMPTY_LAYOUT, wanted, 2);
    expect(layoutForReload(once, wanted, 2)).toEqual(once);
  });
});

describe('routedBackends', () => {
  it('names the occupied backends per tenant and target, nothing else', () => {
    const backends: LayoutBackend[] = [
      { name: 'pg.acme.primary', spare: false, state: { kind: 'occupied', occupant: occ('acme', 'primary') } },
      { name: 'pg.spare.0', spare: true, state: { kind: 'occupied', occupant: occ('acme', 'pool') } },
      { name: 'pg.spare.1', spare: true, state: { kind: 'resting', until: 5, was: occ('beta', 'primary') } },
      { name: 'pg.spare.2', spare: true, state: { kind: 'free' } },
    ];
    const routed = routedBackends({ backends, nextSpare: 3 });
    expect([...routed]).toEqual([['acme', { primary: 'pg.acme.primary', pool: 'pg.spare.0' }]]);
  });
});
