// The control plane's plan: from what is applied and what is desired, the ordered steps that take
// the running system from one to the other with the least disruption the change allows, keeping
// the agent and HAProxy in agreement at every step boundary: the agent forgets vacated backends
// before HAProxy changes them (interim table) and learns new ones only after HAProxy has them
// (final table). Pure: states in, steps out; execute.ts performs them and rolls back.

import { isIP } from 'node:net';
import type { RouteTableDocument } from '../../agent/src/index.js';
import { deepEqual } from './equal.js';
import { desiredOccupants, layoutForReload, type Layout, type Occupant } from './layout.js';
import type { Deployment, TenantSnapshot } from './model.js';
import { planChange, type RuntimeOp } from './plan.js';
import { routeTableDocument } from './render/route-table.js';

/** What the sources want, after validation and the operator's switches. */
export interface Desired {
  readonly deployment: Deployment;
  readonly snapshot: TenantSnapshot;
}

/** What the running system holds. */
export interface Applied extends Desired {
  readonly layout: Layout;
  /**
   * False after a failed transition: the agent may be left on an interim table, so even the same
   * desired state must be applied again.
   */
  readonly settled: boolean;
  /**
   * HAProxy may hold runtime changes `layout` does not show (runtime commands failed part-way and
   * the fallback reload failed too): only a reload makes its state known again.
   */
  readonly uncertain: boolean;
}

export interface ReconcileContext {
  readonly now: number;
  /** Spare backends kept ready for additions. */
  readonly spares: number;
  /** How long a vacated spare rests before another tenant may take it. */
  readonly restMs: number;
  /** HAProxy runs on the state dir's files: changes go through its sockets. */
  readonly live: boolean;
  /** The caller's own HAProxy start checks the first files (no separate `haproxy -c`). */
  readonly startsHaproxy: boolean;
  /** With nothing applied yet: the layout of a previous run (layout.json), so names survive restarts. */
  readonly previousLayout: Layout;
  /** The verdict memo is on: its keys depend on the routing policy, so a policy change reloads (docs/memo.md). */
  readonly memo?: boolean;
}

/** The files of one generation: haproxy.cfg and spoe.conf are rendered from these by the executor. */
export interface GenerationPlan {
  readonly deployment: Deployment;
  readonly layout: Layout;
  readonly routes: RouteTableDocument;
}

/** The generation of a layout: its route table is computed here, once. */
export function generationOf(deployment: Deployment, snapshot: TenantSnapshot, layout: Layout): GenerationPlan {
  return { deployment, layout, routes: routeTableDocument(deployment, snapshot, layout) };
}

export type Step =
  /** Give the agent this table. */
  | { readonly kind: 'publish'; readonly phase: PublishPhase; readonly routes: RouteTableDocument }
  /**
   * Runtime API commands; when they fail, the steps of `fallback` replace every later step (a
   * function, so that the reload's layout and table cost nothing unless they are needed).
   */
  | { readonly kind: 'runtime'; readonly ops: readonly RuntimeOp[]; readonly fallback: () => readonly Step[] }
  /**
   * A rollback point: the files as they are now are kept; a later failure puts them back and
   * records `applied` as the running state.
   */
  | { readonly kind: 'savepoint'; readonly applied: Applied }
  /**
   * Render, check (with `haproxy -c` when `check`) and write a generation. `required`: a failure
   * fails the transition; else it is only reported (the running state is already right).
   */
  | { readonly kind: 'write'; readonly generation: GenerationPlan; readonly check: boolean; readonly required: boolean }
  /** A graceful reload of HAProxy onto the written files. */
  | { readonly kind: 'reload'; readonly reasons: readonly string[] }
  /** The transition is done: this is what runs now. */
  | { readonly kind: 'commit'; readonly applied: Applied };

export type TransitionKind = 'initial' | 'runtime' | 'agent' | 'reload';

/** A table before HAProxy's change (interim), after it (final), or after a failed change (rollback). */
export type PublishPhase = 'interim' | 'final' | 'rollback';

export interface Transition {
  readonly kind: TransitionKind;
  readonly steps: readonly Step[];
  /** Why a reload (kind 'reload'). */
  readonly reasons: readonly string[];
  /** Runtime operations (kind 'runtime'). */
  readonly ops: readonly RuntimeOp[];
  /**
   * The table the agent gets when the transition fails before its final table: the interim one
   * without pending targets (nothing is coming, so connections to them are answered at once
   * rather than held). Absent for a first generation.
   */
  readonly rollback?: RouteTableDocument;
}

/** Whether `desired` is what runs already (nothing to do). */
export function isApplied(applied: Applied | undefined, desired: Desired): boolean {
  return applied !== undefined && applied.settled && deepEqual(applied.deployment, desired.deployment) && deepEqual(applied.snapshot.tenants, desired.snapshot.tenants);
}

