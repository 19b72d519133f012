// Turns a Verdict into the SET-VAR actions HAProxy reads as txn.pgr.* (the names are the SPOE
// contract's VERDICT_VAR: backend, tenant, target, the tenant's limits, and the ErrorResponse to send
// when the agent refuses). The ErrorResponses of the limits are not sent: HAProxy reads them from
// the generator's limits map only when it refuses (haproxy/partials/limit-refusals.hbs).

import { cancelId } from '../contract.js';
import type { RouteVerdict, TenantLimits, Verdict } from '../decision/types.js';
import { encodeErrorResponse } from '../pg/error-response.js';
import { encodeAckPayload, type TxnSetVar } from '../spop/agent-frames.js';
import { VERDICT_VAR } from './spoe-contract.js';

// Pre-encoded names: the hot path skips UTF-8 work.
const VAR_BACKEND = Buffer.from(VERDICT_VAR.backend);
const VAR_TENANT = Buffer.from(VERDICT_VAR.tenant);
const VAR_TARGET = Buffer.from(VERDICT_VAR.target);
const VAR_ERROR = Buffer.from(VERDICT_VAR.error);
const VAR_HOLD = Buffer.from(VERDICT_VAR.hold);
const VAR_CANCEL_A = Buffer.from(VERDICT_VAR.cancelA);
const VAR_CANCEL_B = Buffer.from(VERDICT_VAR.cancelB);

export function verdictActions(verdict: Verdict): TxnSetVar[] {
  if (verdict.kind === 'route') {
    const route: TxnSetVar[] = [
      { name: VAR_BACKEND, value: verdict.backend },
      { name: VAR_TENANT, value: verdict.tenant },
      { name: VAR_TARGET, value: verdict.target },
    ];
    // A cancel is not recorded (nor counted): the route alone.
    if (verdict.cancel) return route;
    const recorded = [...route, ...cancelIdActions(verdict.tenant, verdict.target)];
    return verdict.limits === undefined ? recorded : [...recorded, ...limitActions(verdict.limits)];
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
 * The limits (haproxy/partials/policy.hbs counts with them; the per-address rate only when set). Their ErrorResponses are not sent: each
 * was ~150 bytes HAProxy decoded and stored per connection to read only for a refusal; the
 * generator's limits map holds them (bench/results/2026-12-06-session8-limits.md).
 */
function limitActions(limits: TenantLimits): TxnSetVar[] {
  const out: TxnSetVar[] = [
    { name: VERDICT_VAR.maxConnections, value: String(limits.maxClientConnections ?? 0) },
    { name: VERDICT_VAR.maxRate, value: String(limits.maxConnectionRate ?? 0) },
  ];
  // The per-address rate only when set (it has no default): unset reads as none in HAProxy's rules,
  // and every tenant without one is spared a variable per connection.
  const perAddress = limits.maxClientConnectionRate ?? 0;
  if (perAddress > 0) out.push({ name: VERDICT_VAR.maxClientRate, value: String(perAddress) });
  return out;
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
