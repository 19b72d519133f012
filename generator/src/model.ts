// The generator's domain: tenants as sources see them, and the snapshot one pipeline renders.

import type { Endpoint, RoutingPolicy, TenantLimits } from '../../agent/src/index.js';
import type { Replicas } from './replicas/peers.js';

export type { Endpoint, TenantLimits };

/** How HAProxy checks a target's servers. */
export type HealthCheck =
  | { readonly kind: 'tcp' }
  | { readonly kind: 'none' }
  /** HAProxy's PostgreSQL check: a startup packet as `user`; any answer but an error is healthy. */
  | { readonly kind: 'pgsql'; readonly user: string }
  /** Patroni's REST API: only the members answering 200 on `path` (/primary, /replica) take connections. */
  | { readonly kind: 'patroni'; readonly port: number; readonly path: string };

/**
 * TLS from HAProxy to a target that accepts TLS first (PostgreSQL 17+ direct TLS with ALPN
 * `postgresql`, or a TLS terminator in front of the server). Older servers expect an SSLRequest
 * first, which HAProxy cannot send.
 */
export interface BackendTls {
  /** `required`: the server certificate must be signed by `ca` and match `serverName`. */
  readonly verify: 'required' | 'none';
  readonly ca?: string;
  /** Name sent as SNI and checked against the certificate (default: the host). */
  readonly serverName?: string;
}

/** Where a target lives: one server, or the members of a cluster (host/port is the first member). */
export interface Target extends Endpoint {
  readonly members?: readonly Endpoint[];
  readonly check?: HealthCheck;
  readonly tls?: BackendTls;
}

export interface Tenant {
  readonly id: string;
  readonly enabled: boolean;
  /** target name -> where it lives. Always has `primary`. */
  readonly targets: Readonly<Record<string, Target>>;
  /** Per-server connection limit; excess connections queue in HAProxy. */
  readonly maxconn?: number;
  /** Connections that may wait per usable server of a target; beyond, refused with 53300 (partials/queue-limit.hbs). */
  readonly maxqueue?: number;
  /** Networks clients may connect from (`10.0.0.0/8`, `2001:db8::/32`); absent: every address. */
  readonly allow?: readonly string[];
  /** Admission limits the tenant sets; the others take DEFAULT_TENANT_LIMITS (policy.ts). */
  readonly limits?: TenantLimits;
  /** Paused by the operator (access.json): new connections are held until resumed. */
  readonly paused?: boolean;
}

/** A public port and the target it selects when the startup packet names none. */
export interface Listener {
  readonly address: string;
  readonly port: number;
  readonly target?: string;
  /** With TLS configured: 'optional' (default) accepts clear text too, 'required' refuses it. */
  readonly tls?: 'optional' | 'required';
  /**
   * Every connection starts with a PROXY protocol header (v1 or v2) from a load balancer in front,
   * whose client address pgroute then uses (allowed networks, limits, cancel records, logs). Only
   * for a port that nobody but that balancer can reach: whoever can, can claim any address.
   */
  readonly acceptProxy?: boolean;
}

/** A definition a source saw but pgroute refused, with the reason. Never rendered. */
export interface RefusedTenant {
  readonly where: string;
  readonly id?: string;
  readonly reason: string;
}

/** Everything a source knows at one instant. Sources always yield complete snapshots. */
export interface TenantSnapshot {
  readonly tenants: readonly Tenant[];
  readonly refused: readonly RefusedTenant[];
}

export interface Deployment {
  readonly listeners: readonly Listener[];
  readonly policy: RoutingPolicy;
  /** The replicas as the platform lists them now (Kubernetes); absent: Settings.replicas (flags). */
  readonly replicas?: Replicas;
}
