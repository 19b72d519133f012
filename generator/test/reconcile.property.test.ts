// The reconcile loop over random histories of snapshots, with a failure injected at any step: the
// pure plan (reconcile) performed by the one executor (execute) through a model of HAProxy, the
// agent and the state dir's files. At every step boundary the agent names only backends HAProxy
// has, serving the very tenant and target; every table it is given knows every target the sources
// want (routed, or pending while HAProxy adds it); after a failure, the files are the last-known-good ones
// and the recorded state is one HAProxy really holds.

import fc from 'fast-check';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import type { RouteTableDocument } from '../../agent/src/index.js';
import { ConfigError } from '../src/errors.js';
import { execute, TransitionError, type Effects } from '../src/execute.js';
import { EMPTY_LAYOUT, targetKey, type Layout } from '../src/layout.js';
import type { Deployment, Tenant } from '../src/model.js';
import type { RuntimeOp } from '../src/plan.js';
import { isApplied, reconcile, type Applied, type Transition } from '../src/reconcile.js';
import { edit, editArb, idArb, type Edit } from './churn.js';

const log = pino({ level: 'silent' });
const POLICY: Deployment['policy'] = { keys: ['database'], targetByPort: {}, defaultTarget: 'primary', revealDisabled: false };
const LISTENERS: readonly Deployment['listeners'][] = [[{ address: '127.0.0.1', port: 5432 }], [{ address: '127.0.0.1', port: 5432 }, { address: '127.0.0.1', port: 6432, target: 'pool' }]];

/** A tenant moving to a host name: only a reload can place it (the runtime API takes addresses). */
const toHostName: fc.Arbitrary<Edit> = idArb.map((id): Edit => ({ kind: 'move', id, to: { host: 'db.internal', port: 5432 } }));

const stepArb = fc.record({
  edits: fc.array(fc.oneof({ weight: 8, arbitrary: editArb }, { weight: 1, arbitrary: toHostName }), { minLength: 1, maxLength: 3 }),
  advance: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 20_000 })),
  listeners: fc.oneof({ weight: 8, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.constant(1) }),
  /** Which fallible effect of this transition fails (publish, runtime, save, write or reload, in call order), and after how many runtime operations. */
  failure: fc.option(fc.record({ at: fc.nat(6), after: fc.nat(3), then: fc.option(fc.nat(3), { nil: undefined }) }), { nil: undefined, freq: 2 }),
});

/** What HAProxy's workers hold per backend name: the (tenant, target) a ready server serves, or nothing. */
type Served = Map<string, string>;

function servedBy(layout: Layout): Served {
  const out: Served = new Map();
  for (const b of layout.backends) if (b.state.kind === 'occupied') out.set(b.name, targetKey(b.state.occupant.tenant, b.state.occupant.target));
  return out;
}

/** Backend name -> (tenant, target) the agent's table routes to it. */
function named(doc: RouteTableDocument): Map<string, string> {
  const out = new Map<string, string>();
  for (const t of doc.tenants) for (const [target, backend] of Object.entries(t.backends)) out.set(backend, targetKey(t.id, target));
  return out;
}

class World {
  haproxy: Served = new Map();
  files: Layout | undefined;
  agent = new Map<string, string>();
  /** The (tenant, target) keys the desired snapshot of the transition under way has. */
  desired = new Set<string>();
  /** The pending targets of the agent's table now. */
  pendingNow: string[] = [];
  /** The fallible effect call (0-based within a transition) that fails, and the runtime prefix applied before it. */
  failure: { at: number; after: number; then?: number | undefined } | undefined;
  /** HAProxy runs (before, nothing reaches the agent, so there is nothing to check). */
  live = false;
  /** Step boundaries seen (for the report of a counterexample). */
  readonly trail: string[] = [];

  readonly effects: Effects<Layout | undefined> = {
    publish: (routes, phase) => {
      // As the maps publisher does, the agent gets the table even when HAProxy's maps fail around it.
      const failing = this.fails();
      this.agent = named(routes);
      const pending = routes.tenants.flatMap((t) => (t.pending ?? []).map((target) => targetKey(t.id, target)));
      this.pendingNow = pending;
      if (phase === 'interim') {
        // Every target the sources want is in the table the agent is given while a change is
        // applied, routed or pending (its connections held while HAProxy adds it), never unknown:
        // a renamed target or a newcomer that a reload adds is not refused in the meantime.
        const known = new Set([...this.agent.values(), ...pending]);
        for (const key of this.desired) expect(known.has(key), `after ${this.trail.join(' > ')}: the agent's table does not know ${key.replace('\0', '/')}`).toBe(true);
        // ...and a pending target is one HAProxy does not route yet: the table names no backend for it.
        for (const t of routes.tenants) for (const target of t.pending ?? []) expect(Object.hasOwn(t.backends, target)).toBe(false);
      } else {
        // The final table routes every target; the one a failed change leaves holds nothing back.
        expect(pending, `after ${this.trail.join(' > ')}: a ${phase} table with pending targets`).toEqual([]);
      }
      this.boundary(`publish ${phase}${failing ? ' (maps failed)' : ''}`);
      if (failing) throw new Error('HAProxy refused a map command (injected)');
    },
    runtime: async (ops) => {
      const failing = this.fails();
      const done = failing ? ops.slice(0, this.failure?.after ?? 0) : ops;
      for (const op of done) this.run(op);
      this.boundary(`runtime ${done.length}/${ops.length}`);
      if (failing) throw new Error('runtime API refused a command (injected)');
      return ops.length;
    },
    save: async () => {
      if (this.fails()) throw new Error('the files could not be read (injected)');
      return this.files;
    },
    restore: async (files) => {
      this.files = files;
      this.boundary('restore');
    },
    write: async (generation) => {
      if (this.fails()) throw new ConfigError('HAProxy rejected the rendered configuration (injected)');
      this.files = generation.layout;
      this.boundary('write');
    },
    reload: async () => {
      if (this.fails()) return { ok: false, detail: 'failed to load (injected)' };
      this.haproxy = servedBy(this.files ?? EMPTY_LAYOUT);
      this.boundary('reload');
      return { ok: true, detail: 'new worker 2' };
    },
  };

