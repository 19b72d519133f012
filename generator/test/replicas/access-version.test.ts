// The replicated access switch's pure core: versions, the gpt0 encoding, reading `show table`, and
// the merge by version every replica runs (properties: all replicas settle on the same newest entry
// whatever order they exchange in; a bad table entry never reaches the merged result).

import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { parseAccess } from '../../src/access.js';
import { ACCESS_STATES, encodeAccess, mergeAccess, newer, nextVersion, parseAccessTable, VERSION_EPOCH_MS, type AccessEntry } from '../../src/replicas/access-version.js';
import { tenantIdProblem } from '../../src/validate.js';

const validId = (id: string): boolean => tenantIdProblem(id) === undefined;
const NOW = Date.UTC(2026, 11, 6, 8, 0, 0);
const nowVersion = nextVersion(NOW, 0);

describe('versions', () => {
  it('are seconds since 2025-01-01, strictly above the newest known', () => {
    expect(nextVersion(VERSION_EPOCH_MS + 10_500, 0)).toBe(10);
    expect(nextVersion(VERSION_EPOCH_MS + 10_500, 10)).toBe(11);
    expect(nextVersion(VERSION_EPOCH_MS + 10_500, 99)).toBe(100);
  });

  it('gpt0 = version << 2 | state code, read back by parseAccessTable', () => {
    const e: AccessEntry = { state: 'paused', version: nowVersion };
    expect(encodeAccess(e)).toBe(nowVersion * 4 + 2);
    const table = parseAccessTable(`# table: pgroute-access, type: string, size:102400, used:1\n0x55: key=acme use=0 exp=0 gpt0=${encodeAccess(e)}\n`, NOW, validId);
    expect(table).toEqual({ entries: { acme: e }, bad: [] });
    // 3.x prints a shard
    expect(parseAccessTable(`0x7f: key=acme use=0 exp=0 shard=0 gpt0=${encodeAccess(e)}`, NOW, validId).entries).toEqual({ acme: e });
  });
});

describe('parseAccessTable refuses what no pgroute writes', () => {
  it('a key that is no tenant id, an unknown state, a future version, a forged line', () => {
    const v = nowVersion * 4;
    const text = [
      `0x1: key=Bad_Id use=0 exp=0 gpt0=${v + 1}`,
      `0x2: key=acme use=0 exp=0 gpt0=${v + 3}`,
      `0x3: key=globex use=0 exp=0 gpt0=${(nowVersion + 7_200) * 4 + 1}`,
      `0x4: key=x use=0 exp=0 gpt0=${v + 1} use=0 exp=0 gpt0=0`,
      `0x5: key=initech use=0 exp=0 gpt0=${v + 1}`,
    ].join('\n');
    const t = parseAccessTable(text, NOW, validId);
    expect(t.entries).toEqual({ initech: { state: 'disabled', version: nowVersion } });
    expect(t.bad.map((b) => [b.key, b.reason])).toEqual([
      ['Bad_Id', 'the key is not a tenant id'],
      ['acme', 'unknown state code 3'],
      ['globex', `version ${nowVersion + 7_200} is dated more than 3600 s ahead of this replica's clock`],
      ['x', 'not an entry of the form key=<tenant> ... gpt0=<n>'],
    ]);
  });

  it('never yields an entry for arbitrary text that is not a well-formed line', () => {
    fc.assert(
      fc.property(fc.string(), (s) => {
        const t = parseAccessTable(s, NOW, validId);
        return Object.entries(t.entries).every(([id, e]) => validId(id) && ACCESS_STATES.includes(e.state) && e.version <= nowVersion + 3_600);
      }),
    );
  });
});

const entry = fc.record({ state: fc.constantFrom(...ACCESS_STATES), version: fc.integer({ min: 0, max: 1_000 }) });
const side = fc.dictionary(fc.constantFrom('acme', 'globex', 'initech', 'umbrella'), entry);

describe('mergeAccess', () => {
  it('keeps the newest entry of each tenant; learns only newer, teaches only newer', () => {
    fc.assert(
      fc.property(side, side, (local, table) => {
        const m = mergeAccess(local, table);
        for (const id of new Set([...Object.keys(local), ...Object.keys(table)])) {
          const l = local[id];
          const t = table[id];
          const best = l === undefined ? t : t === undefined ? l : newer(t, l) ? t : l;
          expect(m.merged[id]).toEqual(best);
          expect(m.learned.includes(id)).toBe(t !== undefined && newer(t, l));
          expect(m.teach.includes(id)).toBe(l !== undefined && newer(l, t));
        }
      }),
    );
  });

  it('replicas exchanging in any order settle on the same entries', () => {
    fc.assert(
      fc.property(fc.array(side, { minLength: 2, maxLength: 4 }), fc.array(fc.nat(), { maxLength: 20 }), (replicas, order) => {
        // One shared table (what the peers protocol converges to): each step a replica learns
        // from it and teaches it, in an arbitrary order; then every replica does one more round.
        let table: Record<string, AccessEntry> = {};
        const locals = replicas.map((r) => ({ ...r }));
        const round = (i: number): void => {
          const m = mergeAccess(locals[i] ?? {}, table);
          locals[i] = { ...m.merged };
          table = { ...table, ...Object.fromEntries(m.teach.map((id) => [id, m.merged[id] as AccessEntry])) };
        };
        for (const o of order) round(o % locals.length);
        for (let pass = 0; pass < 2; pass++) for (let i = 0; i < locals.length; i++) round(i);
        for (const l of locals) expect(l).toEqual(locals[0]);
      }),
    );
  });

  it('the same version breaks ties by state code the same way everywhere', () => {
    expect(newer({ state: 'disabled', version: 5 }, { state: 'enabled', version: 5 })).toBe(true);
    expect(newer({ state: 'enabled', version: 5 }, { state: 'disabled', version: 5 })).toBe(false);
    expect(newer({ state: 'enabled', version: 6 }, { state: 'disabled', version: 5 })).toBe(true);
  });
});

describe('access.json', () => {
  it('reads the first format (a disabled list) as disabled at version 0', () => {
    expect(parseAccess('{"disabled":["acme","Bad!"]}')).toEqual({ disabled: ['acme'], entries: { acme: { state: 'disabled', version: 0 } } });
  });

  it('reads versioned entries, dropping invalid ones', () => {
    const a = parseAccess(JSON.stringify({ entries: { acme: { state: 'enabled', version: 9 }, globex: { state: 'disabled', version: 3 }, x_y: { state: 'disabled', version: 1 }, initech: { state: 'gone', version: 1 }, umbrella: { state: 'paused', version: -1 } } }));
    expect(a).toEqual({ disabled: ['globex'], entries: { acme: { state: 'enabled', version: 9 }, globex: { state: 'disabled', version: 3 } } });
  });
});
