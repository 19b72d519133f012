// Joins what pgroute wrote (routes.json, layout.json, access.json) with what HAProxy says (`show
// stat`) into one status row per tenant target. Pure.

import type { RouteTableDocument, TenantLimits } from '../../../agent/src/index.js';
import type { Layout, Occupant } from '../layout.js';
import type { ShownPeersSection } from '../haproxy/show-peers.js';
import type { RefusedTenant } from '../model.js';
import { statsByBackend, type StatRow } from './show-stat.js';
import type { TenantCounters } from './show-table.js';

/** The part of routes.json read here. */
export type RoutesView = Pick<RouteTableDocument, 'tenants'>;

/** A tenant's policy at the door: who may connect, its limits, and what HAProxy counted (when it answered). */
export interface PolicyStatus {
  /** Allowed networks; absent: every address. */
  readonly allow?: readonly string[];
  readonly limits: TenantLimits;
  readonly counters?: TenantCounters;
}

export type Health = 'UP' | 'DOWN' | 'MAINT' | 'no check' | 'unknown';

export interface ServerStatus {
  readonly name: string;
  readonly address: string;
  /** Normalized: UP (also NOLB, "UP 1/2" going down), DOWN (also "DOWN 1/2" coming up), MAINT (also DRAIN), no check. */
  readonly health: Health;
  /** HAProxy's own words, e.g. "DOWN 1/2" or "MAINT (via pg.x/s1)". */
  readonly status: string;
  readonly checkStatus?: string;
  readonly scur: number;
  /** Connections waiting for this server (its own queue). */
  readonly queued: number;
  /** Limits as HAProxy applies them now (runtime changes included); absent: none. */
  readonly maxconn?: number;
  readonly maxqueue?: number;
  /** Seconds since this server last went UP or DOWN. */
  readonly lastChangeSeconds?: number;
}

export interface TargetStatus {
  readonly target: string;
  readonly backend: string;
  /** host:port from the layout (the first server). */
  readonly address: string;
  /** UP when a server may take connections; DOWN, MAINT, no check (none checked, none UP); unknown without HAProxy's answer. */
  readonly health: Health;
  /** Current sessions (at the servers, queued ones not included), session rate (per second, last second) and total sessions (the BACKEND line). */
  readonly scur: number;
  readonly rate: number;
  readonly stot: number;
  /** Connections waiting for a server: the backend's queue and its servers'. */
  readonly queued: number;
  /**
   * Connections HAProxy could not hand to a server: the connect failed, or the wait in the queue
   * ended (`timeout queue`, queue full) — `econ` of the BACKEND line.
   */
  readonly refused: number;
  /** Per-server limits: HAProxy's when it answered (runtime changes included), else the layout's. Absent: none. */
  readonly maxconn?: number;
  readonly maxqueue?: number;
  /** Seconds since the backend last went UP or DOWN (HAProxy's lastchg). */
  readonly lastChangeSeconds?: number;
  readonly servers: readonly ServerStatus[];
}

export interface TenantStatus {
  readonly id: string;
  /** paused: the operator's `pgroute tenant pause` (access.json); new connections are held. */
  readonly state: 'enabled' | 'disabled' | 'paused';
  /** Why disabled: the operator's switch (access.json) or the source (enabled: false / label). */
  readonly disabledBy?: 'access.json' | 'source';
  /** access.json and routes.json disagree: the running pipeline has not applied the switch (yet). */
  readonly pending?: boolean;
  /** Sum of the targets' current sessions. */
  readonly scur: number;
  readonly targets: readonly TargetStatus[];
  /** From routes.json and `show table pgroute-tenants`; absent for a tenant routes.json does not name. */
  readonly policy?: PolicyStatus;
}

export interface StatusReport {
  readonly haproxy: { readonly reachable: boolean; readonly error?: string };
  readonly tenants: readonly TenantStatus[];
  /** Definitions the running pipeline's sources gave but pgroute refused, with why (refused.json). */
  readonly refused: readonly RefusedTenant[];
  /** This replica's view of its peers (HAProxy's `show peers`); absent when HAProxy did not answer it. */
  readonly replica?: ReplicaStatus;
  /** Connections in this replica's hold frontend (paused tenants, targets being added): waiting now, and ever (HAProxy's stats). */
  readonly held?: { readonly now: number; readonly total: number };
}

