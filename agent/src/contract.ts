// The contract between the generator and the agent: what routes.json holds (the route table
// document), how a tenant target's HAProxy backend is named, and where the agent listens. The
// generator writes what this module describes and the agent reads it; neither side reaches into the
// other's internals for these (the generator imports them through agent/src/index.ts).

import type { RouteTable, RoutingPolicy, TenantRoute } from './decision/types.js';

export type { KeySource, RouteTable, RoutingPolicy, TargetName, TenantLimits, TenantRoute, UserKeyRule } from './decision/types.js';

/** A TCP address: where a server listens or where a client connects. */
export interface Endpoint {
  readonly host: string;
  readonly port: number;
}

/**
 * Where the agent serves SPOP: TCP, or this unix socket instead of host:port (HAProxy on the same
 * host: no TCP stack on the per-connection round trip; a stale socket file is replaced, mode 0600).
 * `host` still names where /healthz and /metrics listen.
 */
export interface SpopEndpoint extends Endpoint {
  readonly socket?: string;
}

/** The HAProxy backend that serves one target of one tenant. Ids and targets are validated, so the
 * name only ever holds [a-z0-9-.]. */
export function backendName(tenantId: string, target: string): string {
  return `pg.${tenantId}.${target}`;
}

/** routes.json: the route table as the generator writes it and the agent reads it. */
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
