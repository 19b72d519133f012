// The verdict memo's map (docs/memo.md): which tenant targets HAProxy may route without asking the
// agent, and with which variables. HAProxy's memo table (haproxy/partials/memo-*.hbs) remembers,
// per digest of a startup's facts, only WHICH tenant target the agent chose (its cancel id, two
// words); this map says whether that target may still be routed from memory, and the exact
// variables the agent would set for it. A target leaves the map the moment its verdict could
// change (removed, moved to another backend, disabled, new limits, an allow-list): HAProxy then asks
// the agent again, so a stale memo entry can never route.
//
// Pure: a route table document in, map entries and CLI commands out.

import { cancelId, verdictActions, VERDICT_VAR, type RouteTableDocument, type TenantRoute } from '../../../agent/src/index.js';

/**
 * The fields of a map value, in order, joined with '|' (field(n,|) in memo-lookup.hbs). `binary`
 * fields are the agent's BINARY variables (ErrorResponses), base64 in the map (b64dec in HAProxy).
 * A route whose variables are not all among these (or whose client rate limit is set: that limit's
 * counter takes the stick counter the memo writes with) is not memoized.
 */
export const MEMO_FIELDS = [
  { name: VERDICT_VAR.backend, binary: false },
  { name: VERDICT_VAR.tenant, binary: false },
  { name: VERDICT_VAR.target, binary: false },
  { name: VERDICT_VAR.maxConnections, binary: false },
  { name: VERDICT_VAR.maxRate, binary: false },
  { name: VERDICT_VAR.maxClientRate, binary: false },
  { name: VERDICT_VAR.refuseConnections, binary: true },
  { name: VERDICT_VAR.refuseRate, binary: true },
] as const;

/** The keys of a tenant route and of a policy whose meaning the memo knows; anything else: memo off. */
const TENANT_KEYS = new Set(['id', 'enabled', 'backends', 'limits', 'allow']);
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

/** The map value of one target: the variables verdictActions() sets, or undefined when some are not memo fields. */
function memoValue(t: TenantRoute, target: string, backend: string): string | undefined {
  const actions = verdictActions(t.limits === undefined ? { kind: 'route', tenant: t.id, target, backend, cancel: false } : { kind: 'route', tenant: t.id, target, backend, cancel: false, limits: t.limits });
  const values = new Map<string, string>();
  for (const a of actions) {
    const name = a.name.toString();
    const field = MEMO_FIELDS.find((f) => f.name === name);
    if (field === undefined || values.has(name)) return undefined;
    if (field.binary !== Buffer.isBuffer(a.value)) return undefined;
    const text = Buffer.isBuffer(a.value) ? a.value.toString('base64') : a.value;
    // Names, targets and counts only ever hold [a-z0-9.-]; anything else would break the map line.
    if (!field.binary && !/^[A-Za-z0-9._-]+$/.test(text)) return undefined;
    values.set(name, text);
  }
  if (!values.has(VERDICT_VAR.backend)) return undefined;
  return MEMO_FIELDS.map((f) => values.get(f.name) ?? '').join('|');
}

/** Every memoizable target of the table: map key -> value. Empty when the policy holds a field this module does not know. */
export function memoEntries(routes: RouteTableDocument): ReadonlyMap<string, string> {
  const out = new Map<string, string>();
  if (Object.keys(routes.policy).some((k) => !POLICY_KEYS.has(k))) return out;
  for (const t of routes.tenants) {
    if (notMemoizable(t) !== undefined) continue;
    for (const [target, backend] of Object.entries(t.backends)) {
      const value = memoValue(t, target, backend);
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

/**
 * From what HAProxy's map holds (`before`; undefined: unknown) to `after`, in two phases around the
 * agent learning the new table: `withdraw` before it (entries removed or changed leave the map, so
 * no hit routes by them from then on), `add` after it (new and changed entries come back).
 * `clear`: the map's content is unknown; empty it first.
 */
export interface MemoSync {
  readonly clear: boolean;
  /** How many verdicts the map held are withdrawn for good or changed (pgroute_memo_invalidations_total). */
  readonly invalidated: number;
  readonly withdraw: readonly string[];
  readonly add: readonly (readonly [string, string])[];
}

export function memoSync(before: ReadonlyMap<string, string> | undefined, after: ReadonlyMap<string, string>): MemoSync {
  if (before === undefined) return { clear: true, invalidated: 0, withdraw: [], add: [...after] };
  const withdraw: string[] = [];
  const add: [string, string][] = [];
  for (const [k, v] of before) if (after.get(k) !== v) withdraw.push(k);
  const invalidated = withdraw.length;
  for (const [k, v] of after) if (before.get(k) !== v) add.push([k, v]);
  // A key added anew may still be in the map (a reload loaded it from the file): withdrawn first, so
  // that `add map` never leaves two entries for one key.
  for (const [k] of add) if (!before.has(k)) withdraw.push(k);
  return { clear: false, invalidated, withdraw, add };
}

/** The CLI commands of the withdraw phase and of the add phase. */
export function memoCommands(mapFile: string, sync: MemoSync): { readonly withdraw: readonly string[]; readonly add: readonly string[] } {
  return {
    withdraw: [...(sync.clear ? [`clear map ${mapFile}`] : []), ...sync.withdraw.map((k) => `del map ${mapFile} ${k}`)],
    add: sync.add.map(([k, v]) => `add map ${mapFile} ${k} ${v}`),
  };
}
