// Refusals HAProxy makes before (or instead of) asking the agent. They are composed here, in
// TypeScript, as PostgreSQL ErrorResponses and embedded in haproxy.cfg as hex, so the Lua action
// only ever writes bytes it was handed.

import { encodeErrorResponse, quoteValue } from '../../../agent/src/index.js';

export interface HaproxyRefusals {
  readonly badLength: string;
  readonly incomplete: string;
  readonly noVerdict: string;
  readonly pipelined: string;
  readonly pipelinedGss: string;
  readonly overLimit: string;
  readonly unavailable: string;
}

export function haproxyRefusals(maxStartupPacket: number, startupTimeout: string): HaproxyRefusals {
  const hex = (sqlstate: string, message: string, hint?: string): string =>
    encodeErrorResponse(hint === undefined ? { severity: 'FATAL', sqlstate, message } : { severity: 'FATAL', sqlstate, message, hint }).toString('hex');
  return {
    badLength: hex(
      '08P01',
      `invalid length of startup packet (pgroute accepts 8 to ${maxStartupPacket} bytes)`,
      'This port speaks the PostgreSQL protocol; connect with a PostgreSQL client.',
    ),
    // Also a client that closed its side before the whole packet (at once, not after the timeout).
    incomplete: hex('08P01', `incomplete startup packet: the whole packet did not arrive within ${startupTimeout}, or the client closed its side first`),
    noVerdict: hex(
      '57P03',
      'the pgroute routing agent is not available; the connection was not routed',
      'Retry in a moment; if it persists, ask the operator to check the pgroute agent.',
    ),
    pipelined: hex('08P01', 'received unencrypted data after SSL request', 'Send nothing after an SSLRequest until the server has answered it.'),
    pipelinedGss: hex('08P01', 'received unencrypted data after GSSAPI encryption request', 'Send nothing after a GSSENCRequest until the server has answered it.'),
    // Over an admission limit whose own message is missing from the limits map (partials/limit-refusals.hbs):
    // never admitted over it, never closed without a word. Should not happen (the map is written
    // with every table the agent is given); the wording says no more than HAProxy knows.
    overLimit: hex(
      '53300',
      'too many connections for this tenant (over one of its admission limits)',
      'Retry in a moment; keep connections open (a pool) instead of connecting for each query.',
    ),
    // No tenant named: HAProxy composes nothing, and the client knows which one it asked for.
    unavailable: hex(
      '57P03',
      "the tenant's database server is not available right now (it fails its health checks); the connection was not routed",
      'Retry in a moment; if it persists, ask the operator about this tenant\'s server.',
    ),
  };
}

/**
 * A tenant target's queue limit reached (partials/queue-limit.hbs): 53300, PostgreSQL's
 * too_many_connections, as for the tenant's other limits (agent/src/decision/limits.ts).
 */
export function queueLimitRefusal(tenant: string, target: string, maxqueue: number): string {
  return encodeErrorResponse({
    severity: 'FATAL',
    sqlstate: '53300',
    message: `too many connections waiting for tenant ${quoteValue(tenant)}, target ${quoteValue(target)} (at most ${maxqueue} wait for a server slot)`,
    hint: "Retry in a moment; the tenant's servers are at their connection limit (maxconn).",
  }).toString('hex');
}
