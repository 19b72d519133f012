// Maps CLI flags onto Settings, so every command spells a knob the same way.

import { isIP } from 'node:net';
import { resolve } from 'node:path';
import { Option, type Command } from 'commander';
import { ConfigError, DEFAULT_AGENT_HTTP_PORT, DEFAULT_AGENT_PORT, DEFAULT_PORT, DEFAULT_STATS_PORT, defaultSettings, type Listener, type Settings } from '../generator/src/index.js';
import { parseStatsAllow } from './stats-allow.js';

export interface DeploymentFlags {
  stateDir: string;
  port: string;
  bind: string;
  agentPort: string;
  agentHost: string;
  agentSocket?: string;
  agentHttpPort: string;
  statsPort: string;
  statsBind: string;
  statsAllow?: string;
  startupTimeout: string;
  agentTimeout: string;
  sessionTimeout: string;
  log: string;
  spares: string;
  maxconn: string;
  hardStopAfter: string;
  maxReloads: string;
  tlsRequired: boolean;
  checkInterval: string;
}

export function addDeploymentFlags(cmd: Command): Command {
  return cmd
    .addOption(new Option('--state-dir <dir>', 'where rendered files and sockets live').default('.pgroute').env('PGROUTE_STATE_DIR'))
    .addOption(new Option('--port <port>', 'public PostgreSQL port (when the tenants file lists no listeners)').default(String(DEFAULT_PORT)).env('PGROUTE_PORT'))
    .addOption(new Option('--bind <address>', 'address the public port listens on').default('0.0.0.0').env('PGROUTE_BIND'))
    .addOption(new Option('--agent-host <host>', 'address of the pgroute agent').default('127.0.0.1').env('PGROUTE_AGENT_HOST'))
    .addOption(new Option('--agent-port <port>', 'SPOP port of the pgroute agent').default(String(DEFAULT_AGENT_PORT)).env('PGROUTE_AGENT_PORT'))
    .addOption(new Option('--agent-socket <path>', 'serve SPOP to HAProxy on this unix socket instead of --agent-host:--agent-port (same host only)').env('PGROUTE_AGENT_SOCKET'))
    .addOption(new Option('--agent-http-port <port>', "agent's /healthz and /metrics port").default(String(DEFAULT_AGENT_HTTP_PORT)).env('PGROUTE_AGENT_HTTP_PORT'))
    .addOption(new Option('--stats-port <port>', "HAProxy's stats and Prometheus port (0 disables)").default(String(DEFAULT_STATS_PORT)).env('PGROUTE_STATS_PORT'))
    .addOption(new Option('--stats-bind <address>', "address of HAProxy's stats port (an IP; 0.0.0.0 in a container whose port is published)").default('127.0.0.1').env('PGROUTE_STATS_BIND'))
    .addOption(new Option('--stats-allow <sources>', "only these sources (and loopback) may read the stats port: IPs, networks, or gateway (this namespace's default gateway, where Docker's published ports come from)").env('PGROUTE_STATS_ALLOW'))
    .addOption(new Option('--startup-timeout <duration>', 'longest wait for a complete startup packet (HAProxy syntax: 5s, 500ms)').default('5s'))
    .addOption(new Option('--agent-timeout <duration>', 'how long HAProxy waits for a verdict before refusing').default('1s'))
    .addOption(new Option('--session-timeout <duration>', 'an established session silent in both directions this long is closed (TCP keepalive finds dead peers sooner); at most 24d').default(defaultSettings().timeouts.session).env('PGROUTE_SESSION_TIMEOUT'))
    .addOption(new Option('--maxconn <n>', 'most client connections HAProxy accepts (each needs two open files)').default('4096').env('PGROUTE_MAXCONN'))
    .addOption(new Option('--spares <n>', 'spare backends kept free so new tenants need no reload').default('16').env('PGROUTE_SPARES'))
    .addOption(new Option('--hard-stop-after <duration>', 'longest an old HAProxy worker may keep serving its sessions after a reload').default('1h').env('PGROUTE_HARD_STOP_AFTER'))
    .addOption(new Option('--max-reloads <n>', 'reloads an old worker may survive before it is stopped (mworker-max-reloads)').default('50').env('PGROUTE_MAX_RELOADS'))
    .addOption(new Option('--tls <mode>', 'TLS on the public port: off, or auto (pgroute makes a CA and a server certificate in the state dir and renews it)').choices(['off', 'auto']).default('off').env('PGROUTE_TLS'))
    .addOption(new Option('--tls-secret <namespace/name>', 'with --tls auto: keep the CA and certificate in this Kubernetes Secret, shared by every replica (needs get and update on it, and create unless it exists)').env('PGROUTE_TLS_SECRET'))
    .addOption(new Option('--tls-cert <file>', 'serve this certificate (PEM, chain first) instead; implies TLS').env('PGROUTE_TLS_CERT'))
    .addOption(new Option('--tls-key <file>', 'private key of --tls-cert (default: read from the --tls-cert file)').env('PGROUTE_TLS_KEY'))
    .addOption(new Option('--tls-san <names...>', 'names and addresses in the auto certificate (default: localhost, 127.0.0.1, ::1, this host name)').env('PGROUTE_TLS_SANS'))
    .addOption(new Option('--tls-watch-interval <duration>', 'how often --tls-cert and --tls-key are read again; a changed, valid pair is swapped in without a reload').default('30s').env('PGROUTE_TLS_WATCH_INTERVAL'))
    .addOption(new Option('--tls-min-version <version>', 'oldest TLS version accepted').choices(['TLSv1.2', 'TLSv1.3']).default('TLSv1.2'))
    .addOption(new Option('--tls-required', 'refuse clear-text connections on --port (listeners in the tenants file set their own)').default(false))
    .addOption(new Option('--check-interval <duration>', 'health check interval of every tenant server (a failing server is checked every 250ms)').default('2s').env('PGROUTE_CHECK_INTERVAL'))
    .addOption(new Option('--log <mode>', "HAProxy traffic log: errors (refused or failed sessions), all, off").choices(['errors', 'all', 'off']).default('errors'));
}

