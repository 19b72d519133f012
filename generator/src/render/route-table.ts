// The agent's routing table, derived from the same snapshot as haproxy.cfg so that the agent never
// names a backend HAProxy lacks.

import { createHash } from 'node:crypto';
import type { TenantRoute } from '../../../agent/src/decision/types.js';
import type { RouteTableDocument } from '../../../agent/src/route-table-document.js';
import type { Deployment, TenantSnapshot } from '../model.js';
import { backendName } from './backend-name.js';

export function routeTableDocument(deployment: Deployment, snapshot: TenantSnapshot): RouteTableDocument {
  const tenants = snapshot.tenants.map((t): TenantRoute => ({
    id: t.id,
    enabled: t.enabled,
    backends: Object.fromEntries(Object.keys(t.targets).sort().map((target) => [target, backendName(t.id, target)])),
  }));
  const body = { policy: deployment.policy, tenants };
  const version = createHash('sha256').update(JSON.stringify(body)).digest('hex').slice(0, 16);
  return { version, ...body };
}
