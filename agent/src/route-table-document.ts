// routes.json: the route table as the generator writes it and the agent reads it.

import type { RouteTable, RoutingPolicy, TenantRoute } from './decision/types.js';

export interface RouteTableDocument {
  readonly version: string;
  readonly policy: RoutingPolicy;
  readonly tenants: readonly TenantRoute[];
}

export function toRouteTable(doc: RouteTableDocument): RouteTable {
  return { version: doc.version, policy: doc.policy, tenants: new Map(doc.tenants.map((t) => [t.id, t])) };
}

/** Checks the shape of a parsed routes.json; returns the problem, or undefined when usable. */
export function routeTableDocumentProblem(value: unknown): string | undefined {
  if (typeof value !== 'object' || value === null) return 'not a JSON object';
  const v = value as Record<string, unknown>;
  if (typeof v.version !== 'string') return 'version is missing';
  const p = v.policy as Record<string, unknown> | undefined;
  if (typeof p !== 'object' || p === null || !Array.isArray(p.keys) || typeof p.defaultTarget !== 'string') return 'policy is missing or incomplete';
  if (!Array.isArray(v.tenants)) return 'tenants is not a list';
  for (const t of v.tenants as unknown[]) {
    const tr = t as Record<string, unknown> | null;
    if (typeof tr !== 'object' || tr === null || typeof tr.id !== 'string' || typeof tr.enabled !== 'boolean' || typeof tr.backends !== 'object' || tr.backends === null) {
      return `tenant entry ${JSON.stringify(t)?.slice(0, 80)} is incomplete`;
    }
  }
  return undefined;
}
