// The agent's public surface: what the CLI, the generator and the benchmarks may import. Everything
// else under agent/src is internal (its own tests reach in; other packages do not).

export * from './contract.js';
export { startAgent, type AgentOptions, type RunningAgent } from './agent.js';
export { createAgentHttpServer } from './server/http.js';
export { createAgentMetrics, setBuildInfo, type AgentMetrics } from './metrics.js';
export { buildInfo, pgrouteVersion, type BuildInfo } from './build-info.js';
export { EMPTY_ROUTE_TABLE, loadRouteTable, RouteStore } from './routes-store.js';
export { quoteValue, sanitizeText } from './quote.js';
export { compileRoutingPattern, type RoutingPatternKind } from './decision/patterns.js';
export { encodeErrorResponse } from './pg/error-response.js';
export { addressAllowed, networksProblem, parseNetwork, MAX_NETWORKS, type Network } from './decision/networks.js';
