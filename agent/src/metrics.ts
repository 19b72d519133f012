// The agent's Prometheus metrics. One registry per agent instance so tests can run several.

import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export interface AgentMetrics {
  readonly registry: Registry;
  readonly decisions: Counter<'outcome' | 'reason'>;
  readonly decisionSeconds: Histogram<never>;
  readonly frames: Counter<'direction' | 'type'>;
  readonly errors: Counter<'kind'>;
  readonly haproxyConnections: Gauge<never>;
  readonly routeTableTenants: Gauge<never>;
  readonly routeTableLoads: Counter<'result'>;
}

export function createAgentMetrics(defaults = true): AgentMetrics {
  const registry = new Registry();
  if (defaults) collectDefaultMetrics({ register: registry, prefix: 'pgroute_agent_' });
  const registers = [registry];
  return {
    registry,
    decisions: new Counter({
      name: 'pgroute_agent_decisions_total',
      help: 'Routing decisions by outcome (route, refuse) and reason (target for routes, refusal reason otherwise)',
      labelNames: ['outcome', 'reason'],
      registers,
    }),
    decisionSeconds: new Histogram({
      name: 'pgroute_agent_decision_seconds',
      help: 'Time from a NOTIFY frame being decoded to its ACK being encoded',
      buckets: [0.000005, 0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.005],
      registers,
    }),
    frames: new Counter({
      name: 'pgroute_agent_frames_total',
      help: 'SPOP frames by direction (in, out) and type',
      labelNames: ['direction', 'type'],
      registers,
    }),
    errors: new Counter({
      name: 'pgroute_agent_errors_total',
      help: 'Errors by kind (protocol: a peer sent a bad frame; socket; internal: a decision threw and was turned into a refusal)',
      labelNames: ['kind'],
      registers,
    }),
    haproxyConnections: new Gauge({
      name: 'pgroute_agent_haproxy_connections',
      help: 'Open SPOP connections from HAProxy',
      registers,
    }),
    routeTableTenants: new Gauge({ name: 'pgroute_agent_route_table_tenants', help: 'Tenants in the loaded route table', registers }),
    routeTableLoads: new Counter({
      name: 'pgroute_agent_route_table_loads_total',
      help: 'Route table loads by result (ok, error)',
      labelNames: ['result'],
      registers,
    }),
  };
}
