// The agent's runtime: the SPOP server, its HTTP side and its metrics (prom-client). Reached through
// loadAgentRuntime() in index.ts, so that a command that only uses the contract (`pgroute generate`,
// `plan`, `status`, the tenant commands) does not load the server, the codec and prom-client.

export { startAgent, type AgentOptions, type RunningAgent } from './agent.js';
export { createAgentHttpServer } from './server/http.js';
export { createAgentMetrics, setBuildInfo, type AgentMetrics } from './metrics.js';
