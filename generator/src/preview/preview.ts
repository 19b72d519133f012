// `pgroute plan`: what applying a desired state would do to the running HAProxy, computed with the
// same reconcile the pipeline applies with (reconcile.ts), so the plan and the apply cannot
// disagree. Nothing is performed: the transition's steps are only read. Pure.

import { deepEqual } from '../equal.js';
import type { RefusedTenant } from '../model.js';
import { opCommands } from '../haproxy/runtime.js';
import { reconcile, type Applied, type Desired, type GenerationPlan, type ReconcileContext, type Transition } from '../reconcile.js';
import { tenantChanges, type TenantChange } from './changes.js';

/**
 * How the change would be applied: nothing to do; a first start (nothing applied on the state
 * dir); the agent's table only (enable, disable, routing); runtime API commands; or a reload.
 */
export type PreviewKind = 'unchanged' | 'initial' | 'agent' | 'runtime' | 'reload';

export interface ChangePreview {
  readonly kind: PreviewKind;
  /** routes.json's version now (absent: nothing applied) and the one the change would publish. */
  readonly appliedVersion?: string;
  readonly desiredVersion: string;
  readonly tenants: { readonly applied: number; readonly desired: number };
  readonly changes: readonly TenantChange[];
  /** The runtime API commands, in order (kind 'runtime'). */
  readonly commands: readonly string[];
  /** Why a reload (kind 'reload'). */
  readonly reloadReasons: readonly string[];
  /** Definitions the sources refused: never applied. */
  readonly refused: readonly RefusedTenant[];
  /** What else the operator should know (routing policy changed, listeners unknown, ...). */
  readonly notes: readonly string[];
}

export interface PreviewInput {
  /** Undefined: nothing applied on the state dir yet. */
  readonly applied?: { readonly state: Applied; readonly version: string; readonly listenersKnown: boolean };
  readonly desired: Desired;
  readonly ctx: Omit<ReconcileContext, 'live' | 'startsHaproxy'>;
}

/**
 * The generation (layout, route table, deployment) the transition would write: its last write.
 * Every transition writes one, even one that needs no HAProxy command (the files stay current).
 */
function writtenGeneration(t: Transition): GenerationPlan {
  let last: GenerationPlan | undefined;
  for (const s of t.steps) if (s.kind === 'write') last = s.generation;
  if (last === undefined) throw new Error('a transition that writes no generation (a bug in reconcile)');
  return last;
}

/** The version of the table the transition would leave the agent with. */
function finalVersion(t: Transition): string {
  for (const s of t.steps) {
    if (s.kind === 'publish' && s.phase === 'final') return s.routes.version;
  }
  throw new Error('a transition without a final table (a bug in reconcile)');
}

export function previewChange(input: PreviewInput): ChangePreview {
  return previewPlan(input).preview;
}

/** The preview and the generation it would write (what `pgroute plan` has HAProxy check). */
export function previewPlan(input: PreviewInput): { preview: ChangePreview; generation: GenerationPlan } {
  const { applied, desired } = input;
  const transition = reconcile(applied?.state, desired, { ...input.ctx, live: applied !== undefined, startsHaproxy: false });
  const changes = tenantChanges(applied?.state.snapshot.tenants ?? [], desired.snapshot.tenants);
  const notes: string[] = [];
  if (applied !== undefined && !applied.listenersKnown) notes.push('the state dir has no deployment.json (written by an older pgroute): listener changes are not shown');
  if (applied !== undefined && !deepEqual(applied.state.deployment.policy, desired.deployment.policy)) notes.push('the routing policy (routing: keys, user pattern, default target, ...) changes: the agent decides differently from then on');
  const listenersSame = applied === undefined || deepEqual(applied.state.deployment.listeners, desired.deployment.listeners);
  const unchanged = applied !== undefined && changes.length === 0 && listenersSame && notes.every((n) => !n.startsWith('the routing policy'));
  const base = {
    ...(applied === undefined ? {} : { appliedVersion: applied.version }),
    desiredVersion: finalVersion(transition),
    tenants: { applied: applied?.state.snapshot.tenants.length ?? 0, desired: desired.snapshot.tenants.length },
    changes,
    refused: desired.snapshot.refused,
    notes,
  };
  const generation = writtenGeneration(transition);
  if (unchanged) return { preview: { kind: 'unchanged', ...base, commands: [], reloadReasons: [] }, generation };
  return { preview: { kind: transition.kind, ...base, commands: transition.ops.flatMap(opCommands), reloadReasons: transition.reasons }, generation };
}
