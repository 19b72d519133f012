// The layout: which HAProxy backend serves which target of which tenant, plus the spare backends
// kept free so that a new tenant can be added through the runtime API without a reload.
//
// Backend names never change while a tenant target lives: the agent names backends, and a name
// that moved between reloads could send a connection to another tenant's server. Tenants placed
// at a reload get a readable name (pg.<tenant>.<target>); tenants added at runtime take a spare
// (pg.spare.<n>) and keep it. Freed spares rest in quarantine before reuse, so a verdict computed
// just before a tenant left can never reach the next occupant's server.

import type { BackendTls, Endpoint, HealthCheck, Tenant } from './model.js';
import { deepEqual } from './equal.js';
import { backendName } from '../../agent/src/index.js';

export interface Occupant {
  readonly tenant: string;
  readonly target: string;
  /** The (first) server. */
  readonly endpoint: Endpoint;
  readonly maxconn?: number;
  /** Every server of a cluster target (Patroni); absent for a single server. */
  readonly members?: readonly Endpoint[];
  readonly check?: HealthCheck;
  readonly maxqueue?: number;
  readonly tls?: BackendTls;
}

export type BackendState =
  | { readonly kind: 'occupied'; readonly occupant: Occupant }
  /** A spare, ready to be taken. */
  | { readonly kind: 'free' }
  /** Just vacated: its server is in maintenance; reusable once `until` has passed. */
  | { readonly kind: 'resting'; readonly until: number; readonly was: Occupant };

export interface LayoutBackend {
  readonly name: string;
  readonly spare: boolean;
  readonly state: BackendState;
}

export interface Layout {
  /** In rendering order. */
  readonly backends: readonly LayoutBackend[];
  /** Next spare index, so spare names are never reused for a different backend definition. */
  readonly nextSpare: number;
}

export const EMPTY_LAYOUT: Layout = { backends: [], nextSpare: 0 };

export function targetKey(tenant: string, target: string): string {
  return `${tenant}\0${target}`;
}

/** Every (tenant, target) a snapshot wants, with its endpoint. */
export function desiredOccupants(tenants: readonly Tenant[]): Map<string, Occupant> {
  const out = new Map<string, Occupant>();
  for (const t of tenants) {
    for (const [target, spec] of Object.entries(t.targets)) {
      const o: { -readonly [K in keyof Occupant]: Occupant[K] } = { tenant: t.id, target, endpoint: { host: spec.host, port: spec.port } };
      if (t.maxconn !== undefined) o.maxconn = t.maxconn;
      if (spec.members !== undefined) o.members = spec.members;
      if (spec.check !== undefined) o.check = spec.check;
      if (t.maxqueue !== undefined) o.maxqueue = t.maxqueue;
      if (spec.tls !== undefined) o.tls = spec.tls;
      out.set(targetKey(t.id, target), o);
    }
  }
  return out;
}

export function sameOccupant(a: Occupant, b: Occupant): boolean {
  return a.tenant === b.tenant && a.target === b.target && a.endpoint.host === b.endpoint.host && a.endpoint.port === b.endpoint.port && a.maxconn === b.maxconn && sameShape(a, b);
}

/** Whether two occupants agree on what only a reload can change: members, health check, queue limit and TLS. */
export function sameShape(a: Occupant, b: Occupant): boolean {
  return deepEqual(a.members, b.members) && deepEqual(a.check, b.check) && a.maxqueue === b.maxqueue && deepEqual(a.tls, b.tls);
}

/** A spare holds one plain server with a TCP check and no queue limit: only such a target fits at runtime. */
export function fitsSpare(o: Occupant): boolean {
  return o.members === undefined && (o.check === undefined || o.check.kind === 'tcp') && o.maxqueue === undefined && o.tls === undefined;
}

/**
 * A fresh layout for a (re)load: every wanted target keeps the backend it has (occupied or resting
 * under the same tenant and target), new ones get pg.<tenant>.<target>, and spares are topped up to
 * `spares`. Resting and free backends beyond that are dropped: after a reload, nothing names them.
 */
export function layoutForReload(current: Layout, wanted: ReadonlyMap<string, Occupant>, spares: number): Layout {
  const backends: LayoutBackend[] = [];
  const placed = new Set<string>();
  const taken = new Set<string>();
  for (const b of current.backends) {
    if (b.state.kind !== 'occupied') continue;
    const key = targetKey(b.state.occupant.tenant, b.state.occupant.target);
    const want = wanted.get(key);
    if (want === undefined) continue;
    backends.push({ name: b.name, spare: b.spare, state: { kind: 'occupied', occupant: want } });
    placed.add(key);
    taken.add(b.name);
  }
  const fresh = [...wanted].filter(([key]) => !placed.has(key)).map(([, o]) => o);
  fresh.sort((a, b) => cmp(backendName(a.tenant, a.target), backendName(b.tenant, b.target)));
  for (const occupant of fresh) {
    let name = backendName(occupant.tenant, occupant.target);
    // A readable name can only be taken if no other backend holds it (it cannot, by construction,
    // but a hand-edited layout.json must not break the rule).
    for (let i = 2; taken.has(name); i++) name = `${backendName(occupant.tenant, occupant.target)}.${i}`;
    backends.push({ name, spare: false, state: { kind: 'occupied', occupant } });
    taken.add(name);
  }
  let nextSpare = current.nextSpare;
  const freeKept = current.backends.filter((b) => b.spare && b.state.kind === 'free').slice(0, spares);
  for (const b of freeKept) backends.push(b);
  for (let i = freeKept.length; i < spares; i++) backends.push({ name: `pg.spare.${nextSpare++}`, spare: true, state: { kind: 'free' } });
  return { backends, nextSpare };
}

/** Backend name per tenant and target, for the agent's route table: occupied backends only. */
export function routedBackends(layout: Layout): Map<string, Record<string, string>> {
  const out = new Map<string, Record<string, string>>();
  for (const b of layout.backends) {
    if (b.state.kind !== 'occupied') continue;
    const { tenant, target } = b.state.occupant;
    let targets = out.get(tenant);
    if (targets === undefined) out.set(tenant, (targets = {}));
    targets[target] = b.name;
  }
  return out;
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
