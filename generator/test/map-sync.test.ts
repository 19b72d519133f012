// HAProxy's maps around the agent's table (generator/src/haproxy/map-sync.ts): the verdict memo's
// map withdraws before the agent learns the table, the limits map adds before it; both end with
// exactly the new map, whatever HAProxy held (a reload may have loaded the new file already).

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { mapPhases, type MapOrder } from '../src/haproxy/map-sync.js';

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

/** The first value of each key, as a lookup finds it. */
const lookup = (m: [string, string][]): Map<string, string> => new Map([...m].reverse());
const mapArb = fc.dictionary(fc.constantFrom('1:1', '1:2', '2:1', '3:3', '4:4'), fc.constantFrom('a', 'b', 'c'));
const phases = (order: MapOrder, before: Map<string, string> | undefined, after: Map<string, string>) => mapPhases({ file: '/m', order, before, after });

describe('mapPhases, withdraw-first (the verdict memo)', () => {
  it('withdraws every changed or removed entry before the agent learns the table, and ends with exactly the new map', () => {
    fc.assert(
      fc.property(mapArb, mapArb, fc.boolean(), (beforeObj, afterObj, reloaded) => {
        const before = new Map(Object.entries(beforeObj));
        const after = new Map(Object.entries(afterObj));
        // After a reload HAProxy's map was loaded from the new file already.
        const held: [string, string][] = reloaded ? [...after] : [...before];
        const p = phases('withdraw-first', before, after);
        const between = applyModel(held, p.before);
        // Between the phases no entry routes differently from both tables' agreement.
        for (const [k, v] of between) {
          expect(before.get(k) === v || reloaded).toBe(true);
          expect(after.get(k)).toBe(v);
        }
        const end = applyModel(between, p.after);
        expect(new Map(end)).toEqual(after);
        expect(end).toHaveLength(after.size); // never two entries for one key
        expect(p.invalidated).toBe([...before].filter(([k, v]) => after.get(k) !== v).length);
      }),
    );
  });

  it('clears a map whose content is unknown first', () => {
    expect(phases('withdraw-first', undefined, new Map([['1:1', 'a']]))).toEqual({ before: ['clear map /m'], after: ['add map /m 1:1 a'], invalidated: 0 });
  });
});

describe('mapPhases, add-first (the limits map)', () => {
  it('has every key of both tables between the phases (old verdicts and new find their words), and ends with exactly the new content', () => {
    fc.assert(
      fc.property(mapArb, mapArb, fc.boolean(), (beforeObj, afterObj, reloaded) => {
        const before = new Map(Object.entries(beforeObj));
        const after = new Map(Object.entries(afterObj));
        const held: [string, string][] = reloaded ? [...after] : [...before];
        const p = phases('add-first', before, after);
        const between = lookup(applyModel(held, p.before));
        for (const [k, v] of after) expect(between.get(k)).toBe(v);
        // A key whose value does not change is never missing; one the new table drops is still there.
        for (const [k, v] of before) if (!after.has(k) && !reloaded) expect(between.get(k)).toBe(v);
        expect(lookup(applyModel(applyModel(held, p.before), p.after))).toEqual(after);
        expect(p.invalidated).toBe(0);
      }),
    );
  });

  it('adds before and removes after', () => {
    const p = phases('add-first', new Map([['acme/c/3', 'x']]), new Map([['acme/c/4', 'y']]));
    expect(p).toEqual({ before: ['add map /m acme/c/4 y'], after: ['del map /m acme/c/3'], invalidated: 0 });
    expect(phases('add-first', undefined, new Map([['acme/c/4', 'y']])).before).toEqual(['clear map /m', 'add map /m acme/c/4 y']);
  });
});
