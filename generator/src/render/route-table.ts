// The agent's routing table, derived from the same snapshot as haproxy.cfg so that the agent never
// names a backend HAProxy lacks.

import { createHash } from 'node:crypto';
import type { RouteTableDocument, TenantRoute } from '../../../agent/src/index.js';
import type { Deployment, TenantSnapshot } from '../model.js';
import { routedBackends, type Layout } from '../layout.js';
import { effectiveLimits } from '../policy.js';

/**
 * The agent's table for a layout: a tenant is routable to the targets that have a backend in the
 * layout, with the snapshot's enabled flag. A target still waiting for its backend (the interim
 * table while a change adds it) is named as pending: its connections are held until the table
 * that names its backend, rather than refused as unknown. `pending: false`: not named at all (the
 * table a failed change leaves: nothing is coming, so nothing may wait).
 */
export function routeTableDocument(deployment: Deployment, snapshot: TenantSnapshot, layout: Layout, opts: { readonly pending?: boolean } = {}): RouteTableDocument {
  const placed = routedBackends(layout);
  const tenants: TenantRoute[] = [];
  for (const t of snapshot.tenants) {
    const backends = placed.get(t.id) ?? {};
    const pending = opts.pending === false ? [] : Object.keys(t.targets).filter((target) => !Object.hasOwn(backends, target)).sort();
    if (Object.keys(backends).length === 0 && pending.length === 0) continue;
    const sorted = Object.fromEntries(Object.keys(backends).sort().map((target) => [target, backends[target] as string]));
    const route: TenantRoute = { id: t.id, enabled: t.enabled, backends: sorted, limits: effectiveLimits(t.limits) };
    const withAllow = t.allow === undefined ? route : { ...route, allow: t.allow };
    const withPending = pending.length === 0 ? withAllow : { ...withAllow, pending };
    tenants.push(t.paused === true ? { ...withPending, paused: true } : withPending);
  }
  const body = { policy: deployment.policy, tenants };
  const version = createHash('sha256').update(JSON.stringify(body)).digest('hex').slice(0, 16);
  return { version, ...body };
}
