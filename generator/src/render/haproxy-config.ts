// Renders haproxy.cfg and spoe.conf from the handlebars templates in haproxy/ (compiled by
// templates.ts and passed in). Pure: values in, text out; every value placed in the templates has
// been validated (validate.ts) or built here.

import { pauseContext } from './pause-context.js';
import type { Layout } from '../layout.js';
import { isIP } from 'node:net';
import type { BackendTls, Deployment } from '../model.js';
import type { RoutingPolicy } from '../../../agent/src/index.js';
import type { Settings, StatePaths } from '../settings.js';
import { durationMs } from '../duration.js';
import { haproxyAddress } from '../validate.js';
import { haproxyRefusals, queueLimitRefusal } from './refusals.js';
import { peersContext } from '../replicas/peers.js';
import { cancelContext } from './cancel-context.js';
import type { ConfigTemplates } from './templates.js';

export interface RenderedConfig {
  readonly haproxyConfig: string;
  readonly spoeConfig: string;
}

export function renderConfig(
  deployment: Deployment,
  layout: Layout,
  settings: Settings,
  paths: StatePaths,
  snapshotVersion: string,
  templates: ConfigTemplates,
): RenderedConfig {
  const backends = layout.backends.map((b) => {
    const occupant = b.state.kind === 'occupied' ? b.state.occupant : undefined;
    const check = occupant?.check ?? { kind: 'tcp' as const };
    const checked = settings.healthCheck.enabled && check.kind !== 'none';
    const members = occupant ? (occupant.members ?? [occupant.endpoint]) : undefined;
    return {
      name: b.name,
      comment: occupant ? `tenant ${occupant.tenant}, target ${occupant.target}` : b.state.kind === 'free' ? 'spare: taken at runtime by a new tenant' : 'vacated: resting until the next reload',
      queueTimeout: settings.timeouts.queue,
      // One server: `first`. Cluster members: the health check picks who may serve (Patroni
      // answers 200 on /primary only on the leader); among several healthy ones, the least loaded.
      balance: members !== undefined && members.length > 1 && check.kind === 'patroni' && check.path !== '/primary' ? 'leastconn' : 'first',
      httpCheckPath: checked && check.kind === 'patroni' ? check.path : undefined,
      pgsqlCheckUser: checked && check.kind === 'pgsql' ? check.user : undefined,
      // HAProxy's per-server maxqueue does not bound the backend's queue (partials/queue-limit.hbs).
      queueLimit: occupant?.maxqueue ? { maxqueue: occupant.maxqueue, refusal: queueLimitRefusal(occupant.tenant, occupant.target, occupant.maxqueue) } : undefined,
      servers: (members ?? [undefined]).map((m, i) => ({
        name: `s${i + 1}`,
        // Spares and vacated backends hold a placeholder in maintenance; the runtime API sets
        // the real address and makes the server ready.
        address: m ? haproxyAddress(m.host, m.port) : PLACEHOLDER_ADDRESS,
        check: checked,
        checkInterval: settings.healthCheck.interval,
        checkPort: checked && check.kind === 'patroni' ? check.port : undefined,
        // Patroni's answer is authoritative: one 503 means "not the leader (or replica) any more"
        // and one 200 means "it is now"; no need to wait for several checks during a failover.
        decisive: checked && check.kind === 'patroni',
        // After a failover, sessions on a member that changed role must not linger there.
        shutdownOnDown: checked && check.kind === 'patroni',
        maxconn: occupant?.maxconn ?? 0,
        maxqueue: occupant?.maxqueue ?? 0,
        tls: occupant?.tls === undefined || m === undefined ? undefined : backendTlsWords(occupant.tls, m.host),
        disabled: occupant === undefined,
      })),
    };
  });
  const refusals = haproxyRefusals(settings.limits.maxStartupPacket, settings.timeouts.startup);
  const context = {
    snapshotVersion,
    paths: { adminSocket: paths.adminSocket, lua: settings.luaPath, spoeConfig: paths.spoeConfig, tlsSocket: paths.tlsSocket, cancelSocket: paths.cancelSocket, serverState: paths.serverState },
    cancel: cancelContext(settings.replicas),
    tls: settings.tls === undefined ? false : { crt: settings.tls.crtPath, minVersion: settings.tls.minVersion, clientTimeout26: tlsClientTimeout26(settings.timeouts) },
    limits: settings.limits,
    reload: settings.reload,
    log: settings.log,
    timeouts: settings.timeouts,
    healthCheck: settings.healthCheck,
    listeners: deployment.listeners.map((l) => ({ bind: haproxyAddress(l.address, l.port), acceptProxy: l.acceptProxy === true })),
    negotiationAnswer: 'N',
    refusals,
    agent: {
      ...settings.agent,
      servers: settings.agent.servers.map((s, i) => ({ name: `agent${i + 1}`, address: s.socket !== undefined ? `unix@${s.socket}` : haproxyAddress(s.host, s.port) })),
    },
    backends,
    // The limits map, and the generic refusal a lookup in it defaults to (base64, as its values).
    policy: { ...POLICY_TABLES, refusalsMap: paths.limitsMap, refusalDefault: Buffer.from(refusals.overLimit, 'hex').toString('base64') },
    stats: { ...settings.stats, allowList: settings.stats.allow.join(' ') },
    peers: peersContext(deployment.replicas ?? settings.replicas, paths.peersSocket, settings.peersTls),
    pause: pauseContext(settings, paths),
    refusalDelay: settings.refusalDelay.ms > 0 ? { ...settings.refusalDelay, room: Math.max(1, Math.floor(settings.limits.maxconn / 2)) } : false,
    memo: settings.memo.enabled
      ? memoContext(paths.memoMap, settings.memo, policyReadsPort(deployment.policy))
      : false,
  };
  return { haproxyConfig: templates.haproxyConfig(context), spoeConfig: templates.spoeConfig(context) };
}

