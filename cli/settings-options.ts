// Maps CLI flags onto Settings, so every command spells a knob the same way. Every value that is
// rendered into haproxy.cfg or spoe.conf is checked by flag-values.ts first.

import { join } from 'node:path';
import { Option, type Command } from 'commander';
import { flagLabel, parseCount, parseDuration, parseDurationMs, parseHost, parseIp, parseListenAddress, parsePort, parseSocketPath, parseStateDir, refuse } from './flag-values.js';
import { ConfigError, DEFAULT_AGENT_HTTP_PORT, DEFAULT_AGENT_PORT, DEFAULT_AGENT_TIMEOUT_MS, DEFAULT_PORT, DEFAULT_REFUSAL_DELAY_MS, DEFAULT_STATS_PORT, defaultSettings, refusalDelay, REFUSAL_DELAY_SPARE_MS, parseReplicas, peerEntries, peerNameProblem, PeersProblem, shortPeerName, type Listener, type Replicas, type Settings } from '../generator/src/index.js';
import type { Endpoint } from '../agent/src/index.js';
import { peersTlsFromFlags, type PeersTlsFlags } from './peers-tls.js';
import { parseStatsAllow } from './stats-allow.js';

export interface DeploymentFlags extends PauseFlags, PeersTlsFlags {
  stateDir: string;
  port: string;
  bind: string;
  agentPort: string;
  agentHost: string;
  agentSocket?: string;
  agentTransport: AgentTransport;
  agentHttpPort?: string;
  metricsAddress?: string;
  statsPort: string;
  statsBind: string;
  statsAllow?: string;
  startupTimeout: string;
  agentTimeout?: string;
  sessionTimeout: string;
  log: string;
  spares: string;
  maxconn: string;
  hardStopAfter: string;
  maxReloads: string;
  tlsRequired: boolean;
  acceptProxy: boolean;
  checkInterval: string;
  name?: string;
  peer?: string[] | string;
  memo: string;
  memoSize: string;
  refusalDelay?: string;
}

/** How HAProxy reaches the agent: a 0600 unix socket (same host) or TCP. */
export type AgentTransport = 'unix' | 'tcp';

/** The variable each deployment flag is also read from; messages name both. */
export const ENV: Readonly<Record<string, string>> = {
  '--state-dir': 'PGROUTE_STATE_DIR',
  '--port': 'PGROUTE_PORT',
  '--bind': 'PGROUTE_BIND',
  '--agent-host': 'PGROUTE_AGENT_HOST',
  '--agent-port': 'PGROUTE_AGENT_PORT',
  '--agent-socket': 'PGROUTE_AGENT_SOCKET',
  '--agent-transport': 'PGROUTE_AGENT_TRANSPORT',
  '--agent-http-port': 'PGROUTE_AGENT_HTTP_PORT',
  '--metrics-address': 'PGROUTE_METRICS_ADDRESS',
  '--stats-port': 'PGROUTE_STATS_PORT',
  '--stats-bind': 'PGROUTE_STATS_BIND',
  '--stats-allow': 'PGROUTE_STATS_ALLOW',
  '--session-timeout': 'PGROUTE_SESSION_TIMEOUT',
  '--maxconn': 'PGROUTE_MAXCONN',
  '--spares': 'PGROUTE_SPARES',
  '--hard-stop-after': 'PGROUTE_HARD_STOP_AFTER',
  '--max-reloads': 'PGROUTE_MAX_RELOADS',
  '--tls': 'PGROUTE_TLS',
  '--tls-secret': 'PGROUTE_TLS_SECRET',
  '--tls-cert': 'PGROUTE_TLS_CERT',
  '--tls-key': 'PGROUTE_TLS_KEY',
  '--tls-san': 'PGROUTE_TLS_SANS',
  '--tls-watch-interval': 'PGROUTE_TLS_WATCH_INTERVAL',
  '--check-interval': 'PGROUTE_CHECK_INTERVAL',
  '--name': 'PGROUTE_NAME',
  '--peer': 'PGROUTE_PEERS',
  '--peers-tls-cert': 'PGROUTE_PEERS_TLS_CERT',
  '--peers-tls-ca': 'PGROUTE_PEERS_TLS_CA',
  '--pause-timeout': 'PGROUTE_PAUSE_TIMEOUT',
  '--pause-max-held': 'PGROUTE_PAUSE_MAX_HELD',
  '--memo': 'PGROUTE_MEMO',
  '--memo-size': 'PGROUTE_MEMO_SIZE',
  '--refusal-delay': 'PGROUTE_REFUSAL_DELAY',
};

