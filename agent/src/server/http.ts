// The agent's HTTP side (the metrics address): /healthz (alive and serving) and /readyz (and this
// replica may take new connections) for probes, /metrics for Prometheus (the agent's and, in
// up/watch, the generator's series), and /metrics/haproxy, HAProxy's own Prometheus exporter
// relayed from its stats port, so that one address exposed to a Prometheus elsewhere carries all
// three while HAProxy's stats page stays on loopback.

import { createServer, request, type Server, type ServerResponse } from 'node:http';
import type { Endpoint } from '../contract.js';
import type { AgentMetrics } from '../metrics.js';

export interface HealthSource {
  /** undefined when healthy, else why not. */
  unhealthy(): string | undefined;
  /**
   * undefined when the replica may take new connections, else why not (starting, draining): what
   * a balancer or a readiness probe follows. Absent: ready whenever healthy.
   */
  notReady?(): string | undefined;
  describe(): Record<string, unknown>;
}

export interface HttpOptions {
  /** HAProxy's stats frontend, whose /metrics is relayed at /metrics/haproxy; undefined: 404 there. */
  readonly haproxyExporter?: Endpoint;
  /** How long a client may take to send its whole request (tests shorten it). */
  readonly requestTimeoutMs?: number;
}

/**
 * Prometheus and probes send their one-line GET at once. The address may face a network (a
 * Prometheus elsewhere): a client that opens connections and sends nothing, or a request byte by
 * byte, is let go after this, not after Node's defaults (60 s for the headers, 5 min for the whole
 * request, checked every 30 s), so it cannot pile up the process's sockets and files.
 */
const REQUEST_TIMEOUT_MS = 10_000;

/** A scrape of HAProxy's exporter that takes longer than this is answered 504 (Prometheus' default scrape timeout is 10 s). */
const RELAY_TIMEOUT_MS = 9_000;

export function createAgentHttpServer(metrics: AgentMetrics, health: HealthSource, opts: HttpOptions = {}): Server {
  const requestTimeout = opts.requestTimeoutMs ?? REQUEST_TIMEOUT_MS;
  const limits = { headersTimeout: requestTimeout, requestTimeout, connectionsCheckingInterval: Math.min(1_000, requestTimeout) };
  return createServer(limits, (req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    if (path === '/healthz' || path === '/readyz') {
      const problem = health.unhealthy();
      const waiting = problem === undefined ? health.notReady?.() : undefined;
      const status = problem !== undefined ? 'unhealthy' : waiting !== undefined ? 'not ready' : 'ok';
      const body = JSON.stringify({ status, problem: problem ?? waiting, ...health.describe() });
      // /healthz answers 503 only when the agent does not serve; /readyz also while not ready.
      const failing = problem !== undefined || (path === '/readyz' && waiting !== undefined);
      res.writeHead(failing ? 503 : 200, { 'content-type': 'application/json' }).end(body);
      return;
    }
    if (path === '/metrics') {
      metrics.registry.metrics().then(
        (text) => res.writeHead(200, { 'content-type': metrics.registry.contentType }).end(text),
        (err: Error) => res.writeHead(500).end(err.message),
      );
      return;
    }
    if (path === '/metrics/haproxy') {
      if (opts.haproxyExporter === undefined) text(res, 404, "HAProxy's exporter is not relayed here: its stats port is off (--stats-port 0), or this is `pgroute agent` alone\n");
      else relay(opts.haproxyExporter, req.method, res);
      return;
    }
    text(res, 404, 'not found: try /healthz, /readyz, /metrics or /metrics/haproxy\n');
  });
}

function text(res: ServerResponse, status: number, body: string): void {
  res.writeHead(status, { 'content-type': 'text/plain' }).end(body);
}

/** GET <exporter>/metrics, streamed through; a failure is a 5xx naming the address, so the scrape fails visibly. */
function relay(at: Endpoint, method: 'GET' | 'HEAD', res: ServerResponse): void {
  const where = `${at.host.includes(':') ? `[${at.host}]` : at.host}:${at.port}`;
  const upstream = request({ host: at.host, port: at.port, path: '/metrics', method, agent: false, timeout: RELAY_TIMEOUT_MS }, (up) => {
    res.writeHead(up.statusCode ?? 502, { 'content-type': up.headers['content-type'] ?? 'text/plain' });
    up.pipe(res);
    up.on('error', () => res.destroy());
  });
  upstream.on('timeout', () => {
    upstream.destroy();
    if (!res.headersSent) text(res, 504, `HAProxy's exporter at ${where} did not answer within ${RELAY_TIMEOUT_MS} ms\n`);
  });
  upstream.on('error', (err) => {
    if (!res.headersSent) text(res, 502, `HAProxy's exporter at ${where} is unreachable (${err.message}); is HAProxy running with its stats port on?\n`);
    else res.destroy();
  });
  upstream.end();
}
