// The contract between the generator and the agent: what routes.json holds (the route table
// document), how a tenant target's HAProxy backend is named, and where the agent listens. The
// generator writes what this module describes and the agent reads it; neither side reaches into the
// other's internals for these (the generator imports them through agent/src/index.ts).

import { createHash } from 'node:crypto';
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

/** Distinct destinations a client address's cancel record holds in one replica's cancel table. */
export const CANCEL_RECORDS = 4;

/**
 * Most destinations one cancel goes to (the client's own connection and its copies), whatever the
 * number of replicas' tables the records come from (docs/cancel.md).
 */
export const CANCEL_MAX_DESTINATIONS = 8;

/**
 * The cancel message's arguments per cancel table (one per replica; table j in the order the
 * generator lists them, haproxy/partials/cancel-message.hbs): integer `n<j>`, how many ids were
 * ever written to the address's record there (gpc0), and integers `g<j>_0`..`g<j>_7`, its words
 * gpt0..gpt7. Named here because the generator renders them and the agent reads them.
 */
export const CANCEL_WRITTEN_ARG_PREFIX = 'n';
export const CANCEL_WORD_ARG_PREFIX = 'g';

export function cancelTableArgNames(j: number): { readonly written: string; readonly words: readonly string[] } {
  return {
    written: `${CANCEL_WRITTEN_ARG_PREFIX}${j}`,
    words: Array.from({ length: 2 * CANCEL_RECORDS }, (_, i) => `${CANCEL_WORD_ARG_PREFIX}${j}_${i}`),
  };
}

/**
 * The cancel id of a tenant target: the same on every replica (backend names are not: they come
 * from each replica's layout history), so HAProxy records it and the agent maps it back to this
 * replica's backend. Two 32-bit words (a stick table's gpt holds 32 bits) of
 * SHA-256("<tenant>/<target>"), the first with its lowest bit set so that a recorded id is never
 * the empty slot (0, 0): 63 bits, so at 10,000 targets two of them collide with probability about
 * 5e-12. The agent sends it with every startup's verdict (server/verdict-actions.ts, `ca`, `cb`)
 * and HAProxy records it (haproxy/partials/cancel-record.hbs); a '/' appears in neither a tenant id
 * nor a target name, so the text is unambiguous.
 */
export function cancelId(tenantId: string, target: string): readonly [number, number] {
  const h = createHash('sha256').update(`${tenantId}/${target}`).digest();
  return [(h.readUInt32BE(0) | 1) >>> 0, h.readUInt32BE(4)];
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
    if (tr.pending !== undefined && !(Array.isArray(tr.pending) && tr.pending.every((x) => typeof x === 'string'))) {
      return `tenant entry ${JSON.stringify(tr.id).slice(0, 80)}: pending is not a list of target names`;
    }
  }
  return undefined;
}