/**
 * Whether the agent's verdict on a startup can depend on the port it came to (a listener's target,
 * a TLS-only port): then the verdict memo's key holds the port (partials/memo-lookup.hbs).
 */
export function policyReadsPort(policy: RoutingPolicy): boolean {
  return Object.keys(policy.targetByPort).length > 0 || (policy.tlsRequiredPorts?.length ?? 0) > 0;
}

/**
 * The verdict memo's part of the context (partials/memo-lookup.hbs, memo-table.hbs). With the port
 * in the key every key is a 32-byte SHA-256; without, a clear-text packet of up to
 * MEMO_RAW_KEY_BYTES is its own key (no digest), any other key a hex-encoded SHA-256 (64 bytes).
 */
function memoContext(map: string, memo: Settings['memo'], portInKey: boolean) {
  const keyBytes = portInKey ? 32 : MEMO_RAW_KEY_BYTES;
  return { map, table: MEMO_TABLE, hits: MEMO_HITS_TABLE, size: memo.size, expire: memo.expire, portInKey, rawKeyBytes: MEMO_RAW_KEY_BYTES, keyBytes };
}

/**
 * The longest clear-text startup packet that is its own memo key: libpq's (psql, psycopg, the
 * drivers built on it) and node-postgres's usual packets are 40-100 bytes; a longer one (JDBC's
 * ~150) is keyed by its digest. Every memo entry holds this many key bytes (docs/memo.md "Bounds").
 */
const MEMO_RAW_KEY_BYTES = 128;

/**
 * Sizes of the admission-limit tables (partials/policy-tables.hbs): every tenant (entries expire
 * 10 minutes after their last connection), and the client addresses of the last 10 seconds.
 */
const POLICY_TABLES = { tenantsTableSize: '200k', clientsTableSize: '1m' };

/** The verdict memo's tables (partials/memo-table.hbs; generator/src/memo/ reads them). */
export const MEMO_TABLE = 'pgroute-memo';
export const MEMO_HITS_TABLE = 'pgroute-memo-hits';

/**
 * The TLS frontend's client timeout on HAProxy 2.6, which has no handshake timeout of its own (3.0+:
 * `timeout client-hs`, the startup timeout): it bounds the handshake too, so it is the startup
 * timeout and a margin (the inspect-delay must end first, so that a client without a whole startup
 * packet still gets its ErrorResponse). Nothing after the startup packet needs more: HAProxy stops
 * the client's read timeout while the connection waits for a server slot or connects, and an
 * established session has the tunnel timeout. The default client timeout, a minute, let a client
 * that never completes its handshake hold two of HAProxy's connections that long.
 */
function tlsClientTimeout26(timeouts: Settings['timeouts']): string {
  return `${Math.ceil(durationMs(timeouts.startup)) + 2_000}ms`;
}

/** Where a spare's server points until it is given a tenant: nothing listens on port 1. */
export const PLACEHOLDER_ADDRESS = '127.0.0.1:1';

/** The server-line words for TLS to a backend that accepts TLS first. */
function backendTlsWords(tls: BackendTls, host: string): string {
  const name = tls.serverName ?? (isIP(host) === 0 ? host : undefined);
  const verify = tls.verify === 'required' ? `verify required ca-file ${tls.ca ?? ''}${name ? ` verifyhost ${name}` : ''}` : 'verify none';
  return `ssl ${verify}${name ? ` sni str(${name})` : ''} alpn postgresql`;
}
