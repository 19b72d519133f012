// The agent's HTTP side: /healthz for probes and /metrics for Prometheus.

import { createServer, type Server } from 'node:http';
import type { AgentMetrics } from '../metrics.js';

export interface HealthSource {
  /** undefined when healthy, else why not. */
  unhealthy(): string | undefined;
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
      const body = JSON.stringify({ status: problem === undefined ? 'ok' : 'unhealthy', problem, ...health.describe() });
      res.writeHead(problem === undefined ? 200 : 503, { 'content-type': 'application/json' }).end(body);
      return;
    }
    if (path === '/metrics') {
      metrics.registry.metrics().then(
        (text) => res.writeHead(200, { 'content-type': metrics.registry.contentType }).end(text),
        (err: Error) => res.writeHead(500).end(err.message),
      );
      return;
    }
    res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: try /healthz or /metrics\n');
  });
}
