// The agent's routing table, derived from the same snapshot as haproxy.cfg so that the agent never
// names a backend HAProxy lacks.

import { createHash } from 'node:crypto';
import type { RouteTableDocument, TenantRoute } from '../../../agent/src/index.js';
import type { Deployment, TenantSnapshot } from '../model.js';
import { routedBackends, type Layout } from '../layout.js';
import { effectiveLimits } from '../policy.js';

/**
 * The agent's table for a layout: a tenant is routable to the targets that have a backend in the
 * layout (a target still waiting for its backend is not named), with the snapshot's enabled flag.
 */
export function routeTableDocument(deployment: Deployment, snapshot: TenantSnapshot, layout: Layout): RouteTableDocument {
  const placed = routedBackends(layout);
  const tenants: TenantRoute[] = [];
  for (const t of snapshot.tenants) {
    const backends = placed.get(t.id);
    if (backends === undefined) continue;
    const sorted = Object.fromEntries(Object.keys(backends).sort().map((target) => [target, backends[target] as string]));
    const route: TenantRoute = { id: t.id, enabled: t.enabled, backends: sorted, limits: effectiveLimits(t.limits) };
    const withAllow = t.allow === undefined ? route : { ...route, allow: t.allow };
    tenants.push(t.paused === true ? { ...withAllow, paused: true } : withAllow);
  }
  const body = { policy: deployment.policy, tenants };
  const version = createHash('sha256').update(JSON.stringify(body)).digest('hex').slice(0, 16);
  return { version, ...body };
}
