// What a client reads when HAProxy refuses it over one of its tenant's admission limits. HAProxy
// counts (stick tables) but cannot compose a PostgreSQL message: the generator writes these, encoded,
// into the limits map (generator/src/limits/limits-map.ts) that HAProxy reads only when it refuses
// (haproxy/partials/limit-refusals.hbs). The agent sends the limits with the route, not these.

import { encodeErrorResponse } from '../pg/error-response.js';
import { quoteValue } from '../quote.js';
import { SQLSTATE } from './decide.js';
import type { TenantLimits } from './types.js';

export interface LimitRefusal {
  readonly sqlstate: string;
  readonly message: string;
  readonly hint: string;
}

export interface LimitRefusals {
  readonly connections?: LimitRefusal;
  readonly rate?: LimitRefusal;
  readonly clientRate?: LimitRefusal;
}

/** The refusal of each limit the tenant has (53300, PostgreSQL's too_many_connections). */
export function limitRefusals(tenant: string, limits: TenantLimits): LimitRefusals {
  const t = quoteValue(tenant);
  const out: { -readonly [K in keyof LimitRefusals]: LimitRefusals[K] } = {};
  if ((limits.maxClientConnections ?? 0) > 0) {
    out.connections = {
      sqlstate: SQLSTATE.tooManyConnections,
      message: `too many connections for tenant ${t} (at most ${limits.maxClientConnections} at once)`,
      hint: 'Close idle connections or use a connection pool; retry when some have closed.',
    };
  }
  if ((limits.maxConnectionRate ?? 0) > 0) {
    out.rate = {
      sqlstate: SQLSTATE.tooManyConnections,
      message: `too many new connections per second for tenant ${t} (at most ${limits.maxConnectionRate} a second)`,
      hint: 'Retry in a moment; keep connections open (a pool) instead of connecting for each query.',
    };
  }
  if ((limits.maxClientConnectionRate ?? 0) > 0) {
    out.clientRate = {
      sqlstate: SQLSTATE.tooManyConnections,
      message: `too many new connections per second from this client address for tenant ${t} (at most ${limits.maxClientConnectionRate} a second)`,
      hint: 'Retry in a moment; keep connections open (a pool) instead of connecting for each query.',
    };
  }
  return out;
}

/** Which limit a refusal is over: the tenant's cap, its rate, or one address's rate. */
export type LimitKind = keyof LimitRefusals;

/**
 * The ErrorResponse (FATAL) of each limit the tenant has, with the limit's value, as HAProxy sends
 * it: the message depends on the tenant id and the value only.
 */
export function limitErrorResponses(tenant: string, limits: TenantLimits): { readonly kind: LimitKind; readonly limit: number; readonly response: Buffer }[] {
  const refusals = limitRefusals(tenant, limits);
  const values: Record<LimitKind, number | undefined> = {
    connections: limits.maxClientConnections,
    rate: limits.maxConnectionRate,
    clientRate: limits.maxClientConnectionRate,
  };
  return (Object.keys(values) as LimitKind[]).flatMap((kind) => {
    const r = refusals[kind];
    return r === undefined ? [] : [{ kind, limit: values[kind] as number, response: encodeErrorResponse({ severity: 'FATAL', ...r }) }];
  });
}