export function parsePort(name: string, value: string, allowZero = false): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < (allowZero ? 0 : 1) || n > 65535) throw new ConfigError(`${name} must be a port number from ${allowZero ? 0 : 1} to 65535, got "${value}"`);
  return n;
}

function parseCount(name: string, value: string, max: number): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > max) throw new ConfigError(`${name} must be a whole number from 0 to ${max}, got "${value}"`);
  return n;
}

function parseIp(name: string, value: string): string {
  if (isIP(value) === 0) throw new ConfigError(`${name} must be an IP address such as 127.0.0.1 or 0.0.0.0, got "${value}"`);
  return value;
}

const UNIT_MS: Record<string, number> = { us: 0.001, ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** A duration flag in milliseconds (HAProxy's syntax; no unit means milliseconds), at least `minMs`. */
export function parseDurationMs(name: string, value: string, minMs = 1): number {
  const m = /^(\d+)(us|ms|s|m|h|d)?$/.exec(value);
  const ms = m === null ? NaN : Number(m[1]) * (UNIT_MS[m[2] ?? 'ms'] ?? NaN);
  if (!Number.isFinite(ms) || ms < minMs) {
    throw new ConfigError(`${name} must be a duration${minMs > 0 ? ` of at least ${minMs}ms` : ''} like 500ms, 5s or 1m, got "${value}"`);
  }
  return ms;
}

/** A duration flag as given (HAProxy reads the same syntax), once it is known to be valid. */
function parseDuration(name: string, value: string, minMs = 0): string {
  parseDurationMs(name, value, minMs);
  return value;
}

export function settingsFromFlags(f: DeploymentFlags): { settings: Settings; fallbackListener: Listener; agentHttpPort: number } {
  const base = defaultSettings(f.stateDir);
  const statsPort = parsePort('--stats-port', f.statsPort, true);
  const settings: Settings = {
    ...base,
    agent: {
      ...base.agent,
      servers: [{ host: f.agentHost, port: parsePort('--agent-port', f.agentPort), ...(f.agentSocket ? { socket: parseSocketPath('--agent-socket', f.agentSocket) } : {}) }],
      processingTimeout: parseDuration('--agent-timeout', f.agentTimeout),
    },
    stats: { ...base.stats, enabled: statsPort !== 0, address: parseIp('--stats-bind', f.statsBind), port: statsPort, allow: parseStatsAllow(f.statsAllow) },
    timeouts: { ...base.timeouts, startup: parseDuration('--startup-timeout', f.startupTimeout), session: parseSessionTimeout(f.sessionTimeout) },
    healthCheck: { ...base.healthCheck, interval: parseDuration('--check-interval', f.checkInterval, 100) },
    log: { ...base.log, enabled: f.log !== 'off', errorsOnly: f.log === 'errors' },
    spares: parseCount('--spares', f.spares, 10_000),
    limits: { ...base.limits, maxconn: Math.max(1, parseCount('--maxconn', f.maxconn, 1_000_000)) },
    reload: { hardStopAfter: parseDuration('--hard-stop-after', f.hardStopAfter), maxReloads: Math.max(1, parseCount('--max-reloads', f.maxReloads, 100_000)) },
  };
  return {
    settings,
    fallbackListener: f.tlsRequired ? { address: f.bind, port: parsePort('--port', f.port), tls: 'required' } : { address: f.bind, port: parsePort('--port', f.port) },
    agentHttpPort: parsePort('--agent-http-port', f.agentHttpPort),
  };
}

/** HAProxy keeps timeouts in a signed 32-bit count of milliseconds: about 24.8 days. */
const MAX_HAPROXY_TIMEOUT_MS = 2 ** 31 - 1;

function parseSessionTimeout(value: string): string {
  const ms = parseDurationMs('--session-timeout', value, 1_000);
  if (ms > MAX_HAPROXY_TIMEOUT_MS) throw new ConfigError(`--session-timeout must be at most 24d (HAProxy's longest timeout), got "${value}"`);
  return value;
}

/**
 * A unix socket path HAProxy can be given as `unix@<path>`: absolute, no characters haproxy.cfg
 * would read differently, and short enough for sun_path (108 bytes with the terminating NUL).
 */
export function parseSocketPath(flag: string, value: string): string {
  const path = resolve(value);
  if (!/^\/[A-Za-z0-9._\/-]+$/.test(path) || Buffer.byteLength(path) > 107) {
    throw new ConfigError(`${flag} must be a socket path of letters, digits, '.', '_', '-' and '/' of at most 107 bytes, got ${JSON.stringify(value)}`);
  }
  return path;
}