/** `--bind (PGROUTE_BIND)`: how a refusal names a deployment flag. */
export function label(flag: string): string {
  return flagLabel(flag, ENV[flag]);
}

function option(flags: string, description: string, defaultValue?: string | boolean): Option {
  const o = new Option(flags, description);
  const env = ENV[o.long ?? ''];
  if (env !== undefined) o.env(env);
  return defaultValue === undefined ? o : o.default(defaultValue);
}

/**
 * The deployment flags. `agentTransport` is the default of --agent-transport: `unix` where this
 * process runs the agent for a HAProxy on the same host (up, watch), so no TCP port answers SPOP.
 */
export function addDeploymentFlags(cmd: Command, agentTransport: AgentTransport = 'tcp'): Command {
  cmd
    .addOption(option('--state-dir <dir>', 'where rendered files and sockets live', '.pgroute'))
    .addOption(option('--port <port>', 'public PostgreSQL port (when the tenants file lists no listeners)', String(DEFAULT_PORT)))
    .addOption(option('--bind <address>', 'address the public port listens on', '0.0.0.0'))
    .addOption(option('--agent-transport <transport>', 'how HAProxy asks the agent: unix (a socket only this user can open, --agent-socket; same host) or tcp (--agent-host:--agent-port)', agentTransport).choices(['unix', 'tcp']))
    .addOption(option('--agent-host <host>', 'address of the pgroute agent (SPOP with --agent-transport tcp; /healthz and /metrics always)', '127.0.0.1'))
    .addOption(option('--agent-port <port>', 'SPOP port of the pgroute agent (--agent-transport tcp)', String(DEFAULT_AGENT_PORT)))
    .addOption(option('--agent-socket <path>', 'the agent\'s SPOP unix socket, mode 0600 (implies --agent-transport unix; default <state-dir>/agent.sock)'))
    .addOption(option('--metrics-address <host:port>', `where /metrics (agent and generator), /metrics/haproxy (HAProxy's exporter, relayed) and /healthz are served (default --agent-host:${DEFAULT_AGENT_HTTP_PORT}, loopback; 0.0.0.0:${DEFAULT_AGENT_HTTP_PORT} for a Prometheus elsewhere: see docs/monitoring.md)`))
    .addOption(option('--agent-http-port <port>', `the port of the metrics address on --agent-host (older form of --metrics-address; default ${DEFAULT_AGENT_HTTP_PORT})`))
    .addOption(option('--stats-port <port>', "HAProxy's stats and Prometheus port (0 disables)", String(DEFAULT_STATS_PORT)))
    .addOption(option('--stats-bind <address>', "address of HAProxy's stats port (an IP; 0.0.0.0 in a container whose port is published)", '127.0.0.1'))
    .addOption(option('--stats-allow <sources>', "only these sources (and loopback) may read the stats port: IPs, networks, or gateway (this namespace's default gateway, where Docker's published ports come from)"))
    .addOption(option('--startup-timeout <duration>', 'longest wait for a complete startup packet (HAProxy syntax: 5s, 500ms)', '5s'))
    .addOption(option('--agent-timeout <duration>', `how long HAProxy waits for a verdict before refusing; shorter than --startup-timeout (default ${DEFAULT_AGENT_TIMEOUT_MS / 1000}s, half of --startup-timeout if that is under ${(2 * DEFAULT_AGENT_TIMEOUT_MS) / 1000}s)`))
    .addOption(option('--session-timeout <duration>', 'an established session silent in both directions this long is closed (TCP keepalive finds dead peers sooner); at most 24d', defaultSettings().timeouts.session))
    .addOption(option('--maxconn <n>', 'most client connections HAProxy accepts (each needs two open files)', '4096'))
    .addOption(option('--spares <n>', 'spare backends kept free so new tenants need no reload', '16'))
    .addOption(option('--hard-stop-after <duration>', 'longest an old HAProxy worker may keep serving its sessions after a reload', '1h'))
    .addOption(option('--max-reloads <n>', 'reloads an old worker may survive before it is stopped (mworker-max-reloads)', '50'))
    .addOption(option('--tls <mode>', 'TLS on the public port: off, or auto (pgroute makes a CA and a server certificate in the state dir and renews it)', 'off').choices(['off', 'auto']))
    .addOption(option('--tls-secret <namespace/name>', 'with --tls auto: keep the CA and certificate in this Kubernetes Secret, shared by every replica (needs get and update on it, and create unless it exists)'))
    .addOption(option('--tls-cert <file>', 'serve this certificate (PEM, chain first) instead; implies TLS'))
    .addOption(option('--tls-key <file>', 'private key of --tls-cert (default: read from the --tls-cert file)'))
    .addOption(option('--tls-san <names...>', 'names and addresses in the auto certificate, repeatable or comma-separated (default: localhost, 127.0.0.1, ::1, this host name)'))
    .addOption(option('--tls-watch-interval <duration>', 'how often --tls-cert and --tls-key are read again; a changed, valid pair is swapped in without a reload', '30s'))
    .addOption(option('--tls-min-version <version>', 'oldest TLS version accepted', 'TLSv1.2').choices(['TLSv1.2', 'TLSv1.3']))
    .addOption(option('--tls-required', 'refuse clear-text connections on --port (listeners in the tenants file set their own)', false))
    .addOption(option('--accept-proxy', 'connections to --port start with a PROXY protocol header (v1 or v2) from a load balancer, whose client address pgroute uses; only for a port nobody else can reach (listeners in the tenants file set their own)', false))
    .addOption(option('--check-interval <duration>', 'health check interval of every tenant server (a failing server is checked every 250ms)', '2s'))
    .addOption(option('--name <name>', "this replica's name among its peers (default: derived from the host name)"))
    .addOption(option('--peer <name=host:port...>', "every replica of this deployment, this one included (its entry is the address its HAProxy peers listener binds): repeatable or comma-separated; stick tables such as the access switch are replicated between them"))
    .addOption(option('--peers-tls-cert <file>', "mutual TLS between the replicas' peers listeners: this replica's certificate and key (PEM, chain first), presented to every peer; needs --peers-tls-ca"))
    .addOption(option('--peers-tls-ca <file>', 'the CA (PEM) that signed every replica\'s --peers-tls-cert: a peer connection without a certificate it signed is refused, in either direction'));
  return addPauseFlags(cmd)
    .addOption(option('--memo <mode>', 'verdict memo: HAProxy routes a startup whose facts the agent already judged without asking it again (docs/memo.md): on, off', 'off').choices(['on', 'off']))
    .addOption(option('--memo-size <n>', 'most entries of the verdict memo (about 200-330 bytes each in HAProxy\'s worker: docs/memo.md)', '100000'))
    .addOption(option('--refusal-delay <duration>', `a connection refused over its tenant's rate, per-address rate or cap gets its error this late, so a reconnect loop is slowed down instead of taking the router's CPU (0: at once); at least 1s shorter than --startup-timeout (default ${DEFAULT_REFUSAL_DELAY_MS}ms, shorter if --startup-timeout is under 2s)`))
    .addOption(option('--log <mode>', 'HAProxy traffic log: errors (refused or failed sessions), all, off', 'errors').choices(['errors', 'all', 'off']))
    .hook('preAction', (command) => refuseTransportConflict(command));
}

