// The generator's domain: tenants as sources see them, and the snapshot one pipeline renders.

import type { RoutingPolicy } from '../../agent/src/decision/types.js';

export interface Endpoint {
  readonly host: string;
  readonly port: number;
}

export interface Tenant {
  readonly id: string;
  readonly enabled: boolean;
  /** target name -> where it lives. Always has `primary`. */
  readonly targets: Readonly<Record<string, Endpoint>>;
  /** Per-server connection limit; excess connections queue in HAProxy. */
  readonly maxconn?: number;
}

/** A public port and the target it selects when the startup packet names none. */
export interface Listener {
  readonly address: string;
  readonly port: number;
  readonly target?: string;
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
}