export function reconcile(applied: Applied | undefined, desired: Desired, ctx: ReconcileContext): Transition {
  const { deployment, snapshot } = desired;
  const wanted = desiredOccupants(snapshot.tenants);
  const generation = (layout: Layout): GenerationPlan => generationOf(deployment, snapshot, layout);
  const done = (layout: Layout): Applied => ({ deployment, snapshot, layout, settled: true, uncertain: false });

  if (applied === undefined || !ctx.live) {
    // Nothing runs on these files yet: render the whole state; HAProxy will start from it.
    const g = generation(layoutForReload(applied?.layout ?? ctx.previousLayout, wanted, ctx.spares));
    const steps: Step[] = [
      { kind: 'write', generation: g, check: !ctx.startsHaproxy, required: true },
      { kind: 'publish', phase: 'final', routes: g.routes },
      { kind: 'commit', applied: done(g.layout) },
    ];
    return { kind: 'initial', steps, reasons: [], ops: [] };
  }

  const plan = planChange(applied.layout, wanted, { now: ctx.now, spares: ctx.spares, restMs: ctx.restMs, forcedReload: forcedReasons(applied, deployment, wanted, ctx.memo === true) });
  const interim: Step = { kind: 'publish', phase: 'interim', routes: routeTableDocument(deployment, snapshot, plan.interim) };
  // A failure restores the files and keeps the running state: the agent gets the interim table
  // without its pending targets, a subset of what the still-running workers have.
  const rollbackTable = routeTableDocument(deployment, snapshot, plan.interim, { pending: false });
  const unsettled: Applied = { ...applied, settled: false };
  const reload = (layout: Layout, reasons: readonly string[], rollback: Applied): Step[] => {
    const g = generation(layout);
    return [
      { kind: 'savepoint', applied: rollback },
      { kind: 'write', generation: g, check: true, required: true },
      { kind: 'reload', reasons },
      { kind: 'publish', phase: 'final', routes: g.routes },
      { kind: 'commit', applied: done(g.layout) },
    ];
  };

  if (plan.reloadReasons.length > 0) {
    return { kind: 'reload', steps: [interim, ...reload(plan.layout, plan.reloadReasons, unsettled)], reasons: plan.reloadReasons, ops: [], rollback: rollbackTable };
  }
  const g = generation(plan.layout);
  // Should the commands fail part-way, HAProxy's backends are known only up to the interim
  // (what the agent may name); a reload of the whole desired state follows.
  const partial: Applied = { ...applied, layout: plan.interim, settled: false, uncertain: true };
  const steps: Step[] = [interim];
  if (plan.ops.length > 0) steps.push({ kind: 'runtime', ops: plan.ops, fallback: () => reload(layoutForReload(applied.layout, wanted, ctx.spares), ['runtime API failed'], partial) });
  steps.push(
    { kind: 'publish', phase: 'final', routes: g.routes },
    { kind: 'commit', applied: done(plan.layout) },
    // The files must say the same, or the next reload would undo it. Written after the agent
    // learned the change, so `haproxy -c` is not on the path to routable.
    { kind: 'write', generation: g, check: true, required: false },
  );
  return { kind: plan.ops.length === 0 ? 'agent' : 'runtime', steps, reasons: [], ops: plan.ops, rollback: rollbackTable };
}

/** Reasons outside the tenants' backends that force a reload. */
function forcedReasons(applied: Applied, deployment: Deployment, wanted: ReadonlyMap<string, Occupant>, memo: boolean): string[] {
  const forced: string[] = [];
  // A new worker starts with an empty memo; a policy change otherwise leaves entries the old
  // policy chose, and an in-flight decision could write one after any clearing.
  if (memo && !deepEqual(applied.deployment.policy, deployment.policy)) forced.push('routing policy changed (the verdict memo starts afresh)');
  if (applied.uncertain) forced.push('a previous apply failed part-way through the runtime API');
  if (!deepEqual(applied.deployment.listeners, deployment.listeners)) forced.push('listeners changed');
  if (!deepEqual(applied.deployment.replicas, deployment.replicas)) forced.push('replicas changed');
  for (const o of wanted.values()) {
    // The runtime API takes addresses, not names: a host name needs the reload's resolver set-up.
    if (isIP(o.endpoint.host) === 0 && !sameEndpointPlaced(applied.layout, o)) {
      forced.push(`${o.tenant}/${o.target} is at a host name (${o.endpoint.host})`);
      break;
    }
  }
  return forced;
}

/** Already there at this host and port: nothing for the runtime API to set (a new port would be a `set server addr <host name>`, which HAProxy refuses). */
function sameEndpointPlaced(layout: Layout, o: Occupant): boolean {
  return layout.backends.some(
    (b) => b.state.kind === 'occupied' && b.state.occupant.tenant === o.tenant && b.state.occupant.target === o.target && b.state.occupant.endpoint.host === o.endpoint.host && b.state.occupant.endpoint.port === o.endpoint.port,
  );
}
