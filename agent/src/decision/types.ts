// The domain of a routing decision: what the agent knows (the route table), what HAProxy tells it
// about one connection, and the verdict it returns. Pure data; no transport here.

import type { DecodedPreamble } from '../pg/preamble-types.js';

/** A tenant's named connection targets. `primary` always exists; `pool` and `replica` where configured. */
export type TargetName = string;

/** Where a key may come from, in precedence order (first wins; disagreeing keys are refused). */
export type KeySource = 'options' | 'user' | 'database' | 'sni';

export interface UserKeyRule {
  /** exact: the whole user name is the tenant id. pattern: a regex with named groups `tenant` and optionally `target`. */
  readonly mode: 'exact' | 'pattern';
  /** Required when mode is 'pattern', e.g. '^(?<role>[^.]+)\\.(?<tenant>[a-z0-9-]+)$'. */
  readonly pattern?: string;
}

export interface RoutingPolicy {
  /** Which sources give the tenant key. `options` (`-c pgroute.tenant=<id>`) always wins when present. */
  readonly keys: readonly KeySource[];
  readonly user?: UserKeyRule;
  /** Target chosen by the public port the client used (e.g. 6432 -> pool). */
  readonly targetByPort: Readonly<Record<number, TargetName>>;
  readonly defaultTarget: TargetName;
  /** When false (default), a disabled tenant is refused with the same words as an unknown one. */
  readonly revealDisabled: boolean;
  /**
   * TLS server name (SNI) as a tenant key: a regex with a named group `tenant` (and optionally
   * `target`), e.g. '^(?<tenant>[a-z0-9-]+)\\.db\\.example\\.com$'. A server name that matches
   * names the tenant; when the startup packet names another one, the connection is refused.
   */
  readonly sni?: { readonly pattern: string };
  /** Public ports where clear-text connections are refused (TLS required). */
  readonly tlsRequiredPorts?: readonly number[];
}

export interface TenantRoute {
  readonly id: string;
  readonly enabled: boolean;
  /** target name -> HAProxy backend name, rendered from the same snapshot as haproxy.cfg. */
  readonly backends: Readonly<Record<TargetName, string>>;
  /** Networks clients may connect from (networks.ts syntax); absent: every address. */
  readonly allow?: readonly string[];
  /** Admission limits, enforced by HAProxy's stick tables with the verdict's values. */
  readonly limits?: TenantLimits;
  /**
   * The operator paused the tenant (`pgroute tenant pause`): new connections are held until it is
   * resumed (decision/hold.ts), not refused.
   */
  readonly paused?: boolean;
  /**
   * Targets the tenant has that HAProxy does not serve yet (a change is adding their backends): a
   * new connection to one is held until a route table names its backend (decision/hold.ts), not
   * refused. Only in the table the agent holds while a change is applied; absent: none.
   */
  readonly pending?: readonly TargetName[];
}

/**
 * A tenant's admission limits (absent or 0: none). The agent hands them to HAProxy with the route,
 * with the refusal each one gives; HAProxy counts (stick tables) and refuses over a limit.
 */
export interface TenantLimits {
  /** Client connections at once, across every target of the tenant. */
  readonly maxClientConnections?: number;
  /** New connections per second to the tenant. */
  readonly maxConnectionRate?: number;
  /** New connections per second to the tenant from one client address. */
  readonly maxClientConnectionRate?: number;
}

export interface RouteTable {
  /** Identifies the snapshot both the agent and haproxy.cfg were rendered from. */
  readonly version: string;
  readonly policy: RoutingPolicy;
  readonly tenants: ReadonlyMap<string, TenantRoute>;
}

/** What HAProxy tells the agent about one connection. */
export interface ConnectionFacts {
  readonly preamble: DecodedPreamble;
  /** Client address as HAProxy saw it (IPv4 or IPv6 text). */
  readonly clientAddress: string;
  /** The public port the client connected to. */
  readonly frontendPort: number;
  /** The connection came through TLS (terminated by HAProxy). */
  readonly tls?: boolean;
  /** The TLS server name the client sent (SNI), if any. */
  readonly sni?: string;
  /**
   * A CancelRequest only: the cancel ids HAProxy recorded for the client address, most recent
   * first (cancel-router.ts recordIds()). Absent: HAProxy handed over no record.
   */
  readonly cancelIds?: readonly CancelId[];
}

/** A cancel id as HAProxy records it: two 32-bit words (contract.ts cancelId). */
export type CancelId = readonly [number, number];

/** Machine-readable reason for a refusal (metrics label, log field). */
export type RefusalReason =
  | 'malformed'
  | 'unexpected-negotiation'
  | 'no-key'
  | 'tls-required'
  | 'conflicting-keys'
  | 'unknown-tenant'
  | 'disabled-tenant'
  | 'address-not-allowed'
  | 'unknown-target'
  | 'cancel-unroutable'
  | 'cancel-rate-limited'
  | 'pause-timeout'
  | 'pause-queue-full'
  | 'pause-shutdown'
  | 'internal-error';

export interface RouteVerdict {
  readonly kind: 'route';
  readonly tenant: string;
  readonly target: TargetName;
  readonly backend: string;
  /** True when this routes a CancelRequest. */
  readonly cancel: boolean;
  /**
   * A CancelRequest only: the further backends its client address was routed to, which get a copy
   * of the cancel (the connection itself goes to `backend`).
   */
  readonly copies?: readonly string[];
  /** A routed startup's admission limits (never on a cancel: a cancel must reach a tenant at its cap). */
  readonly limits?: TenantLimits;
}

export interface RefuseVerdict {
  readonly kind: 'refuse';
  readonly reason: RefusalReason;
  /** SQLSTATE sent to the client, e.g. '08P01'. */
  readonly sqlstate: string;
  /** What the client sees; never names a tenant the client did not name, never lists tenants. */
  readonly message: string;
  /** What the operator sees in logs (may say more, e.g. that the tenant is disabled). */
  readonly logDetail: string;
  /** Tenant id the client asked for, when one was found (logs/metrics only). */
  readonly tenant?: string;
}

/**
 * A startup for a paused tenant: the connection waits (HAProxy's hold frontend, the agent's hold
 * queue) until the tenant is resumed, then is decided again against the route table of that moment.
 * Never a route: nothing may remember it as one (a verdict memo stores routes only).
 */
export interface HoldVerdict {
  readonly kind: 'hold';
  /** `paused`: the operator paused the tenant; `pending`: its target's backend is being added. */
  readonly cause: HoldCause;
  readonly tenant: string;
  readonly target: TargetName;
  /** The backend it would go to now (logs only: the release decides again); none while pending. */
  readonly backend?: string;
}

export type HoldCause = 'paused' | 'pending';

export type Verdict = RouteVerdict | RefuseVerdict | HoldVerdict;