/** A peer as this replica's HAProxy sees it. */
export interface PeerStatus {
  readonly name: string;
  readonly address: string;
  /** A peers session with it is established now. */
  readonly connected: boolean;
  /** HAProxy's last_status of the peer: ESTA, CONN, NONE, ... */
  readonly lastStatus: string;
  /** Seconds since the last handshake with it (established or attempted); absent: never. */
  readonly lastHandshakeSeconds?: number;
}

export interface ReplicaStatus {
  /** This replica's peer name (--name). */
  readonly name: string;
  /** The initial resync of the replicated tables (from the old process and the peers) finished or was given up. */
  readonly resynced: boolean;
  /** The other replicas, sorted by name; empty for a lone replica. */
  readonly peers: readonly PeerStatus[];
}

/** The replica part of the report from one `show peers` section. */
export function replicaStatus(section: ShownPeersSection): ReplicaStatus {
  const self = section.peers.find((p) => p.local);
  const peers = section.peers
    .filter((p) => !p.local)
    .map((p): PeerStatus => ({ name: p.name, address: p.address, connected: p.connected, lastStatus: p.lastStatus, ...(p.lastHandshakeSeconds === undefined ? {} : { lastHandshakeSeconds: p.lastHandshakeSeconds }) }))
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  return { name: self?.name ?? '', resynced: section.resynced, peers };
}

export function normalizeHealth(status: string): Health {
  if (status === 'no check') return 'no check';
  if (/^(UP|NOLB)\b/.test(status)) return 'UP';
  if (/^DOWN\b/.test(status)) return 'DOWN';
  if (/^(MAINT|DRAIN)\b/.test(status)) return 'MAINT';
  return 'unknown';
}

/** A target's health from its servers' (the BACKEND line says only UP or DOWN). */
export function targetHealth(servers: readonly ServerStatus[]): Health {
  if (servers.length === 0) return 'unknown';
  const h = servers.map((s) => s.health);
  if (h.includes('UP')) return 'UP';
  if (h.includes('no check')) return 'no check';
  if (h.every((x) => x === 'MAINT')) return 'MAINT';
  if (h.includes('DOWN')) return 'DOWN';
  return 'unknown';
}

function occupants(layout: Layout): Map<string, Occupant> {
  const out = new Map<string, Occupant>();
  for (const b of layout.backends) if (b.state.kind === 'occupied') out.set(b.name, b.state.occupant);
  return out;
}

function hostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

/**
 * One entry per tenant named by routes.json or occupying a backend in layout.json, sorted by id;
 * its targets sorted by name. `stats` undefined: HAProxy did not answer (health "unknown", counters 0).
 */