/**
 * --agent-socket implies the unix transport; with --agent-transport tcp given too (flag or
 * variable, not the command's default), one of the two would be dropped without a word.
 */
function refuseTransportConflict(command: Command): void {
  const f = command.opts<DeploymentFlags>();
  if (f.agentSocket === undefined || f.agentTransport !== 'tcp' || command.getOptionValueSource('agentTransport') === 'default') return;
  throw new ConfigError(`${label('--agent-socket')} serves the agent on a unix socket, and ${label('--agent-transport')} is tcp (--agent-host:--agent-port): give one of them`);
}

export interface PauseFlags {
  pauseTimeout: string;
  pauseMaxHeld: string;
}

/**
 * How long and how many connections of a paused tenant are held: the generator renders HAProxy's
 * side of the wait from them and the agent holds by them, so `up`/`watch` and a `pgroute agent`
 * run apart take the same flags (the two must agree, docs/pause.md).
 */
export function addPauseFlags(cmd: Command): Command {
  return cmd
    .addOption(option('--pause-timeout <duration>', 'longest a new connection of a paused tenant (pgroute tenant pause) waits for resume, or one to a target being added waits for its backend, before it is refused (57P03); at most 10m', '30s'))
    .addOption(option('--pause-max-held <n>', 'most connections of one tenant held at once by this replica (paused, or waiting for a target being added); more are refused at once (53300)', '200'));
}

