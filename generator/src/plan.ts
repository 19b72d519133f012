// Plans one change with the least disruption it allows: runtime-API operations when the set of
// backends can stay as it is (moves, limits, removals, additions into spares), a reload only when
// it cannot. Pure: layouts and snapshots in, a plan out.

import { fitsSpare, layoutForReload, sameOccupant, sameShape, targetKey, type Layout, type LayoutBackend, type Occupant } from './layout.js';

export type RuntimeOp =
  /** Vacated: put its servers in maintenance (sessions already open carry on). `servers`: how many
   * the backend has (a cluster's members), 1 when absent. */
  | { readonly kind: 'park'; readonly backend: string; readonly servers?: number }
  /** Take a spare (or a resting backend of the same target) for a new occupant and make it ready. */
  | { readonly kind: 'place'; readonly backend: string; readonly occupant: Occupant }
  /** Same occupant, new address: new connections go to the new address. */
  | { readonly kind: 'move'; readonly backend: string; readonly occupant: Occupant }
  | { readonly kind: 'limit'; readonly backend: string; readonly maxconn: number; readonly servers?: number };

export interface Plan {
  /** The layout once the plan is applied. */
  readonly layout: Layout;
  /**
   * What the agent may route to while the plan is being applied: the current layout minus every
   * backend being vacated. New placements join only once HAProxy has them (the final layout).
   */
  readonly interim: Layout;
  readonly ops: readonly RuntimeOp[];
  /** Empty when no reload is needed; else why. */
  readonly reloadReasons: readonly string[];
}

export interface PlanOptions {
  readonly now: number;
  /** Spare backends kept ready for additions. */
  readonly spares: number;
  /** How long a vacated spare rests before another tenant may take it. */
  readonly restMs: number;
  /** Reasons outside the tenants that force a reload (listeners, settings, first start). */
  readonly forcedReload: readonly string[];
}

export function planChange(current: Layout, wanted: ReadonlyMap<string, Occupant>, opts: PlanOptions): Plan {
  const ops: RuntimeOp[] = [];
  const backends: LayoutBackend[] = [];
  const placed = new Set<string>();
  const reshaped: string[] = [];
  for (const b of current.backends) {
    const s = b.state;
    if (s.kind === 'occupied') {
      const key = targetKey(s.occupant.tenant, s.occupant.target);
      const want = wanted.get(key);
      if (want === undefined) {
        ops.push({ kind: 'park', backend: b.name, ...serverCount(s.occupant) });
        backends.push({ ...b, state: { kind: 'resting', until: opts.now + opts.restMs, was: s.occupant } });
        continue;
      }
      placed.add(key);
      if (!sameShape(want, s.occupant)) reshaped.push(`${want.tenant}/${want.target}`);
      if (want.endpoint.host !== s.occupant.endpoint.host || want.endpoint.port !== s.occupant.endpoint.port) ops.push({ kind: 'move', backend: b.name, occupant: want });
      if (want.maxconn !== s.occupant.maxconn) ops.push({ kind: 'limit', backend: b.name, maxconn: want.maxconn ?? 0, ...serverCount(want) });
      backends.push(sameOccupant(want, s.occupant) ? b : { ...b, state: { kind: 'occupied', occupant: want } });
    } else if (s.kind === 'resting' && b.spare && s.until <= opts.now && fitsSpare(s.was)) {
      // Only a backend HAProxy has as one plain server can become a spare again: a runtime
      // placement sets server s1 only, so members or a check of the previous occupant would stay.
      backends.push({ ...b, state: { kind: 'free' } });
    } else backends.push(b);
  }
  const interim: Layout = { backends: backends.slice(), nextSpare: current.nextSpare };

  const unplaced: Occupant[] = [];
  for (const [key, occupant] of wanted) {
    if (placed.has(key)) continue;
    if (!fitsSpare(occupant)) {
      unplaced.push(occupant);
      continue;
    }
    // The same target coming back takes its old backend again; else the lowest free spare.
    // (Only a plain single-server backend: the same target may come back without its members.)
    let at = backends.findIndex((b) => b.state.kind === 'resting' && targetKey(b.state.was.tenant, b.state.was.target) === key && fitsSpare(b.state.was));
    if (at < 0) at = backends.findIndex((b) => b.spare && b.state.kind === 'free');
    const b = backends[at];
    if (b === undefined) {
      unplaced.push(occupant);
      continue;
    }
    backends[at] = { ...b, state: { kind: 'occupied', occupant } };
    ops.push({ kind: 'place', backend: b.name, occupant });
  }

  const reloadReasons = [...opts.forcedReload];
  if (reshaped.length > 0) reloadReasons.push(`members, health check or queue limit changed for ${reshaped.slice(0, 3).join(', ')}${reshaped.length > 3 ? ', ...' : ''}`);
  if (unplaced.length > 0) reloadReasons.push(`${unplaced.length} new target(s) that no free spare backend fits (${unplaced.slice(0, 3).map((o) => `${o.tenant}/${o.target}`).join(', ')}${unplaced.length > 3 ? ', ...' : ''})`);
  if (reloadReasons.length > 0) {
    return { layout: layoutForReload(current, wanted, opts.spares), interim, ops: [], reloadReasons };
  }
  return { layout: { backends, nextSpare: current.nextSpare }, interim, ops, reloadReasons };
}

/** A cluster backend has one server per member; the runtime commands must reach each of them. */
function serverCount(o: Occupant): { servers?: number } {
  const n = o.members?.length ?? 1;
  return n > 1 ? { servers: n } : {};
}
