// The verdict memo's map (generator/src/memo/memo-map.ts): which targets may be routed from memory,
// with exactly the variables the agent sets, and the two-phase sync around the agent's table.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { cancelId, verdictActions, type RouteTableDocument, type TenantRoute } from '../../agent/src/index.js';
import { MEMO_FIELDS, MEMO_REFUSALS, memoCommands, memoEntries, memoKey, memoMapFile, memoSync, notMemoizable } from '../src/memo/memo-map.js';

const POLICY = { keys: ['options', 'database'], targetByPort: {}, defaultTarget: 'primary', revealDisabled: false } as const;
const LIMITS = { maxClientConnections: 1024, maxConnectionRate: 1000, maxClientConnectionRate: 0 };

function table(tenants: readonly TenantRoute[], policy: object = POLICY): RouteTableDocument {
  return { version: 'v', policy: policy as RouteTableDocument['policy'], tenants };
}

const acme: TenantRoute = { id: 'acme', enabled: true, backends: { primary: 'pg.acme.primary', pool: 'pg.spare.3' }, limits: LIMITS };

describe('memoEntries', () => {
  it("holds every target of an enabled tenant, keyed by its cancel id, valued with the agent's own variables", () => {
    const entries = memoEntries(table([acme]));
    const targets = [...entries.keys()].filter((k) => !k.includes('/'));
    expect(targets.sort()).toEqual([memoKey('acme', 'pool'), memoKey('acme', 'primary')].sort());
    const [a, b] = cancelId('acme', 'primary');
    const key = memoKey('acme', 'primary');
    expect(key).toBe(`${a}:${b}`);
    const fields = (entries.get(key) ?? '').split('|');
    expect(fields).toHaveLength(MEMO_FIELDS.length);
    // Decoded back (the value's fields, the refusals under their own keys), these are the SET-VARs
    // the agent sends for this route, no more, no less (mcr "0" reads as unset in HAProxy's rules).
    const sent = verdictActions({ kind: 'route', tenant: 'acme', target: 'primary', backend: 'pg.acme.primary', cancel: false, limits: LIMITS });
    const decoded = new Map<string, unknown>(MEMO_FIELDS.map((f, i) => [f, fields[i]]));
    for (const r of MEMO_REFUSALS) {
      const v = entries.get(`${key}${r.suffix}`);
      if (v !== undefined) decoded.set(r.name, Buffer.from(v, 'base64'));
    }
    decoded.set('mcr', '0');
    // The cancel id is the key itself: a hit sets ca, cb from its memo entry (memo-lookup.hbs).
    decoded.set('ca', String(a));
    decoded.set('cb', String(b));
    expect(decoded).toEqual(new Map(sent.map((x) => [x.name.toString(), x.value])));
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

  it('memoizes nothing under a policy field it does not know', () => {
    expect(memoEntries(table([acme], { ...POLICY, holdAll: true })).size).toBe(0);
  });

  it('renders a map file HAProxy reads as "key value" lines', () => {
    const text = memoMapFile(memoEntries(table([acme])));
    const lines = text.trim().split('\n').filter((l) => !l.startsWith('#'));
    expect(lines).toHaveLength(2 * 3); // two targets, each with its two refusals
    for (const l of lines) expect(l).toMatch(/^\d+:\d+(\/[cr])? [A-Za-z0-9.|+/=_-]+$/);
  });
});

/** Applies CLI commands to a model of HAProxy's map (del removes every entry of a key, add appends). */
function applyModel(map: [string, string][], commands: readonly string[]): [string, string][] {
  let m = map;
  for (const c of commands) {
    const [verb, , , key, value] = c.split(' ');
    if (verb === 'clear') m = [];
    else if (verb === 'del') m = m.filter(([k]) => k !== key);
    else if (verb === 'add') m = [...m, [key as string, value as string]];
  }
  return m;
}

describe('memoSync', () => {
  const mapArb = fc.dictionary(fc.constantFrom('1:1', '1:2', '2:1', '3:3', '4:4'), fc.constantFrom('a', 'b', 'c'));
  it('withdraws every changed or removed entry before the agent learns the table, and ends with exactly the new map', () => {
    fc.assert(
      fc.property(mapArb, mapArb, fc.boolean(), (beforeObj, afterObj, reloaded) => {
        const before = new Map(Object.entries(beforeObj));
        const after = new Map(Object.entries(afterObj));
        // After a reload HAProxy's map was loaded from the new file already.
        const held: [string, string][] = reloaded ? [...after] : [...before];
        const sync = memoSync(before, after);
        const cmds = memoCommands('/m', sync);
        const between = applyModel(held, cmds.withdraw);
        // Between the phases no entry routes differently from both tables' agreement.
        for (const [k, v] of between) {
          expect(before.get(k) === v || reloaded).toBe(true);
          expect(after.get(k)).toBe(v);
        }
        const end = applyModel(between, cmds.add);
        expect(new Map(end)).toEqual(after);
        expect(end).toHaveLength(after.size); // never two entries for one key
        expect(sync.invalidated).toBe([...before].filter(([k, v]) => after.get(k) !== v).length);
      }),
    );
  });

  it("takes a target's value out before its refusals and puts it back after them", () => {
    const before = new Map([['1:1/c', 'x'], ['1:1', 'a'], ['1:1/r', 'y']]);
    const after = new Map([['1:1/c', 'x2'], ['1:1', 'a2'], ['1:1/r', 'y2']]);
    const sync = memoSync(before, after);
    expect(sync.invalidated).toBe(1); // one target's verdict, not its refusals
    expect(memoCommands('/m', sync)).toEqual({
      withdraw: ['del map /m 1:1', 'del map /m 1:1/c', 'del map /m 1:1/r'],
      add: ['add map /m 1:1/c x2', 'add map /m 1:1/r y2', 'add map /m 1:1 a2'],
    });
  });

  it('clears a map whose content is unknown first', () => {
    const sync = memoSync(undefined, new Map([['1:1', 'a']]));
    expect(memoCommands('/m', sync)).toEqual({ withdraw: ['clear map /m'], add: ['add map /m 1:1 a'] });
  });
});
