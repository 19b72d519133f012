// The pgroute agent: a SPOP server that HAProxy asks, once per client connection, where the
// connection goes. Decisions are pure (decision/); this file wires sockets, metrics and logs.

import { chmod, lstat, unlink } from 'node:fs/promises';
import { createServer, type Server, type Socket } from 'node:net';
import type { Server as HttpServer } from 'node:http';
import type { Logger } from 'pino';
import type { Endpoint, SpopEndpoint } from './contract.js';
import { CancelRateLimiter, type CancelRateOptions } from './decision/cancel-router.js';
import type { Verdict } from './decision/types.js';
import { createAgentMetrics, type AgentMetrics } from './metrics.js';
import type { RouteStore } from './routes-store.js';
import { createAgentHttpServer } from './server/http.js';
import { CancelCopies } from './server/cancel-copies.js';
import { SpopConnection } from './server/spop-connection.js';
import { RefusalLog } from './server/refusal-log.js';
import { HOLD_DEFAULTS, HoldQueue, type HoldOptions } from './decision/hold.js';
import { holdMetrics } from './hold-metrics.js';


export interface AgentOptions {
  readonly listen: SpopEndpoint;
  /** The metrics address: /healthz, /readyz, /metrics, /metrics/haproxy; omit to run without. */
  readonly http?: Endpoint;
  /** HAProxy's stats frontend, relayed at /metrics/haproxy on the metrics address. */
  readonly haproxyExporter?: Endpoint;
  /** Why this replica must not take new connections now (undefined: it may); /readyz says 503 then. */
  readonly notReady?: () => string | undefined;
  readonly store: RouteStore;
  readonly log: Logger;
  readonly metrics?: AgentMetrics;
  readonly cancel?: CancelRateOptions;
  /**
   * HAProxy's internal cancel socket (StatePaths.cancelSocket): where copies of a cancel go to the
   * client address's further backends. Omit to send each cancel to one backend only.
   */
  readonly cancelSocket?: string;
  /** Close a connection that sends no HAPROXY-HELLO within this long (default 5 s). */
  readonly helloTimeoutMs?: number;
  /** Connections of paused tenants: how long and how many are held (decision/hold.ts). */
  readonly hold?: HoldOptions;
}

export interface RunningAgent {
  /** The TCP port SPOP is served on (0 on a unix socket). */
  readonly port: number;
  readonly metrics: AgentMetrics;
  /**
   * This replica stops for good: every connection of a paused tenant held now, or asked about
   * later, is refused with 57P01 (connect again) instead of left to HAProxy's stop. Returns how many
   * were held.
   */
  shutdownHolds(): number;
  /** Refuses what is held (shutdownHolds), stops accepting, says goodbye to every HAProxy connection, closes the HTTP side. */
  close(): Promise<void>;
}

