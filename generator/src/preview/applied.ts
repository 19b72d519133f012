// What runs, as the state dir records it: the Applied state of the last generation, rebuilt from
// routes.json (tenants, enabled flags, policy), layout.json (each target's backend and occupant) and
// deployment.json (listeners). The three are written together by every generation (generate.ts),
// so they describe one state. Pure: parsed files in, Applied out.

import type { RouteTableDocument } from '../../../agent/src/index.js';
import type { Layout, Occupant } from '../layout.js';
import type { Deployment, Target, Tenant } from '../model.js';
import type { Applied } from '../reconcile.js';

export interface AppliedFiles {
  readonly routes: RouteTableDocument;
  readonly layout: Layout;
  /** Absent in a state dir written before deployment.json existed: listeners are then unknown. */
  readonly deployment?: Deployment;
}

/** The tenant a set of occupants describes (every target of a tenant carries the tenant's limits). */
function tenantOf(id: string, enabled: boolean, occupants: readonly Occupant[]): Tenant {
  const targets: Record<string, Target> = {};
  for (const o of occupants) {
    const t: { -readonly [K in keyof Target]: Target[K] } = { host: o.endpoint.host, port: o.endpoint.port };
    if (o.members !== undefined) t.members = o.members;
    if (o.check !== undefined) t.check = o.check;
    if (o.tls !== undefined) t.tls = o.tls;
    targets[o.target] = t;
  }
  const tenant: { -readonly [K in keyof Tenant]: Tenant[K] } = { id, enabled, targets };
  const first = occupants[0];
  if (first?.maxconn !== undefined) tenant.maxconn = first.maxconn;
  if (first?.maxqueue !== undefined) tenant.maxqueue = first.maxqueue;
  return tenant;
}

/**
 * The applied state. `listenersKnown` false: deployment.json was missing and `fallback`'s listeners
 * stand in for the applied ones (a listener change then goes unseen).
 */
export function appliedOf(files: AppliedFiles, fallback: Deployment): { applied: Applied; listenersKnown: boolean } {
  const occupied = new Map<string, Occupant>();
  for (const b of files.layout.backends) if (b.state.kind === 'occupied') occupied.set(b.name, b.state.occupant);
  const tenants: Tenant[] = [];
  for (const route of files.routes.tenants) {
    const occupants = Object.values(route.backends)
      .map((backend) => occupied.get(backend))
      .filter((o): o is Occupant => o !== undefined);
    if (occupants.length > 0) tenants.push(tenantOf(route.id, route.enabled, occupants));
  }
  tenants.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const deployment: Deployment = { listeners: files.deployment?.listeners ?? fallback.listeners, policy: files.routes.policy };
  return {
    applied: { deployment, snapshot: { tenants, refused: [] }, layout: files.layout, settled: true, uncertain: false },
    listenersKnown: files.deployment !== undefined,
  };
}
