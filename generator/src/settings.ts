// Every knob of a rendered deployment, with its default. One place, so the CLI, the docs and the
// templates agree.

import { join, resolve } from 'node:path';
import type { SpopEndpoint } from '../../agent/src/index.js';
import { assetPath } from './assets.js';
import { singleReplica, type Replicas } from './replicas/peers.js';

/** Where HAProxy reaches the agent (TCP, or a unix socket on the same host). */
export type AgentEndpoint = SpopEndpoint;

export interface Settings {
  /** Where rendered files and sockets live. */
  readonly stateDir: string;
  readonly luaPath: string;
  readonly agent: {
    readonly servers: readonly AgentEndpoint[];
    /** How long HAProxy waits for a verdict before refusing (fail closed). */
    readonly processingTimeout: string;
    readonly helloTimeout: string;
    readonly idleTimeout: string;
    readonly connectTimeout: string;
    readonly checkInterval: string;
    readonly maxWaitingFrames: number;
  };
  readonly stats: {
    readonly enabled: boolean;
    readonly address: string;
    readonly port: number;
    /** Sources besides loopback that may connect (IPs or networks); empty: anyone who reaches the address. */
    readonly allow: readonly string[];
  };
  readonly timeouts: {
    /** Longest wait for a complete startup packet (HAProxy's inspect-delay). */
    readonly startup: string;
    readonly connect: string;
    /**
     * Before a session is established (startup packet, TLS handshake, connect): how long either
     * side may stay silent.
     */
    readonly client: string;
    readonly server: string;
    /**
     * An established session silent in both directions is closed after this (HAProxy's `timeout
     * tunnel`). PostgreSQL itself has no such limit: LISTEN-only workers, long CREATE INDEX and
     * idle psql sessions stay silent for hours, so the default is days; TCP keepalive (haproxy.cfg's
     * clitcpka/srvtcpka) finds peers that are gone within minutes.
     */
    readonly session: string;
    readonly queue: string;
  };
  readonly limits: { readonly maxconn: number; readonly maxStartupPacket: number };
  readonly log: { readonly enabled: boolean; readonly target: string; readonly errorsOnly: boolean };
  readonly reload: { readonly hardStopAfter: string; readonly maxReloads: number };
  readonly healthCheck: {
    readonly enabled: boolean;
    readonly interval: string;
    /** Longest a check may wait for its answer (HAProxy's `timeout check`). */
    readonly timeout: string;
  };
  /** Spare backends kept free so new tenants are added through the runtime API, without a reload. */
  readonly spares: number;
  /** How long a vacated spare rests (server in maintenance) before another tenant may take it. */
  readonly restMs: number;
  /** This replica and its peers (HAProxy peers protocol); one replica unless --peer lists several. */
  readonly replicas: Replicas;
  /**
   * Mutual TLS between the replicas' peers listeners (--peers-tls-cert, --peers-tls-ca): each
   * replica presents `cert` (PEM: certificate chain and key) and accepts only peers whose
   * certificate `ca` signed; absent: the peers protocol in clear, unauthenticated.
   */
  readonly peersTls?: { readonly cert: string; readonly ca: string };
  /** Connections of a paused tenant (`pgroute tenant pause`): held at most this long, this many per tenant. */
  readonly pause: { readonly timeoutMs: number; readonly maxHeld: number };
  /**
   * The verdict memo (docs/memo.md): HAProxy remembers which tenant target the agent chose for a
   * startup's facts and routes repeats without asking. `size` entries at most, each forgotten
   * `expire` after it was written.
   */
  readonly memo: { readonly enabled: boolean; readonly size: number; readonly expire: string };
  /**
   * A connection refused over a tenant's rate, per-address rate or cap gets its ErrorResponse `ms`
   * late (0: at once), if the refusal comes within `latestMs` of the connection's start: the delay
   * must end inside the startup timeout (HAProxy's inspect-delay), or HAProxy would abort it and
   * close the connection without a word. README "Per-tenant policy"; partials/refusal-delay.hbs.
   */
  readonly refusalDelay: { readonly ms: number; readonly latestMs: number };
  /** TLS on the public port; absent: SSLRequest is answered 'N'. */
  readonly tls?: {
    /** PEM with the certificate chain and key, as HAProxy's `crt` wants it. */
    readonly crtPath: string;
    readonly minVersion: 'TLSv1.2' | 'TLSv1.3';
  };
}

export const DEFAULT_PORT = 5432;
export const DEFAULT_AGENT_PORT = 6710;
export const DEFAULT_AGENT_HTTP_PORT = 6711;
export const DEFAULT_STATS_PORT = 8404;

