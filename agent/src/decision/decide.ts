// The routing decision: one connection's facts + the route table -> a Verdict. Runs once per
// connection (targets above 100k/s), so the route path allocates little: one Map lookup, at most
// one regex match, the verdict object. Never throws: anything unexpected is an 'internal-error'.
//
// Pure: for a CancelRequest the caller reads the cancel records HAProxy handed over
// (cancel-router.ts routeCancel()) and passes their answer in; decide() itself changes nothing.
//
// Refusals (reason, SQLSTATE, what the client reads):
//   malformed               08P01  the decoder's own sentence
//   unexpected-negotiation  08P01  SSLRequest/GSSENCRequest reached the agent: HAProxy answers
//                                  those itself, so this is a configuration error
//   no-key                  28000  no source named a tenant. 28000 (invalid authorization
//                                  specification), not 3D000: no database name was rejected, the
//                                  client did not say who it is in the way this server expects, and
//                                  28000 is what PostgreSQL itself sends for an unusable user/startup
//                                  identity; clients (libpq, pgbouncer, poolers) do not retry it.
//   conflicting-keys        28000  names the two tenant values the client itself sent
//   unknown-tenant          3D000  `no tenant "x" is served here; check ...`
//   disabled-tenant         3D000  byte-identical to unknown-tenant (a stranger cannot tell which
//                                  tenants exist); logDetail says 'disabled'.
//                           57P03  `tenant "x" is disabled` when policy.revealDisabled
//   address-not-allowed     3D000  the client address is outside the tenant's `allow` networks:
//                                  byte-identical to unknown-tenant, so a stranger learns nothing;
//                           28000  `tenant "x" does not accept connections from <address>` when
//                                  policy.revealDisabled (PostgreSQL's pg_hba refusal is 28000 too)
//   unknown-target          08004  the tenant exists but has no such target
//   cancel-unroutable       08004  no session of this client address is recorded (see cancel-router.ts)
//   cancel-rate-limited     53300  too many cancels from this address
//   pause-timeout           57P03  a held connection was not released in time
//   pause-queue-full        53300  too many connections of the tenant are held already
//                                  (both made by hold.ts; a startup is a 'hold' while its tenant is
//                                  paused or its target is pending: HAProxy is adding its backend)
//   internal-error          XX000  a bug or an unusable policy; details in logDetail only
// Client messages never list tenants and only ever echo values the client itself sent, quoted,
// truncated and escaped (quote.ts). `tenant` is set on refusals only for tenants of the table, so
// it is safe as a metrics label; an unknown id the client sent is in logDetail.

import type { CancelRouting, CancelTarget } from './cancel-router.js';
import { compilePolicy, findTenantKey, type KeyClaim } from './tenant-key.js';
import { addressAllowed } from './networks.js';
import { sniKey } from './sni.js';
import type { TenantOptionReader } from './options-tenant.js';
import { quoteValue, sanitizeText } from '../quote.js';
import type {
  ConnectionFacts,
  KeySource,
  RefusalReason,
  RefuseVerdict,
  RouteTable,
  RoutingPolicy,
  TenantRoute,
  Verdict,
} from './types.js';

export const SQLSTATE = {
  protocolViolation: '08P01',
  invalidAuthorization: '28000',
  invalidCatalogName: '3D000',
  cannotConnectNow: '57P03',
  adminShutdown: '57P01',
  rejectedEstablishment: '08004',
  tooManyConnections: '53300',
  internalError: 'XX000',
} as const;

export const INTERNAL_ERROR_MESSAGE = 'internal error in the connection router; try again later or contact the operator';

function refuse(
  reason: RefusalReason,
  sqlstate: string,
  message: string,
  logDetail: string,
  tenant?: string,
): RefuseVerdict {
  return tenant === undefined
    ? { kind: 'refuse', reason, sqlstate, message, logDetail }
    : { kind: 'refuse', reason, sqlstate, message, logDetail, tenant };
}

function internalError(logDetail: string): RefuseVerdict {
  return refuse('internal-error', SQLSTATE.internalError, INTERNAL_ERROR_MESSAGE, sanitizeText(logDetail, 500));
}

const SOURCE_WORDS: Record<KeySource, string> = {
  options: 'pgroute.tenant in options',
  user: 'user name',
  database: 'database name',
  sni: 'server name (SNI)',
};

/** The words the client reads for an unknown tenant, and for a disabled one unless revealed. */
export function notServedMessage(tenant: string, source: KeySource, policy: RoutingPolicy): string {
  const orOptions = source !== 'options' && compilePolicy(policy).useOptions ? ' (or options=-c pgroute.tenant=...)' : '';
  return `no tenant ${quoteValue(tenant)} is served here; check the ${SOURCE_WORDS[source]}${orOptions}`;
}

function conflictMessage(first: KeyClaim, second: KeyClaim, policy: RoutingPolicy): string {
  const hint = compilePolicy(policy).useOptions ? ', or set it with options=-c pgroute.tenant=<tenant>' : '';
  return (
    `the connection names two different tenants: ${quoteValue(first.tenant)} (${SOURCE_WORDS[first.source]}) ` +
    `and ${quoteValue(second.tenant)} (${SOURCE_WORDS[second.source]}); name only one${hint}`
  );
}

