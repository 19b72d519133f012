// A pool's worth of cancels from one address goes through; beyond the bucket, each dropped cancel
// is counted in /metrics' registry and logged as a warning (a client asked to stop a query that
// runs on).

import { Writable } from 'node:stream';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningAgent } from '../../src/agent.js';
import { CANCEL_DEFAULTS } from '../../src/decision/cancel-router.js';
import { encodeCancelRequest } from '../../src/pg/frontend.js';
import { startTestAgent, startupFor } from './harness.js';
import { SpopClient, ackVars, cancelMessageOf, startupMessage, routeVar } from './spop-client.js';
import { cancelId } from '../../src/contract.js';

const lines: Record<string, unknown>[] = [];
const sink = new Writable({
  write(chunk: Buffer, _enc, done) {
    for (const l of chunk.toString('utf8').split('\n')) if (l !== '') lines.push(JSON.parse(l) as Record<string, unknown>);
    done();
  },
});

let agent: RunningAgent;
let client: SpopClient;

beforeAll(async () => {
  agent = await startTestAgent({ log: pino({ level: 'info' }, sink) });
  client = await SpopClient.connect(agent.port);
  await client.hello();
});

afterAll(async () => {
  client.destroy();
  await agent.close();
});

/** Dropped cancels: pgroute_agent_decisions_total{outcome="refuse",reason="cancel-rate-limited"} (one counter per event). */
async function droppedCount(): Promise<number> {
  const m = await agent.metrics.registry.getSingleMetric('pgroute_agent_decisions_total')?.get();
  return m?.values.find((v) => v.labels.outcome === 'refuse' && v.labels.reason === 'cancel-rate-limited')?.value ?? -1;
}

describe('cancel bursts from one address', () => {
  it('a pool of 200 connections cancelled at once all reach the backend; what exceeds the bucket is counted and logged', async () => {
    // Pool sizes of 100 per process are common; 10 was the old burst.
    expect(CANCEL_DEFAULTS.cancelBurst).toBeGreaterThanOrEqual(200);
    const src = '192.0.2.77';
    expect(routeVar(ackVars(await client.request(1, 1, [startupMessage(startupFor('acme'), src)])), 'be')).toBe('be_acme_primary');
    // HAProxy recorded that startup; its cancels come with the record.
    const cancel = cancelMessageOf(encodeCancelRequest(4242, Buffer.from([1, 2, 3, 4])), src, [cancelId('acme', 'primary')]);
    let id = 2;
    for (let i = 0; i < 200; i++) {
      const vars = ackVars(await client.request(id++, 1, [cancel]));
      expect(vars.has('err'), `cancel ${i + 1}`).toBe(false);
      expect(routeVar(vars, 'be')).toBe('be_acme_primary');
    }
    expect(await droppedCount()).toBe(0);

    // Empty the bucket (it refills while we send), then the next ones are dropped.
    let refused = 0;
    while (refused < 3 && id < 5_000) {
      if (ackVars(await client.request(id++, 1, [cancel])).has('err')) refused++;
    }
    expect(refused).toBe(3);
    expect(await droppedCount()).toBe(3);
    const warnings = lines.filter((l) => l.msg === 'cancel request dropped');
    expect(warnings).toHaveLength(3);
    expect(warnings[0]).toMatchObject({ level: 40, reason: 'cancel-rate-limited' });
    expect(String(warnings[0]?.detail)).toContain(src);
  });
});