export function defaultSettings(stateDir = '.pgroute'): Settings {
  return {
    stateDir: resolve(stateDir),
    luaPath: assetPath('haproxy', 'pgroute.lua'),
    agent: {
      servers: [{ host: '127.0.0.1', port: DEFAULT_AGENT_PORT }],
      processingTimeout: `${DEFAULT_AGENT_TIMEOUT_MS / 1_000}s`,
      helloTimeout: '2s',
      idleTimeout: '60s',
      connectTimeout: '500ms',
      checkInterval: '1s',
      maxWaitingFrames: 200,
    },
    stats: { enabled: true, address: '127.0.0.1', port: DEFAULT_STATS_PORT, allow: [] },
    timeouts: { startup: '5s', connect: '5s', client: '1m', server: '1m', session: '7d', queue: '10s' },
    limits: { maxconn: 4_096, maxStartupPacket: 10_000 },
    log: { enabled: true, target: 'stdout', errorsOnly: true },
    reload: { hardStopAfter: '1h', maxReloads: 50 },
    healthCheck: { enabled: true, interval: '2s', timeout: '5s' },
    spares: 16,
    restMs: 10_000,
    replicas: singleReplica(),
    pause: { timeoutMs: 30_000, maxHeld: 200 },
    memo: { enabled: false, size: 100_000, expire: '10m' },
    refusalDelay: refusalDelay(DEFAULT_REFUSAL_DELAY_MS, 5_000),
  };
}

/** A refused reconnect loop of 8 connections at once then costs the router 8 refusals a second. */
export const DEFAULT_REFUSAL_DELAY_MS = 1_000;

/**
 * How long HAProxy waits for the agent's verdict (--agent-timeout). At 1s, an agent paused for
 * 0.7 s during a burst right after start-up refused part of it on HAProxy 3.2
 * (test/e2e/agent-stall.test.ts).
 */
export const DEFAULT_AGENT_TIMEOUT_MS = 2_000;
/** What a delayed refusal leaves of the startup timeout, at least (HAProxy's timers are not exact). */
export const REFUSAL_DELAY_SPARE_MS = 500;

/** The refusal delay for a startup timeout of `startupMs`: refusals later than leaves room for are not delayed. */
export function refusalDelay(ms: number, startupMs: number): Settings['refusalDelay'] {
  return { ms, latestMs: Math.max(0, startupMs - ms - REFUSAL_DELAY_SPARE_MS) };
}

export interface StatePaths {
  readonly haproxyConfig: string;
  readonly spoeConfig: string;
  readonly routes: string;
  readonly layout: string;
  /** The listeners and routing policy of the applied generation (what `pgroute plan` compares against). */
  readonly deployment: string;
  /** The definitions the running pipeline refused, with why (for `pgroute status`). */
  readonly refused: string;
  readonly adminSocket: string;
  readonly masterSocket: string;
  readonly pidFile: string;
  /** The socket the `pgroute up`/`watch` running on this state dir answers on (state-owner.ts). */
  readonly owner: string;
  readonly tlsSocket: string;
  /** HAProxy's internal frontend for the agent's copies of a cancel (haproxy/partials/cancel-copy.hbs). */
  readonly cancelSocket: string;
  /** HAProxy's internal frontend where connections of paused tenants wait (haproxy/partials/pause-frontend.hbs); -tls: those that came through TLS. */
  readonly holdSocket: string;
  readonly holdTlsSocket: string;
  /** Servers' health and state handed from the running worker to the next one across a reload. */
  readonly serverState: string;
  /** The local peer's listener when no peer list is given (stick tables survive reloads through it). */
  readonly peersSocket: string;
  /** The verdict memo's map (generator/src/memo/): memoizable tenant targets and their variables. */
  readonly memoMap: string;
  /** The limits map (generator/src/limits/): the ErrorResponse of every tenant's limits, read by HAProxy only when it refuses. */
  readonly limitsMap: string;
}

export function statePaths(stateDir: string): StatePaths {
  return {
    haproxyConfig: join(stateDir, 'haproxy.cfg'),
    spoeConfig: join(stateDir, 'spoe.conf'),
    routes: join(stateDir, 'routes.json'),
    layout: join(stateDir, 'layout.json'),
    deployment: join(stateDir, 'deployment.json'),
    refused: join(stateDir, 'refused.json'),
    adminSocket: join(stateDir, 'haproxy-admin.sock'),
    masterSocket: join(stateDir, 'haproxy-master.sock'),
    pidFile: join(stateDir, 'haproxy.pid'),
    owner: join(stateDir, 'pgroute-owner.sock'),
    tlsSocket: join(stateDir, 'haproxy-tls.sock'),
    cancelSocket: join(stateDir, 'haproxy-cancel.sock'),
    holdSocket: join(stateDir, 'haproxy-hold.sock'),
    holdTlsSocket: join(stateDir, 'haproxy-hold-tls.sock'),
    serverState: join(stateDir, 'haproxy-servers.state'),
    peersSocket: join(stateDir, 'haproxy-peers.sock'),
    memoMap: join(stateDir, 'memo.map'),
    limitsMap: join(stateDir, 'limits.map'),
  };
}