function ownBackend(backends: TenantRoute['backends'], target: string): string | undefined {
  if (!Object.hasOwn(backends, target)) return undefined; // never `constructor`, `__proto__`, ...
  const b = backends[target];
  return typeof b === 'string' && b !== '' ? b : undefined;
}

function addressForLog(address: unknown): string {
  return typeof address === 'string' && address !== '' ? sanitizeText(address, 64) : '(no address)';
}

/**
 * The accept() filter of routeCancel(): a recorded destination whose tenant still accepts
 * connections from `address` (a cancel is checked like a startup).
 */
export function cancelTargetAccepted(table: RouteTable, address: string): (to: CancelTarget) => boolean {
  return (to) => {
    const route = table.tenants.get(to.tenant);
    return route !== undefined && (route.allow === undefined || addressAllowed(route.allow, address));
  };
}

function decideCancel(facts: ConnectionFacts, r: CancelRouting | undefined): Verdict {
  if (r === undefined) return internalError('a CancelRequest was decided without consulting the cancel records');
  switch (r.kind) {
    case 'route': {
      const [first, ...rest] = r.to;
      return rest.length === 0
        ? { kind: 'route', tenant: first.tenant, target: first.target, backend: first.backend, cancel: true }
        : { kind: 'route', tenant: first.tenant, target: first.target, backend: first.backend, cancel: true, copies: rest.map((t) => t.backend) };
    }
    case 'rate-limited':
      return refuse(
        'cancel-rate-limited',
        SQLSTATE.tooManyConnections,
        'too many cancel requests from this client address; wait a moment and try again',
        `cancel from ${addressForLog(facts.clientAddress)}: ${r.detail}`,
      );
    case 'unroutable':
      return refuse(
        'cancel-unroutable',
        SQLSTATE.rejectedEstablishment,
        'cancel request cannot be routed: no session from this client address is known',
        `cancel from ${addressForLog(facts.clientAddress)}: ${r.detail}`,
      );
  }
}

function decideStartup(
  table: RouteTable,
  facts: ConnectionFacts,
  params: ReadonlyMap<string, string>,
  readOption: TenantOptionReader | undefined,
): Verdict {
  const policy = table.policy;
  if (facts.tls !== true && policy.tlsRequiredPorts?.includes(facts.frontendPort)) {
    return refuse(
      'tls-required',
      SQLSTATE.invalidAuthorization,
      `this port requires TLS; connect with sslmode=require (or verify-ca, verify-full)`,
      `clear-text startup on TLS-only port ${facts.frontendPort}`,
    );
  }
  const fromSni = sniKey(policy, facts.sni);
  let key = findTenantKey(policy, params, readOption);
  if (fromSni !== undefined) {
    if (key.kind === 'none') key = { kind: 'key', tenant: fromSni.tenant, source: 'sni', target: fromSni.target };
    else if (key.kind === 'key' && key.tenant !== fromSni.tenant) {
      return refuse(
        'conflicting-keys',
        SQLSTATE.invalidAuthorization,
        `the server name ${quoteValue(facts.sni ?? '')} names tenant ${quoteValue(fromSni.tenant)} but the ${SOURCE_WORDS[key.source]} names ${quoteValue(key.tenant)}; name only one tenant`,
        `sni gives ${quoteValue(fromSni.tenant)}, ${key.source} gives ${quoteValue(key.tenant)}`,
      );
    } else if (key.kind === 'key' && key.target === undefined && fromSni.target !== undefined) {
      key = { ...key, target: fromSni.target };
    }
  }
  switch (key.kind) {
    case 'config-error':
      return internalError(`route table ${table.version}: ${key.logDetail}`);
    case 'none':
      return refuse('no-key', SQLSTATE.invalidAuthorization, policy.sni === undefined ? key.message : `${sniHint(facts.sni)}; ${key.message}`, key.logDetail);
    case 'conflict':
      return refuse(
        'conflicting-keys',
        SQLSTATE.invalidAuthorization,
        conflictMessage(key.first, key.second, policy),
        `${key.first.source} gives ${quoteValue(key.first.tenant)}, ${key.second.source} gives ${quoteValue(key.second.tenant)}`,
      );
    case 'key':
      break;
  }

  const id = key.tenant;
  const tenant = table.tenants.get(id);
  if (tenant === undefined) {
    return refuse(
      'unknown-tenant',
      SQLSTATE.invalidCatalogName,
      notServedMessage(id, key.source, policy),
      `unknown tenant ${quoteValue(id)} (from the ${key.source}; route table ${table.version})`,
    );
  }
  if (!tenant.enabled) {
    return policy.revealDisabled
      ? refuse(
          'disabled-tenant',
          SQLSTATE.cannotConnectNow,
          `tenant ${quoteValue(id)} is disabled`,
          `tenant ${quoteValue(id)} is disabled (revealed to the client)`,
          id,
        )
      : refuse(
          'disabled-tenant',
          SQLSTATE.invalidCatalogName,
          notServedMessage(id, key.source, policy),
          `tenant ${quoteValue(id)} is disabled (the client was told it is not served)`,
          id,
        );
  }
  if (tenant.allow !== undefined && !addressAllowed(tenant.allow, facts.clientAddress)) {
    const from = addressForLog(facts.clientAddress);
    return policy.revealDisabled
      ? refuse(
          'address-not-allowed',
          SQLSTATE.invalidAuthorization,
          `tenant ${quoteValue(id)} does not accept connections from ${from}`,
          `${from} is outside the allowed networks of tenant ${quoteValue(id)} (revealed to the client)`,
          id,
        )
      : refuse(
          'address-not-allowed',
          SQLSTATE.invalidCatalogName,
          notServedMessage(id, key.source, policy),
          `${from} is outside the allowed networks of tenant ${quoteValue(id)} (the client was told it is not served)`,
          id,
        );
  }

  let target: string;
  let why: string;
  if (key.target !== undefined) {
    target = key.target;
    why = key.source === 'sni' || fromSni?.target === key.target ? 'chosen by the server name' : 'chosen by the user name';
  } else {
    const byPort = Object.hasOwn(policy.targetByPort, facts.frontendPort)
      ? policy.targetByPort[facts.frontendPort]
      : undefined;
    if (byPort !== undefined) {
      target = byPort;
      why = `the target of port ${facts.frontendPort}`;
    } else {
      target = policy.defaultTarget;
      why = 'the default target';
    }
  }
  const backend = ownBackend(tenant.backends, target);
  if (backend === undefined) {
    // A target HAProxy does not serve yet (a change is adding its backend): held until a table names it.
    if (tenant.pending?.includes(target) === true) return { kind: 'hold', cause: tenant.paused === true ? 'paused' : 'pending', tenant: id, target };
    return refuse(
      'unknown-target',
      SQLSTATE.rejectedEstablishment,
      `tenant ${quoteValue(id)} has no target ${quoteValue(target)} (${why})`,
      `tenant ${quoteValue(id)} has no backend for target ${quoteValue(target)} (${why}; route table ${table.version})`,
      id,
    );
  }

  if (tenant.paused === true) return { kind: 'hold', cause: 'paused', tenant: id, target, backend };
  return tenant.limits === undefined
    ? { kind: 'route', tenant: id, target, backend, cancel: false }
    : { kind: 'route', tenant: id, target, backend, cancel: false, limits: tenant.limits };
}

