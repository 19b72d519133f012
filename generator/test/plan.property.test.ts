// Properties of planChange over random sequences of snapshots, applied one after the other with
// time moving on: names are never shared, vacated backends rest before anyone else gets them, the
// interim never routes to a backend that is changing hands, and reloads keep every living name.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { desiredOccupants, EMPTY_LAYOUT, fitsSpare, targetKey, type Layout, type Occupant } from '../src/layout.js';
import type { Tenant } from '../src/model.js';
import { planChange } from '../src/plan.js';
import { edit, editArb } from './churn.js';

/** One snapshot after another: each step edits the previous one (adds, removes, moves, limits). */
const stepArb = fc.record({
  edits: fc.array(editArb, { minLength: 1, maxLength: 3 }),
  advance: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 20_000 })),
  forced: fc.oneof({ weight: 8, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: fc.constant('listeners changed') }),
});

const keyOf = (o: Occupant): string => targetKey(o.tenant, o.target);

function occupiedByName(l: Layout): Map<string, string> {
  const out = new Map<string, string>();
  for (const b of l.backends) if (b.state.kind === 'occupied') out.set(b.name, keyOf(b.state.occupant));
  return out;
}

describe('planChange over random histories', () => {
  it('keeps names unshared, rests vacated backends, orders the interim and keeps names at reloads', { timeout: 60_000 }, () => {
    fc.assert(
      fc.property(
        fc.array(stepArb, { minLength: 1, maxLength: 30 }),
        fc.integer({ min: 0, max: 3 }),
        fc.constantFrom(0, 1_000, 10_000),
        (steps, spares, restMs) => {
          let current: Layout = EMPTY_LAYOUT;
          let now = 1_000_000;
          /** name -> last (tenant,target) that occupied it, and when it was vacated (undefined while occupied). */
          const history = new Map<string, { key: string; vacatedAt: number | undefined }>();
          /** name -> whether HAProxy has it as a single-server TCP-checked backend (what a runtime place needs). */
          const singleServer = new Map<string, boolean>();
          const tenants = new Map<string, Tenant>();
          for (const step of steps) {
            now += step.advance;
            for (const e of step.edits) edit(tenants, e);
            const wanted = desiredOccupants([...tenants.values()]);
            const plan = planChange(current, wanted, { now, spares, restMs, forcedReload: step.forced === undefined ? [] : [step.forced] });
            const reload = plan.reloadReasons.length > 0;
            const before = occupiedByName(current);
            const after = occupiedByName(plan.layout);

            // (a) one name, one backend; one (tenant, target), one occupied backend.
            const names = plan.layout.backends.map((b) => b.name);
            expect(new Set(names).size).toBe(names.length);
            expect(new Set(after.values()).size).toBe(after.size);
            // Every wanted target is placed once the plan is applied.
            expect(new Set(after.values())).toEqual(new Set(wanted.keys()));

            // (b) a backend vacated at t goes to another (tenant, target) only from t + restMs.
            for (const [name, key] of after) {
              const h = history.get(name);
              if (h !== undefined && h.key !== key) {
                expect(h.vacatedAt, `${name} went from ${h.key} to ${key} while still occupied`).toBeDefined();
                expect(now, `${name} reused ${now - (h.vacatedAt ?? 0)} ms after it was vacated`).toBeGreaterThanOrEqual((h.vacatedAt ?? 0) + restMs);
              }
            }
            for (const [name, h] of history) if (!after.has(name) && h.vacatedAt === undefined) history.set(name, { key: h.key, vacatedAt: now });
            for (const [name, key] of after) if (history.get(name)?.key !== key || !before.has(name)) history.set(name, { key, vacatedAt: undefined });

            // (c) whatever the interim routes to, the current layout has under the same name for the same target.
            for (const [name, key] of occupiedByName(plan.interim)) expect(before.get(name)).toBe(key);
            // ...and the interim never routes what the plan moves to someone else.
            for (const [name, key] of occupiedByName(plan.interim)) if (after.has(name)) expect(after.get(name)).toBe(key);

            if (reload) {
              expect(plan.ops).toEqual([]);
              expect(plan.reloadReasons.slice(0, step.forced === undefined ? 0 : 1)).toEqual(step.forced === undefined ? [] : [step.forced]);
              // (d) every surviving target keeps its backend name.
              for (const [name, key] of before) if (wanted.has(key)) expect(after.get(name), `${key} lost ${name}`).toBe(key);
              // Spare names are never reused: new spares are numbered from nextSpare on.
              expect(plan.layout.nextSpare).toBeGreaterThanOrEqual(current.nextSpare);
              for (const b of plan.layout.backends) {
                const m = /^pg\.spare\.(\d+)$/.exec(b.name);
                if (m && !current.backends.some((c) => c.name === b.name)) expect(Number(m[1])).toBeGreaterThanOrEqual(current.nextSpare);
              }
              singleServer.clear();
              for (const b of plan.layout.backends) singleServer.set(b.name, b.state.kind === 'occupied' ? fitsSpare(b.state.occupant) : true);
            } else {
              // Runtime: HAProxy keeps exactly the backends it has.
              expect(plan.layout.backends.map((b) => b.name)).toEqual(current.backends.map((b) => b.name));
              expect(plan.layout.nextSpare).toBe(current.nextSpare);
              for (const op of plan.ops) {
                if (op.kind !== 'place') continue;
                // A runtime placement only sets server s1: the backend must be a single TCP-checked server.
                expect(singleServer.get(op.backend), `place into ${op.backend}, which HAProxy has with members or another check`).toBe(true);
                expect(fitsSpare(op.occupant)).toBe(true);
                const prev = current.backends.find((b) => b.name === op.backend);
                expect(prev?.state.kind).not.toBe('occupied');
              }
            }
            current = plan.layout;
          }
        },
      ),
      { numRuns: 300 },
    );
  });
});
