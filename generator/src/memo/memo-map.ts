// The verdict memo's map (docs/memo.md): which tenant targets HAProxy may route without asking the
// agent, and with which variables. HAProxy's memo table (haproxy/partials/memo-*.hbs) remembers,
// per digest of a startup's facts, only WHICH tenant target the agent chose (its cancel id, two
// words); this map says whether that target may still be routed from memory, and the exact
// variables the agent would set for it. A target leaves the map the moment its verdict could
// change (removed, moved to another backend, disabled, new limits, an allow-list): HAProxy then asks
// the agent again, so a stale memo entry can never route.
//
// Pure: a route table document in, map entries out (haproxy/map-sync.ts turns them into commands).

import { cancelId, ROUTE_SEPARATOR, verdictActions, VERDICT_VAR, type RouteTableDocument, type TenantRoute } from '../../../agent/src/index.js';

/** The keys of a tenant route and of a policy whose meaning the memo knows; anything else: memo off. */
// `pending` names targets without a backend (the interim table of a change): they get no entry, and
// the tenant's other targets keep theirs.
const TENANT_KEYS = new Set(['id', 'enabled', 'backends', 'limits', 'allow', 'pending']);
const LIMIT_KEYS = new Set(['maxClientConnections', 'maxConnectionRate', 'maxClientConnectionRate']);
const POLICY_KEYS = new Set(['keys', 'user', 'targetByPort', 'defaultTarget', 'revealDisabled', 'sni', 'tlsRequiredPorts']);

/** The map key of a tenant target: its cancel id as HAProxy's memo-lookup rules print it. */
export function memoKey(tenant: string, target: string): string {
  const [a, b] = cancelId(tenant, target);
  return `${a}:${b}`;
}

/**
 * Why a tenant's verdicts are not memoized, or undefined when they may be. The verdict of a
 * memoized target must depend on nothing but the facts in HAProxy's memo key (the startup packet,
 * port, TLS, SNI) and what this map holds: not on the client address (`allow`), not on anything
 * this module does not know (a field added to the route table later, such as a paused state).
 */
export function notMemoizable(t: TenantRoute): string | undefined {
  const unknown = Object.keys(t).find((k) => !TENANT_KEYS.has(k));
  if (unknown !== undefined) return `unknown route field ${unknown}`;
  if (t.enabled !== true) return 'disabled';
  if (t.allow !== undefined) return 'allowed networks (the verdict depends on the client address)';
  if (t.limits !== undefined) {
    const odd = Object.keys(t.limits).find((k) => !LIMIT_KEYS.has(k));
    if (odd !== undefined) return `unknown limit ${odd}`;
    if ((t.limits.maxClientConnectionRate ?? 0) > 0) return 'a per-address rate limit (its counter needs the stick counter the memo writes with)';
  }
  return undefined;
}

/**
 * The map value of one target: the route variable the agent sends for it (VERDICT_VAR.route,
 * agent/src/server/verdict-actions.ts routeValue()), which HAProxy splits by the same rules for a
 * hit as for the agent's answer (haproxy/partials/route-split.hbs). Undefined when the agent's
 * answer holds any other variable than that and the cancel id (the map's key), which a hit would not set.
 * The limits' ErrorResponses are not among them: HAProxy reads those from the limits map when it
 * refuses (generator/src/limits/limits-map.ts).
 */
function memoTargetValue(t: TenantRoute, target: string, backend: string): string | undefined {
  const actions = verdictActions(t.limits === undefined ? { kind: 'route', tenant: t.id, target, backend, cancel: false } : { kind: 'route', tenant: t.id, target, backend, cancel: false, limits: t.limits });
  let value: string | undefined;
  for (const a of actions) {
    const name = a.name.toString();
    // The cancel id is the map's key: a hit reads it from its memo entry (memo-lookup.hbs).
    if (name === VERDICT_VAR.cancelA || name === VERDICT_VAR.cancelB) continue;
    if (name !== VERDICT_VAR.route || value !== undefined || Buffer.isBuffer(a.value)) return undefined;
    value = a.value;
  }
  // Names, targets and counts only ever hold [a-z0-9.-]; anything else would break the map line or the split.
  const field = /^[A-Za-z0-9._-]+$/;
  if (value === undefined || !value.split(ROUTE_SEPARATOR).every((f) => field.test(f))) return undefined;
  return value;
}

/** Every memoizable target of the table: map key -> value. Empty when the policy holds a field this module does not know. */
export function memoEntries(routes: RouteTableDocument): ReadonlyMap<string, string> {
  const out = new Map<string, string>();
  if (Object.keys(routes.policy).some((k) => !POLICY_KEYS.has(k))) return out;
  for (const t of routes.tenants) {
    if (notMemoizable(t) !== undefined) continue;
    for (const [target, backend] of Object.entries(t.backends)) {
      const value = memoTargetValue(t, target, backend);
      if (value !== undefined) out.set(memoKey(t.id, target), value);
    }
  }
  return out;
}

/** The map file HAProxy loads at start (one "key value" line per entry). */
export function memoMapFile(entries: ReadonlyMap<string, string>): string {
  const lines = ['# Rendered by pgroute: the verdict memo map (docs/memo.md). Key: a tenant target\'s cancel id; value: its verdict variables.'];
  for (const [k, v] of entries) lines.push(`${k} ${v}`);
  return `${lines.join('\n')}\n`;
}