/**
 * Decides where one connection goes. `cancel` is what the cancel records said about the client
 * address when the packet is a CancelRequest (ignored otherwise). A route with `cancel: false` is a
 * routed startup for the caller to record. `readOption` (optional) replaces the reader of
 * `-c pgroute.tenant=` in `options`. Never throws.
 */
export function decide(
  table: RouteTable,
  facts: ConnectionFacts,
  cancel?: CancelRouting,
  readOption?: TenantOptionReader,
): Verdict {
  try {
    const p = facts.preamble;
    switch (p.kind) {
      case 'startup':
        return decideStartup(table, facts, p.params, readOption);
      case 'cancel':
        return decideCancel(facts, cancel);
      case 'invalid':
        return refuse(
          'malformed',
          SQLSTATE.protocolViolation,
          sanitizeText(typeof p.message === 'string' && p.message !== '' ? p.message : 'invalid startup packet'),
          `malformed first packet (${sanitizeText(String(p.problem), 40)})`,
        );
      case 'ssl-request':
      case 'gssenc-request': {
        const what = p.kind === 'ssl-request' ? 'SSL' : 'GSSAPI encryption';
        return refuse(
          'unexpected-negotiation',
          SQLSTATE.protocolViolation,
          // HAProxy answers a negotiation request that comes first, or after its answer to one; one
          // reaches the agent only when the client sent it inside TLS, or before that answer (pipelined
          // with another: PostgreSQL refuses that too, "received unencrypted data after SSL request").
          `unexpected ${what} negotiation request: a client may send one as its first packet, or after the server's one-byte answer to the other kind, and must wait for the answer before sending more (never inside TLS)`,
          `${p.kind === 'ssl-request' ? 'SSLRequest' : 'GSSENCRequest'} sent inside TLS or pipelined after another negotiation request (a client error)`,
        );
      }
      default:
        return internalError(`unknown preamble kind ${String((p as { kind?: unknown }).kind)}`);
    }
  } catch (err) {
    return internalError(`decide threw: ${err instanceof Error ? err.message : String(err)}`);
  }
}

/** Under SNI routing, a refusal first says what the server name did (or that none came). */
function sniHint(sni: string | undefined): string {
  return sni === undefined || sni === ''
    ? "the tenant is chosen by the TLS server name (SNI) and this client sent none: connect with sslmode=require to your tenant's host name (libpq 14 or later sends it)"
    : `the TLS server name ${quoteValue(sni)} does not name a tenant here`;
}