  #fallible = 0;
  fails(): boolean {
    if (this.failure === undefined) return false;
    const call = this.#fallible++;
    return call === this.failure.at || (this.failure.then !== undefined && call === this.failure.at + 1 + this.failure.then);
  }

  begin(failure: { at: number; after: number; then?: number | undefined } | undefined): void {
    this.failure = failure;
    this.#fallible = 0;
  }

  run(op: RuntimeOp): void {
    if (op.kind === 'park') this.haproxy.delete(op.backend);
    else if (op.kind === 'place') this.haproxy.set(op.backend, targetKey(op.occupant.tenant, op.occupant.target));
    // move and limit keep the backend's (tenant, target).
  }

  /** The invariant: every backend the agent names, HAProxy has, serving that tenant and target. */
  boundary(what: string): void {
    this.trail.push(what);
    if (!this.live) return;
    for (const [backend, key] of this.agent) {
      expect(this.haproxy.get(backend), `after ${this.trail.join(' > ')}: the agent names ${backend} for ${key.replace('\0', '/')}, which HAProxy ${this.haproxy.has(backend) ? `serves for ${this.haproxy.get(backend)?.replace('\0', '/')}` : 'lacks'}`).toBe(key);
    }
  }
}

describe('reconcile + execute over random tenant churn with injected failures', () => {
  it('the agent never names a backend HAProxy lacks, and a failure restores the files and a state HAProxy holds', { timeout: 120_000 }, async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(stepArb, { minLength: 1, maxLength: 25 }), fc.integer({ min: 0, max: 3 }), fc.constantFrom(0, 10_000), fc.boolean(), async (steps, spares, restMs, startsHaproxy) => {
        const world = new World();
        const tenants = new Map<string, Tenant>();
        let applied: Applied | undefined;
        let now = 1_000_000;
        let live = false;
        for (const step of steps) {
          now += step.advance;
          for (const e of step.edits) edit(tenants, e);
          const desired = { deployment: { listeners: LISTENERS[step.listeners] as Deployment['listeners'], policy: POLICY }, snapshot: { tenants: [...tenants.values()].sort((a, b) => (a.id < b.id ? -1 : 1)), refused: [] } };
          if (isApplied(applied, desired)) continue;
          const transition: Transition = reconcile(applied, desired, { now, spares, restMs, live, startsHaproxy, previousLayout: EMPTY_LAYOUT });
          if (applied?.uncertain === true) expect(transition.kind).toBe('reload');
          // The first generation is written before HAProxy runs: no failure injected there.
          world.desired = new Set(desired.snapshot.tenants.flatMap((t) => Object.keys(t.targets).map((target) => targetKey(t.id, target))));
          world.begin(live ? step.failure : undefined);
          world.trail.length = 0;
          const filesBefore = world.files;
          try {
            const done = await execute(transition, world.effects, log);
            applied = done.applied;
            // Done: HAProxy serves exactly the applied layout and the agent has its full table.
            if (live) expect(world.haproxy).toEqual(servedBy(applied.layout));
            expect(world.agent).toEqual(servedBy(applied.layout));
            // The files say the same, unless writing them after a runtime apply was what failed.
            if (done.kind === 'initial' || done.kind === 'reload' || world.trail.at(-1) === 'write') expect(world.files).toEqual(applied.layout);
          } catch (err) {
            if (!(err instanceof TransitionError)) throw err;
            const failed = err as TransitionError;
            // As the Applier records it: undefined is the running state, to be applied again.
            applied = failed.applied ?? (applied === undefined ? undefined : { ...applied, settled: false });
            // Rolled back: the files are the last-known-good ones, or (the final table's maps failed
            // after HAProxy took the change) those of what HAProxy runs now, unless writing them
            // failed too (the state is recorded unsettled: the next apply writes them)...
            const carriedOn = world.trail.includes('publish final (maps failed)') && world.trail.includes('write');
            expect(world.files).toEqual(carriedOn ? applied?.layout : filesBefore);
            // ...and the recorded state is one HAProxy holds: every backend it says is occupied is
            // served for that target (exactly so unless runtime commands left HAProxy uncertain).
            const recorded = servedBy(applied?.layout ?? EMPTY_LAYOUT);
            for (const [backend, key] of recorded) expect(world.haproxy.get(backend)).toBe(key);
            if (applied !== undefined && !applied.uncertain) expect(world.haproxy).toEqual(recorded);
            // The agent's table is a subset of it (the interim), so the same desired state is applied again,
            // and holds nothing back: no connection waits for a target that is not coming.
            for (const [backend, key] of world.agent) expect(recorded.get(backend)).toBe(key);
            expect(world.pendingNow, `after ${world.trail.join(' > ')}`).toEqual([]);
            expect(applied?.settled).toBe(false);
          }
          if (!live && applied !== undefined) {
            // HAProxy starts on the first generation's files.
            live = world.live = true;
            world.haproxy = servedBy(world.files ?? EMPTY_LAYOUT);
            world.boundary('start');
          }
        }
      }),
      { numRuns: 400 },
    );
  });
});
