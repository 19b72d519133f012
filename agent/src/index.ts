// The agent's public surface: what the CLI, the generator and the benchmarks may import. Everything
// else under agent/src is internal (its own tests reach in; other packages do not).

export * from './contract.js';
export type { AgentOptions, AgentMetrics, RunningAgent } from './runtime.js';
// Loaded on demand: the server, the SPOP codec and prom-client (see runtime.ts).
export const loadAgentRuntime = () => import('./runtime.js');
export { buildInfo, pgrouteVersion, type BuildInfo } from './build-info.js';
export { EMPTY_ROUTE_TABLE, loadRouteTable, RouteStore } from './routes-store.js';
export { describeValue, quoteValue, sanitizeText } from './quote.js';
export { compileRoutingPattern, type RoutingPatternKind } from './decision/patterns.js';
export { encodeErrorResponse } from './pg/error-response.js';
export { CANCEL_KEY_MAX_BYTES, CANCEL_KEY_MIN_BYTES } from './pg/constants.js';
// The variables a verdict sets, for the generator's verdict memo map (generator/src/memo/).
export { routeValue, verdictActions } from './server/verdict-actions.js';
export { ROUTE_FIELDS, ROUTE_SEPARATOR, VERDICT_VAR } from './server/spoe-contract.js';
// The ErrorResponses of the admission limits, for the generator's limits map (generator/src/limits/).
export { limitErrorResponses, type LimitKind } from './decision/limits.js';
export { addressAllowed, networksProblem, parseNetwork, MAX_NETWORKS, type Network } from './decision/networks.js';