export function joinStatus(input: {
  routes: RoutesView;
  layout: Layout;
  disabled: readonly string[];
  /** Tenants paused in access.json. */
  paused?: readonly string[];
  stats?: readonly StatRow[];
  statsError?: string;
  refused?: readonly RefusedTenant[];
  counters?: ReadonlyMap<string, TenantCounters>;
  replica?: ReplicaStatus;
}): StatusReport {
  const routed = new Map(input.routes.tenants.map((t) => [t.id, t]));
  const byBackend = input.stats === undefined ? undefined : statsByBackend(input.stats);
  const occ = occupants(input.layout);
  const off = new Set(input.disabled);
  const paused = new Set(input.paused ?? []);
  const tenants = new Map<string, { enabled?: boolean; backends: Map<string, string> }>();
  for (const t of input.routes.tenants) tenants.set(t.id, { enabled: t.enabled, backends: new Map(Object.entries(t.backends)) });
  for (const [backend, o] of occ) {
    let t = tenants.get(o.tenant);
    if (t === undefined) tenants.set(o.tenant, (t = { backends: new Map() }));
    if (!t.backends.has(o.target)) t.backends.set(o.target, backend);
  }
  const out: TenantStatus[] = [];
  for (const id of [...tenants.keys()].sort()) {
    const t = tenants.get(id) as { enabled?: boolean; backends: Map<string, string> };
    const targets: TargetStatus[] = [];
    for (const target of [...t.backends.keys()].sort()) {
      const backend = t.backends.get(target) as string;
      const o = occ.get(backend);
      const st = byBackend?.get(backend);
      const servers: ServerStatus[] = (st?.servers ?? []).map((s) => {
        const server: { -readonly [K in keyof ServerStatus]: ServerStatus[K] } = { name: s.svname, address: s.addr ?? '', health: normalizeHealth(s.status), status: s.status, scur: s.scur, queued: s.qcur };
        if (s.checkStatus !== undefined) server.checkStatus = s.checkStatus;
        if (s.slim !== undefined) server.maxconn = s.slim;
        if (s.qlimit !== undefined) server.maxqueue = s.qlimit;
        if (s.lastchg !== undefined) server.lastChangeSeconds = s.lastchg;
        return server;
      });
      const row: { -readonly [K in keyof TargetStatus]: TargetStatus[K] } = {
        target,
        backend,
        address: o === undefined ? (servers[0]?.address ?? '') : hostPort(o.endpoint.host, o.endpoint.port),
        health: byBackend === undefined ? 'unknown' : targetHealth(servers),
        // At the servers: the BACKEND line's scur also counts the connections waiting in its queue.
        scur: servers.length > 0 ? servers.reduce((n, s) => n + s.scur, 0) : (st?.backend?.scur ?? 0),
        rate: st?.backend?.rate ?? 0,
        stot: st?.backend?.stot ?? 0,
        queued: (st?.backend?.qcur ?? 0) + servers.reduce((n, s) => n + s.queued, 0),
        refused: st?.backend?.econ ?? 0,
        servers,
      };
      // HAProxy's limits when it answered (a runtime `set maxconn` shows), else what the layout renders.
      const maxconn = st === undefined ? o?.maxconn : servers[0]?.maxconn;
      const maxqueue = st === undefined ? o?.maxqueue : servers[0]?.maxqueue;
      if (maxconn !== undefined && maxconn > 0) row.maxconn = maxconn;
      if (maxqueue !== undefined && maxqueue > 0) row.maxqueue = maxqueue;
      if (st?.backend?.lastchg !== undefined) row.lastChangeSeconds = st.backend.lastchg;
      targets.push(row);
    }
    const byOperator = off.has(id);
    const bySource = t.enabled === false && !byOperator;
    const status: { -readonly [K in keyof TenantStatus]: TenantStatus[K] } = {
      id,
      state: byOperator || t.enabled === false ? 'disabled' : 'enabled',
      scur: targets.reduce((n, x) => n + x.scur, 0),
      targets,
    };
    if (byOperator) status.disabledBy = 'access.json';
    else if (bySource) status.disabledBy = 'source';
    if (byOperator && t.enabled === true) status.pending = true;
    if (!byOperator && t.enabled !== false && paused.has(id)) {
      status.state = 'paused';
      if (routed.get(id)?.paused !== true) status.pending = true;
    }
    const route = routed.get(id);
    if (route !== undefined) {
      const counters = input.counters?.get(id);
      status.policy = { ...(route.allow === undefined ? {} : { allow: route.allow }), limits: route.limits ?? {}, ...(counters === undefined ? {} : { counters }) };
    }
    out.push(status);
  }
  const haproxy = byBackend !== undefined ? { reachable: true } : input.statsError === undefined ? { reachable: false } : { reachable: false, error: input.statsError };
  const hold = input.stats?.find((r) => r.pxname === 'pgroute-hold' && r.svname === 'FRONTEND');
  return {
    haproxy,
    tenants: out,
    refused: input.refused ?? [],
    ...(input.replica === undefined ? {} : { replica: input.replica }),
    ...(hold === undefined ? {} : { held: { now: hold.scur, total: hold.stot } }),
  };
}

/** `<backend>/<server>` of every server that may carry a tenant's sessions: its occupied backends and those resting after it left. */
export function tenantServers(layout: Layout, tenant: string): string[] {
  const out: string[] = [];
  for (const b of layout.backends) {
    const o = b.state.kind === 'occupied' ? b.state.occupant : b.state.kind === 'resting' ? b.state.was : undefined;
    if (o?.tenant !== tenant) continue;
    const count = o.members?.length ?? 1;
    for (let i = 1; i <= Math.max(1, count); i++) out.push(`${b.name}/s${i}`);
  }
  return out;
}
