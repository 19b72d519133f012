// Turns a Verdict into the SET-VAR actions HAProxy reads as txn.pgr.* (the names are the SPOE
// contract's VERDICT_VAR: backend, tenant, target, and the ErrorResponse to send when refusing).

import type { RouteVerdict, Verdict } from '../decision/types.js';
import { encodeErrorResponse } from '../pg/error-response.js';
import { encodeAckPayload, type TxnSetVar } from '../spop/agent-frames.js';
import { VERDICT_VAR } from './spoe-contract.js';

// Pre-encoded names: the hot path skips UTF-8 work.
const VAR_BACKEND = Buffer.from(VERDICT_VAR.backend);
const VAR_TENANT = Buffer.from(VERDICT_VAR.tenant);
const VAR_TARGET = Buffer.from(VERDICT_VAR.target);
const VAR_ERROR = Buffer.from(VERDICT_VAR.error);

export function verdictActions(verdict: Verdict): TxnSetVar[] {
  if (verdict.kind === 'route') {
    return [
      { name: VAR_BACKEND, value: verdict.backend },
      { name: VAR_TENANT, value: verdict.tenant },
      { name: VAR_TARGET, value: verdict.target },
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

interface CachedRoute {
  readonly tenant: string;
  readonly target: string;
  readonly payload: Buffer;
}

/** Most (backend, tenant, target) payloads kept; the cache starts over when full. */
const ROUTE_CACHE_MAX = 4096;
const routeCache = new Map<string, CachedRoute>();

/**
 * The encoded actions (encodeAckPayload) of a route verdict, cached by backend: a route's three
 * variables depend on (backend, tenant, target) only, and a table has few of them.
 */
export function routeAckPayload(verdict: RouteVerdict): Buffer {
  const hit = routeCache.get(verdict.backend);
  if (hit !== undefined && hit.tenant === verdict.tenant && hit.target === verdict.target) return hit.payload;
  const payload = encodeAckPayload(verdictActions(verdict));
  if (routeCache.size >= ROUTE_CACHE_MAX) routeCache.clear();
  routeCache.set(verdict.backend, { tenant: verdict.tenant, target: verdict.target, payload });
  return payload;
}
