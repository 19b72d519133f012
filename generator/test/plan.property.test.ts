// Properties of planChange over random sequences of snapshots, applied one after the other with
// time moving on: names are never shared, vacated backends rest before anyone else gets them, the
// interim never routes to a backend that is changing hands, and reloads keep every living name.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { desiredOccupants, EMPTY_LAYOUT, fitsSpare, targetKey, type Layout, type Occupant } from '../src/layout.js';
import type { Endpoint, HealthCheck, Target, Tenant } from '../src/model.js';
import { planChange } from '../src/plan.js';

const HOSTS = ['10.0.0.1', '10.0.0.2', '10.0.0.3', '2001:db8::1'];
const endpointArb: fc.Arbitrary<Endpoint> = fc.record({ host: fc.constantFrom(...HOSTS), port: fc.constantFrom(5432, 5433, 6432) });

/** Mostly plain single servers (runtime material); sometimes cluster members or a non-TCP check (reload only). */
const targetArb: fc.Arbitrary<Target> = fc.oneof(
  { weight: 6, arbitrary: endpointArb },
  {
    weight: 1,
    arbitrary: fc.record({ first: endpointArb, more: fc.array(endpointArb, { minLength: 1, maxLength: 2 }) }).map(({ first, more }): Target => ({
      ...first,
      members: [first, ...more],
      check: { kind: 'patroni', port: 8008, path: '/primary' } satisfies HealthCheck,
    })),
  },
  { weight: 1, arbitrary: endpointArb.map((e): Target => ({ ...e, check: { kind: 'pgsql', user: 'monitor' } })) },
);

const tenantArb: fc.Arbitrary<Tenant> = fc
  .record({
    id: fc.constantFrom('a', 'b', 'c', 'd', 'e', 'f'),
    primary: targetArb,
    extra: fc.subarray(['pool', 'replica']),
    extraTarget: targetArb,
    maxconn: fc.option(fc.constantFrom(10, 20), { nil: undefined }),
    maxqueue: fc.oneof({ weight: 8, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: fc.constant(5) }),
  })
  .map(({ id, primary, extra, extraTarget, maxconn, maxqueue }) => {
    const targets: Record<string, Target> = { primary };
    for (const name of extra) targets[name] = extraTarget;
    const t: { -readonly [K in keyof Tenant]: Tenant[K] } = { id, enabled: true, targets };
    if (maxconn !== undefined) t.maxconn = maxconn;
    if (maxqueue !== undefined) t.maxqueue = maxqueue;
    return t;
  });

type Edit =
  | { readonly kind: 'put'; readonly tenant: Tenant }
  | { readonly kind: 'remove'; readonly id: string }
  | { readonly kind: 'move'; readonly id: string; readonly to: Endpoint }
  | { readonly kind: 'limit'; readonly id: string; readonly maxconn: number | undefined };

const idArb = fc.constantFrom('a', 'b', 'c', 'd', 'e', 'f');
const editArb: fc.Arbitrary<Edit> = fc.oneof(
  { weight: 3, arbitrary: tenantArb.map((tenant): Edit => ({ kind: 'put', tenant })) },
  { weight: 3, arbitrary: idArb.map((id): Edit => ({ kind: 'remove', id })) },
  { weight: 2, arbitrary: fc.record({ id: idArb, to: endpointArb }).map(({ id, to }): Edit => ({ kind: 'move', id, to })) },
  { weight: 1, arbitrary: fc.record({ id: idArb, maxconn: fc.option(fc.constantFrom(10, 30), { nil: undefined }) }).map(({ id, maxconn }): Edit => ({ kind: 'limit', id, maxconn })) },
);

/** One snapshot after another: each step edits the previous one (adds, removes, moves, limits). */
const stepArb = fc.record({
  edits: fc.array(editArb, { minLength: 1, maxLength: 3 }),
  advance: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 20_000 })),
  forced: fc.oneof({ weight: 8, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: fc.constant('listeners changed') }),
});

function edit(tenants: Map<string, Tenant>, e: Edit): void {
  if (e.kind === 'put') tenants.set(e.tenant.id, e.tenant);
  else if (e.kind === 'remove') tenants.delete(e.id);
  else {
    const t = tenants.get(e.id);
    if (t === undefined) return;
    if (e.kind === 'move') {
      // A single server moves; a cluster's first member changes with its member list.
      const p = t.targets.primary as Target;
      const primary: Target = p.members === undefined ? { ...p, ...e.to } : { ...p, ...e.to, members: [e.to, ...p.members.slice(1)] };
      tenants.set(e.id, { ...t, targets: { ...t.targets, primary } });
    } else {
      const { maxconn: _drop, ...rest } = t;
      tenants.set(e.id, e.maxconn === undefined ? rest : { ...rest, maxconn: e.maxconn });
    }
  }
}

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