export async function startAgent(opts: AgentOptions): Promise<RunningAgent> {
  const { log, store } = opts;
  const metrics = opts.metrics ?? createAgentMetrics();
  const copies = opts.cancelSocket === undefined ? undefined : new CancelCopies({ socket: opts.cancelSocket, metrics, log });
  const hold = new HoldQueue(opts.hold ?? HOLD_DEFAULTS, holdMetrics(metrics.registry));
  // A new route table may resume a paused tenant: its held connections go, decided against it.
  store.onReplace(() => hold.release());
  const ctx = { store, cancelRate: new CancelRateLimiter(opts.cancel), now: Date.now, hold, ...(copies === undefined ? {} : { copies }) };
  const refusals = new RefusalLog(log);
  const connections = new Set<SpopConnection>();
  const sockets = new Set<Socket>();

  // Plain counters (metrics.hot), handed to prom-client only when it collects.
  const hot = metrics.hot;
  const onVerdict = (v: Verdict): void => {
    if (v.kind === 'route') hot.route(v.cancel);
    else if (v.kind === 'hold') hot.holds[v.cause]++;
    else {
      hot.refusal(v.reason);
      refusals.record(v);
    }
  };

  metrics.bindRouteTable(store);

  const server: Server = createServer((socket) => {
    sockets.add(socket);
    metrics.haproxyConnections.inc();
    const conn = new SpopConnection(socket, { ctx, metrics, log, onVerdict, helloTimeoutMs: opts.helloTimeoutMs });
    connections.add(conn);
    socket.on('close', () => {
      sockets.delete(socket);
      connections.delete(conn);
      metrics.haproxyConnections.dec();
    });
  });
  server.on('error', (err) => log.error({ err: err.message }, 'agent listener error'));
  const socketPath = opts.listen.socket;
  if (socketPath !== undefined) await listenUnix(server, socketPath);
  else await listen(server, opts.listen, SPOP_BACKLOG);
  const port = socketPath !== undefined ? 0 : (server.address() as { port: number }).port;
  log.info({ ...(socketPath !== undefined ? { socket: socketPath } : { host: opts.listen.host, port }), tenants: store.table.tenants.size, version: store.table.version }, 'pgroute agent listening');

  let http: HttpServer | undefined;
  if (opts.http) {
    http = createAgentHttpServer(metrics, {
      unhealthy: () => (server.listening ? undefined : 'SPOP listener closed'),
      notReady: () => opts.notReady?.(),
      describe: () => ({ routeTable: store.table.version, tenants: store.table.tenants.size, haproxyConnections: connections.size }),
    }, opts.haproxyExporter === undefined ? {} : { haproxyExporter: opts.haproxyExporter });
    try {
      await listen(http, opts.http);
      log.info({ address: `${opts.http.host.includes(':') ? `[${opts.http.host}]` : opts.http.host}:${opts.http.port}` }, 'metrics address serving /metrics, /metrics/haproxy and /healthz');
    } catch (err) {
      // Do not leave the SPOP listener running behind a failed start.
      await new Promise<void>((resolve) => server.close(() => resolve()));
      throw err;
    }
  }

  return {
    port,
    metrics,
    shutdownHolds: () => hold.shutdown(),
    async close() {
      // A held connection gets its answer (57P01) before its HAProxy connection is said goodbye to.
      hold.shutdown();
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const c of connections) c.shutdown();
      const deadline = setTimeout(() => {
        for (const s of sockets) s.destroy();
      }, 2_000);
      await closed;
      clearTimeout(deadline);
      if (http) await new Promise<void>((resolve) => http?.close(() => resolve()));
      refusals.flush();
      log.info('pgroute agent stopped');
    },
  };
}

/** A unix socket only this user may connect to. A socket file left by a previous run is replaced;
 * anything else at that path is not. */
async function listenUnix(server: Server, path: string): Promise<void> {
  const existing = await lstat(path).catch(() => undefined);
  if (existing !== undefined) {
    if (!existing.isSocket()) throw new Error(`cannot listen on ${path}: something other than a socket is there`);
    await unlink(path);
  }
  await listen(server, path, SPOP_BACKLOG);
  await chmod(path, 0o600);
}

/**
 * The SPOP listener's accept queue. HAProxy 3.1+ opens an agent connection for each new decision
 * of a burst until its first connections are up (a cold burst of 1,600 startups opened over 1,000):
 * with Node's default of 511 the rest found the queue full (EAGAIN on a unix socket, "check backlog
 * size on the server"), and those startups were refused 57P03 with the agent idle (409 of 1,600 on
 * HAProxy 3.2). As many as the public frontend's default maxconn; Linux caps it at
 * net.core.somaxconn (4096 since 5.4).
 */
const SPOP_BACKLOG = 4096;

/** Listens on host:port or a unix socket path (with that accept queue); rejects naming the address. */
function listen(server: Server | HttpServer, at: Endpoint | string, backlog?: number): Promise<void> {
  const where = typeof at === 'string' ? at : `${at.host}:${at.port}`;
  return new Promise((resolve, reject) => {
    const onError = (err: Error): void => reject(new Error(`cannot listen on ${where}: ${err.message}`));
    server.once('error', onError);
    const ready = (): void => {
      server.off('error', onError);
      resolve();
    };
    if (typeof at === 'string') server.listen({ path: at, ...(backlog === undefined ? {} : { backlog }) }, ready);
    else server.listen({ port: at.port, host: at.host, ...(backlog === undefined ? {} : { backlog }) }, ready);
  });
}
