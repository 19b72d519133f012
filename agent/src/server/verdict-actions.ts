// Turns a Verdict into the SET-VAR actions HAProxy reads as txn.pgr.* (the names are the SPOE
// contract's VERDICT_VAR: a startup's route as one variable that HAProxy splits, the cancel id, the
// ErrorResponse to send when the agent refuses...). The ErrorResponses of the limits are not sent:
// HAProxy reads them from the generator's limits map only when it refuses
// (haproxy/partials/limit-refusals.hbs).

import { cancelId } from '../contract.js';
import type { RouteVerdict, TenantLimits, Verdict } from '../decision/types.js';
import { encodeErrorResponse } from '../pg/error-response.js';
import { encodeAckPayload, type TxnSetVar } from '../spop/agent-frames.js';
import { ROUTE_SEPARATOR, VERDICT_VAR } from './spoe-contract.js';

// Pre-encoded names: the hot path skips UTF-8 work.
const VAR_ROUTE = Buffer.from(VERDICT_VAR.route);
const VAR_BACKEND = Buffer.from(VERDICT_VAR.backend);
const VAR_TENANT = Buffer.from(VERDICT_VAR.tenant);
const VAR_TARGET = Buffer.from(VERDICT_VAR.target);
const VAR_ERROR = Buffer.from(VERDICT_VAR.error);
const VAR_HOLD = Buffer.from(VERDICT_VAR.hold);
const VAR_CANCEL_A = Buffer.from(VERDICT_VAR.cancelA);
const VAR_CANCEL_B = Buffer.from(VERDICT_VAR.cancelB);

export function verdictActions(verdict: Verdict): TxnSetVar[] {
  if (verdict.kind === 'route') {
    // A cancel is not recorded (nor counted): the route alone, as its own variables (the cancel
    // record's rules, not this branch's, read them right after the cancel's exchange).
    if (verdict.cancel) {
      return [
        { name: VAR_BACKEND, value: verdict.backend },
        { name: VAR_TENANT, value: verdict.tenant },
        { name: VAR_TARGET, value: verdict.target },
      ];
    }
    const out: TxnSetVar[] = [
      { name: VAR_ROUTE, value: routeValue(verdict.backend, verdict.tenant, verdict.target, verdict.limits) },
      ...cancelIdActions(verdict.tenant, verdict.target),
    ];
    // The per-address rate only when set (it has no default): unset reads as none in HAProxy's rules,
    // and every tenant without one is spared a variable per connection. With it the tenant as its own
    // variable: that counter's key is built by concat(), which reads variables only (policy.hbs).
    const perAddress = verdict.limits?.maxClientConnectionRate ?? 0;
    if (perAddress > 0) out.push({ name: VERDICT_VAR.maxClientRate, value: String(perAddress) }, { name: VAR_TENANT, value: verdict.tenant });
    return out;
  }
  if (verdict.kind === 'hold') {
    // No backend: a held connection is not routed here (the hold frontend asks again). Its cancel
    // id is recorded now, as for a route.
    return [
      { name: VAR_HOLD, value: '1' },
      { name: VAR_TENANT, value: verdict.tenant },
      { name: VAR_TARGET, value: verdict.target },
      ...cancelIdActions(verdict.tenant, verdict.target),
    ];
  }
  const err = encodeErrorResponse({ severity: 'FATAL', sqlstate: verdict.sqlstate, message: verdict.message });
  return verdict.tenant === undefined
    ? [{ name: VAR_ERROR, value: err }]
    : [
        { name: VAR_ERROR, value: err },
        { name: VAR_TENANT, value: verdict.tenant },
      ];
}

/**
 * The cancel id of the tenant target, for HAProxy's cancel record (haproxy/partials/cancel-record.hbs):
 * sent with the verdict so that HAProxy does not compute a SHA-256 per connection (a route's answer
 * is cached, so the agent computes it once per target too).
 */
function cancelIdActions(tenant: string, target: string): TxnSetVar[] {
  const [a, b] = cancelId(tenant, target);
  return [
    { name: VAR_CANCEL_A, value: String(a) },
    { name: VAR_CANCEL_B, value: String(b) },
  ];
}

/**
 * A startup's route as the one variable HAProxy splits into ROUTE_FIELDS (spoe-contract.ts;
 * haproxy/partials/route-split.hbs): backend, tenant, target, then with limits the tenant's cap and
 * rate ("0": none; haproxy/partials/policy.hbs counts with them). Also the memo map's value of the
 * target (generator/src/memo/memo-map.ts): a hit is split by the same rules. The limits'
 * ErrorResponses are not sent: each was ~150 bytes HAProxy decoded and stored per connection to read
 * only for a refusal; the generator's limits map holds them (bench/results/2026-12-06-session8-limits.md).
 */
export function routeValue(backend: string, tenant: string, target: string, limits: TenantLimits | undefined): string {
  const head = [backend, tenant, target].join(ROUTE_SEPARATOR);
  if (limits === undefined) return head;
  return [head, String(limits.maxClientConnections ?? 0), String(limits.maxConnectionRate ?? 0)].join(ROUTE_SEPARATOR);
}

interface CachedRoute {
  readonly tenant: string;
  readonly target: string;
  readonly cancel: boolean;
  readonly limits: TenantLimits | undefined;
  readonly payload: Buffer;
}

/** Most (backend, tenant, target) payloads kept; the cache starts over when full. */
const ROUTE_CACHE_MAX = 4096;
const routeCache = new Map<string, CachedRoute>();

/**
 * The encoded actions (encodeAckPayload) of a route verdict, cached by backend: a route's
 * variables depend on (backend, tenant, target, cancel or not, the tenant's limits object) only, and a table has few of them.
 */
export function routeAckPayload(verdict: RouteVerdict): Buffer {
  const hit = routeCache.get(verdict.backend);
  if (hit !== undefined && hit.tenant === verdict.tenant && hit.target === verdict.target && hit.cancel === verdict.cancel && hit.limits === verdict.limits) return hit.payload;
  const payload = encodeAckPayload(verdictActions(verdict));
  if (routeCache.size >= ROUTE_CACHE_MAX) routeCache.clear();
  routeCache.set(verdict.backend, { tenant: verdict.tenant, target: verdict.target, cancel: verdict.cancel, limits: verdict.limits, payload });
  return payload;
}
