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
 * The fields of a target's map value, in order, joined with '|' (field(n,|) in memo-lookup.hbs):
 * short, because every hit copies it once per field. The limits' fields are left out (not empty)
 * for a route without limits: HAProxy then sets no limit variable, as with the agent's answer.
 */
export const MEMO_FIELDS = [VERDICT_VAR.backend, VERDICT_VAR.tenant, VERDICT_VAR.target, VERDICT_VAR.maxConnections, VERDICT_VAR.maxRate] as const;

/**
 * The agent's ErrorResponses of the limits (BINARY variables), each under its own map key (the
 * target's key + suffix, base64), read only for a refusal (memo-limits.hbs).
 */
export const MEMO_REFUSALS = [
  { name: VERDICT_VAR.refuseConnections, suffix: '/c' },
  { name: VERDICT_VAR.refuseRate, suffix: '/r' },
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

/**
 * The map entries of one target: its value (the variables verdictActions() sets) and its
 * refusals, or undefined when some variable is not one the memo's rules set.
 */
function memoTargetEntries(t: TenantRoute, target: string, backend: string): readonly (readonly [string, string])[] | undefined {
  const actions = verdictActions(t.limits === undefined ? { kind: 'route', tenant: t.id, target, backend, cancel: false } : { kind: 'route', tenant: t.id, target, backend, cancel: false, limits: t.limits });
  const values = new Map<string, string>();
  const refusals: [string, string][] = [];
  const seen = new Set<string>();
  const key = memoKey(t.id, target);
  for (const a of actions) {
    const name = a.name.toString();
    if (seen.has(name)) return undefined;
    seen.add(name);
    const refusal = MEMO_REFUSALS.find((r) => r.name === name);
    if (refusal !== undefined) {
      if (!Buffer.isBuffer(a.value)) return undefined;
      refusals.push([`${key}${refusal.suffix}`, a.value.toString('base64')]);
      continue;
    }
    // The per-address rate: "0" (none) reads as unset in HAProxy's rules (any other value: not memoized).
    if (name === VERDICT_VAR.maxClientRate && a.value === '0') continue;
    // The cancel id is the map's key: a hit reads it from its memo entry (memo-lookup.hbs).
    if (name === VERDICT_VAR.cancelA || name === VERDICT_VAR.cancelB) continue;
    if (!(MEMO_FIELDS as readonly string[]).includes(name) || Buffer.isBuffer(a.value)) return undefined;
    // Names, targets and counts only ever hold [a-z0-9.-]; anything else would break the map line.
    if (!/^[A-Za-z0-9._-]+$/.test(a.value)) return undefined;
    values.set(name, a.value);
  }
  if (!values.has(VERDICT_VAR.backend) || !values.has(VERDICT_VAR.tenant) || !values.has(VERDICT_VAR.target)) return undefined;
  const limits = values.has(VERDICT_VAR.maxConnections) || values.has(VERDICT_VAR.maxRate);
  if (limits && !(values.has(VERDICT_VAR.maxConnections) && values.has(VERDICT_VAR.maxRate))) return undefined;
  const fields = (limits ? MEMO_FIELDS : MEMO_FIELDS.slice(0, 3)).map((f) => values.get(f) as string);
  // The refusals first: HAProxy is given them before the value that makes a hit (memoCommands()).
  return [...refusals, [key, fields.join('|')]];
}

/** Every memoizable target of the table: map key -> value (and its refusals' keys). Empty when the policy holds a field this module does not know. */
export function memoEntries(routes: RouteTableDocument): ReadonlyMap<string, string> {
  const out = new Map<string, string>();
  if (Object.keys(routes.policy).some((k) => !POLICY_KEYS.has(k))) return out;
  for (const t of routes.tenants) {
    if (notMemoizable(t) !== undefined) continue;
    for (const [target, backend] of Object.entries(t.backends)) {
      for (const [k, v] of memoTargetEntries(t, target, backend) ?? []) out.set(k, v);
    }
  }
  return out;
}

/** The map file HAProxy loads at start (one "key value" line per entry). */
export function memoMapFile(entries: ReadonlyMap<string, string>): string {
  const lines = ['# Rendered by pgroute: the verdict memo map (docs/memo.md). Key: a tenant target\'s cancel id; value: its verdict variables (key/c, key/r: its limits\' refusals).'];
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
  const invalidated = withdraw.filter(isTargetKey).length;
  for (const [k, v] of after) if (before.get(k) !== v) add.push([k, v]);
  // A key added anew may still be in the map (a reload loaded it from the file): withdrawn first, so
  // that `add map` never leaves two entries for one key.
  for (const [k] of add) if (!before.has(k)) withdraw.push(k);
  return { clear: false, invalidated, withdraw, add };
}

/** A target's own key (its value makes a hit), not one of its refusals' keys. */
function isTargetKey(key: string): boolean {
  return !key.includes('/');
}

/**
 * The CLI commands of the withdraw phase and of the add phase. A hit reads a target's value, then
 * (over a limit) its refusal: the value leaves the map before its refusals and comes back after
 * them, so no hit finds a value whose refusal is missing.
 */
export function memoCommands(mapFile: string, sync: MemoSync): { readonly withdraw: readonly string[]; readonly add: readonly string[] } {
  const targetsFirst = [...sync.withdraw.filter(isTargetKey), ...sync.withdraw.filter((k) => !isTargetKey(k))];
  const refusalsFirst = [...sync.add.filter(([k]) => !isTargetKey(k)), ...sync.add.filter(([k]) => isTargetKey(k))];
  return {
    withdraw: [...(sync.clear ? [`clear map ${mapFile}`] : []), ...targetsFirst.map((k) => `del map ${mapFile} ${k}`)],
    add: refusalsFirst.map(([k, v]) => `add map ${mapFile} ${k} ${v}`),
  };
}