export function pauseFromFlags(f: PauseFlags): Settings['pause'] {
  return {
    timeoutMs: parsePauseTimeout(f.pauseTimeout),
    maxHeld: parseCount(label('--pause-max-held'), f.pauseMaxHeld, 1_000_000, 1),
  };
}

export function settingsFromFlags(f: DeploymentFlags): { settings: Settings; fallbackListener: Listener; metricsAddress: Endpoint } {
  const stateDir = parseStateDir(label('--state-dir'), f.stateDir);
  const base = defaultSettings(stateDir);
  const statsPort = parsePort(label('--stats-port'), f.statsPort, true);
  const agentHost = parseHost(label('--agent-host'), f.agentHost);
  const agentPort = parsePort(label('--agent-port'), f.agentPort);
  const socket = f.agentSocket !== undefined ? parseSocketPath(label('--agent-socket'), f.agentSocket) : f.agentTransport === 'unix' ? parseSocketPath(label('--state-dir'), join(stateDir, 'agent.sock')) : undefined;
  const port = parsePort(label('--port'), f.port);
  const bind = parseHost(label('--bind'), f.bind);
  const settings: Settings = {
    ...base,
    agent: {
      ...base.agent,
      servers: [{ host: agentHost, port: agentPort, ...(socket === undefined ? {} : { socket }) }],
      processingTimeout: parseAgentTimeout(f.agentTimeout, f.startupTimeout),
    },
    stats: { ...base.stats, enabled: statsPort !== 0, address: parseIp(label('--stats-bind'), f.statsBind), port: statsPort, allow: parseStatsAllow(label('--stats-allow'), f.statsAllow) },
    timeouts: { ...base.timeouts, startup: parseDuration(label('--startup-timeout'), f.startupTimeout), session: parseDuration(label('--session-timeout'), f.sessionTimeout, 1_000) },
    refusalDelay: parseRefusalDelay(f.refusalDelay, f.startupTimeout),
    healthCheck: { ...base.healthCheck, interval: parseDuration(label('--check-interval'), f.checkInterval, 100) },
    log: { ...base.log, enabled: f.log !== 'off', errorsOnly: f.log === 'errors' },
    spares: parseCount(label('--spares'), f.spares, 10_000),
    limits: { ...base.limits, maxconn: parseCount(label('--maxconn'), f.maxconn, 1_000_000, 1) },
    reload: { hardStopAfter: parseDuration(label('--hard-stop-after'), f.hardStopAfter), maxReloads: parseCount(label('--max-reloads'), f.maxReloads, 100_000, 1) },
    replicas: parseReplicaFlags(f.name, f.peer),
    ...withPeersTls(peersTlsFromFlags(f, label)),
    pause: pauseFromFlags(f),
    memo: { ...base.memo, enabled: f.memo === 'on', size: parseCount(label('--memo-size'), f.memoSize, 100_000_000, 1) },
  };
  return {
    settings,
    fallbackListener: { address: bind, port, ...(f.tlsRequired ? { tls: 'required' as const } : {}), ...(f.acceptProxy ? { acceptProxy: true } : {}) },
    metricsAddress: metricsAddressFromFlags({ metricsAddress: f.metricsAddress, httpPort: f.agentHttpPort, host: agentHost }, label('--metrics-address'), label('--agent-http-port')),
  };
}

