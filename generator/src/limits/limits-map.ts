// The limits map (docs/policy.md "Refusals over a limit"): the ErrorResponse of every admission limit
// of every tenant, which HAProxy reads only when it refuses a connection over that limit
// (haproxy/partials/limit-refusals.hbs), for the agent's verdicts and the verdict memo's hits alike.
// The agent sends only the limits' values with a route; before, it sent these ~150-byte messages
// with every verdict for HAProxy to store per connection and almost never read.
//
// A key names its content: "<tenant>/<kind>/<value>" (the message says the tenant and the value, and
// nothing else), so a key's value never changes. A limit change is a new key, added before the agent
// learns the new table and the old one removed after it (haproxy/map-sync.ts): every verdict, old or new,
// finds its own words. HAProxy's rules fall back to a generic 53300 when a key is missing anyway.
//
// Pure: a route table document in, map entries out.

import { limitErrorResponses, type LimitKind, type RouteTableDocument, type TenantLimits } from '../../../agent/src/index.js';

/** The kind's letter in a key, as limit-refusals.hbs spells it. */
export const LIMIT_KEY_KIND: Readonly<Record<LimitKind, string>> = { connections: 'c', rate: 'r', clientRate: 'a' };

/** The map key of a limit's refusal: HAProxy builds it from the tenant (the route's field, or txn.pgr.t) and the limit's variable. */
export function limitKey(tenant: string, kind: LimitKind, limit: number): string {
  return `${tenant}/${LIMIT_KEY_KIND[kind]}/${limit}`;
}

/** Every refusal of every tenant with limits (enabled or not: a verdict in flight may still need it): key -> base64 ErrorResponse. */
export function limitsEntries(routes: RouteTableDocument): ReadonlyMap<string, string> {
  const out = new Map<string, string>();
  for (const t of routes.tenants) {
    const limits: TenantLimits | undefined = t.limits;
    if (limits === undefined) continue;
    for (const r of limitErrorResponses(t.id, limits)) out.set(limitKey(t.id, r.kind, r.limit), r.response.toString('base64'));
  }
  return out;
}

/** The map file HAProxy loads at start (one "key value" line per entry). */
export function limitsMapFile(entries: ReadonlyMap<string, string>): string {
  const lines = ["# Rendered by pgroute: the ErrorResponses of the tenants' admission limits (docs/policy.md). Key: <tenant>/<c|r|a>/<limit>; value: base64."];
  for (const [k, v] of entries) lines.push(`${k} ${v}`);
  return `${lines.join('\n')}\n`;
}
