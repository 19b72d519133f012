// The agent's HTTP side: /healthz (alive and serving), /readyz (and this replica may take new
// connections) for probes, and /metrics for Prometheus.

import { createServer, type Server } from 'node:http';
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

export function createAgentHttpServer(metrics: AgentMetrics, health: HealthSource): Server {
  return createServer((req, res) => {
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
    res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: try /healthz, /readyz or /metrics\n');
  });
}