/**
 * The metrics address: --metrics-address, else the older --agent-http-port (or its default) on the
 * agent's host, as before the flag existed. Both at once is refused: one of them would be ignored.
 */
export function metricsAddressFromFlags(f: { metricsAddress?: string | undefined; httpPort?: string | undefined; host: string }, addressLabel: string, portLabel: string): Endpoint {
  if (f.metricsAddress !== undefined && f.httpPort !== undefined) {
    throw new ConfigError(`${addressLabel} and ${portLabel} both name the metrics address; give ${addressLabel} alone (host:port)`);
  }
  if (f.metricsAddress !== undefined) return parseListenAddress(addressLabel, f.metricsAddress);
  return { host: f.host, port: f.httpPort === undefined ? DEFAULT_AGENT_HTTP_PORT : parsePort(portLabel, f.httpPort) };
}

function withPeersTls(tls: Settings['peersTls']): Pick<Settings, 'peersTls'> {
  return tls === undefined ? {} : { peersTls: tls };
}

/** --name and --peer: a PeersProblem becomes the one-line refusal naming the flag at fault. */
function parseReplicaFlags(name: string | undefined, peer: string[] | string | undefined): Replicas {
  const entries = peerEntries(peer);
  if (name !== undefined) {
    const problem = peerNameProblem(shortPeerName(name));
    if (problem !== undefined) refuse(label('--name'), problem, name);
  }
  try {
    return parseReplicas(name, entries);
  } catch (err) {
    if (err instanceof PeersProblem) refuse(label('--peer'), err.rule, err.value);
    throw err;
  }
}

/** --pause-timeout: 100ms to 10m (a move that takes longer should not keep clients waiting silently). */
function parsePauseTimeout(value: string): number {
  const ms = parseDurationMs(label('--pause-timeout'), value, 100);
  if (ms > 600_000) refuse(label('--pause-timeout'), 'a duration of at most 10m', value);
  return ms;
}

/**
 * --agent-timeout: shorter than --startup-timeout, which also ends the wait for a verdict (counted
 * from the connection's start, with no SPOE log line): at its length or longer it would never apply.
 * The default gives way to a short startup timeout (half of it) rather than refuse it.
 */
function parseAgentTimeout(value: string | undefined, startupTimeout: string): string {
  const startupMs = parseDurationMs(label('--startup-timeout'), parseDuration(label('--startup-timeout'), startupTimeout));
  if (value === undefined) {
    const ms = Math.max(1, Math.min(DEFAULT_AGENT_TIMEOUT_MS, Math.floor(startupMs / 2)));
    return ms % 1_000 === 0 ? `${ms / 1_000}s` : `${ms}ms`;
  }
  const ms = parseDurationMs(label('--agent-timeout'), parseDuration(label('--agent-timeout'), value));
  if (ms >= startupMs) refuse(label('--agent-timeout'), `a duration shorter than --startup-timeout ${startupTimeout}`, value);
  return value;
}

/**
 * --refusal-delay: 0 (off) or a duration that ends within --startup-timeout with 1s to spare
 * (HAProxy aborts a delay still running when the startup timeout expires, without a word).
 */
function parseRefusalDelay(value: string | undefined, startupTimeout: string): Settings['refusalDelay'] {
  const startupMs = parseDurationMs(label('--startup-timeout'), startupTimeout);
  const most = startupMs - 2 * REFUSAL_DELAY_SPARE_MS;
  // The default gives way to a short startup timeout rather than refuse it.
  if (value === undefined) return refusalDelay(Math.max(1, Math.min(DEFAULT_REFUSAL_DELAY_MS, most)), startupMs);
  const ms = parseDurationMs(label('--refusal-delay'), value, 0);
  if (ms > most) refuse(label('--refusal-delay'), `0 or a duration of at most ${Math.max(0, most)}ms (1s shorter than --startup-timeout ${startupTimeout})`, value);
  return refusalDelay(Math.ceil(ms), startupMs);
}

