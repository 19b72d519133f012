// Starts the real agent in-process for server tests: silent logs, the decision fixtures' route
// table, an ephemeral SPOP port unless told otherwise.

import pino from 'pino';
import { startAgent, type AgentOptions, type RunningAgent } from '../../src/agent.js';
import type { RouteTable } from '../../src/decision/types.js';
import { createAgentMetrics } from '../../src/metrics.js';
import { encodeStartupMessage } from '../../src/pg/frontend.js';
import { RouteStore } from '../../src/routes-store.js';
import { policy, table } from '../decision/fixtures.js';

export const silentLog = pino({ level: 'silent' });

/** Tenants: acme (primary, pool, replica), globex (primary, pool), initech (disabled), umbrella (primary). */
export function testTable(): RouteTable {
  return table(policy({ keys: ['options', 'database'] }));
}

export async function startTestAgent(overrides: Partial<AgentOptions> & { table?: RouteTable } = {}): Promise<RunningAgent> {
  const { table: routes, ...rest } = overrides;
  return startAgent({
    listen: { host: '127.0.0.1', port: 0 },
    store: new RouteStore(routes ?? testTable()),
    log: silentLog,
    // No default process metrics: keeps /metrics small and avoids timers per agent.
    metrics: createAgentMetrics(false),
    ...rest,
  });
}

/** A StartupMessage naming `database` (the tenant key in testTable's policy). */
export function startupFor(database: string, user = 'alice'): Buffer {
  return encodeStartupMessage({ user, database });
}
