// HAProxy's SPOP health check (`option spop-check`, every `inter`): HELLO with healthcheck=true, the
// agent's reply, then HAProxy resets the connection. That reset is the end of a check, not a socket
// error: on an idle, healthy system pgroute_agent_errors_total{kind="socket"} stays 0. A connection
// reset while the agent still serves it is still counted.

import { describe, expect, it } from 'vitest';
import type { RunningAgent } from '../../src/agent.js';
import { startTestAgent } from './harness.js';
import { SpopClient } from './spop-client.js';

async function value(agent: RunningAgent, name: string, labels: Record<string, string> = {}): Promise<number> {
  const m = await agent.metrics.registry.getSingleMetric(name)?.get();
  return m?.values.find((v) => Object.entries(labels).every(([k, l]) => v.labels[k] === l))?.value ?? -1;
}

/** Waits until the agent has handled every close (its connection gauge is back at 0). */
async function allClosed(agent: RunningAgent): Promise<void> {
  const deadline = Date.now() + 3_000;
  while ((await value(agent, 'pgroute_agent_haproxy_connections')) !== 0) {
    if (Date.now() > deadline) throw new Error('the agent still counts an open HAProxy connection after 3 s');
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('SPOP health checks', () => {
  it('ten health checks ended by a reset, as HAProxy ends them, count no socket error', async () => {
    const agent = await startTestAgent();
    try {
      for (let i = 0; i < 10; i++) {
        const c = await SpopClient.connect(agent.port);
        await c.hello({ healthcheck: true });
        c.socket.resetAndDestroy();
        await c.closed;
      }
      await allClosed(agent);
      expect(await value(agent, 'pgroute_agent_frames_total', { direction: 'in', type: 'haproxy-hello' })).toBe(10);
      expect(await value(agent, 'pgroute_agent_errors_total', { kind: 'socket' })).toBe(0);
    } finally {
      await agent.close();
    }
  });

  it('a reset of a connection the agent is still serving is a socket error', async () => {
    const agent = await startTestAgent();
    try {
      const c = await SpopClient.connect(agent.port);
      await c.hello();
      c.socket.resetAndDestroy();
      await c.closed;
      await allClosed(agent);
      expect(await value(agent, 'pgroute_agent_errors_total', { kind: 'socket' })).toBe(1);
    } finally {
      await agent.close();
    }
  });
});
