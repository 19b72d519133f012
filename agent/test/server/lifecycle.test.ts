// The agent's life: /healthz and /metrics over HTTP, and a graceful close() that says goodbye
// (AGENT-DISCONNECT status 0) to every open HAProxy connection and stops listening.

import { connect, createServer } from 'node:net';
import { once } from 'node:events';
import { request } from 'node:http';
import { describe, expect, it } from 'vitest';
import { encodeCancelRequest } from '../../src/pg/frontend.js';
import { STATUS } from '../../src/spop/index.js';
import { createAgentMetrics } from '../../src/metrics.js';
import { startTestAgent, startupFor } from './harness.js';
import { SpopClient, cancelMessageOf, haproxyHello, startupMessage } from './spop-client.js';
import { cancelId } from '../../src/contract.js';

// Fixed ports (RunningAgent does not report the HTTP port); this file owns 31910-31913 (port block 119).
const HTTP_PORT = 31910;
const HTTP_PORT_CLOSE = 31911;
const SPOP_PORT_BIND_FAIL = 31912;
const HTTP_PORT_TAKEN = 31913;

function get(port: number, path: string, method = 'GET'): Promise<{ status: number; type: string | undefined; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, type: res.headers['content-type'], body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

function refused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port });
    s.once('connect', () => {
      s.destroy();
      resolve(false);
    });
    s.once('error', () => resolve(true));
  });
}

describe('HTTP side', () => {
  it('/healthz, /metrics with decision counters by outcome and reason, 404 and 405', async () => {
    // With Node's default metrics, to check their names.
    const agent = await startTestAgent({ http: { host: '127.0.0.1', port: HTTP_PORT }, metrics: createAgentMetrics() });
    try {
      const c = await SpopClient.connect(agent.port);
      await c.hello();
      await c.request(1, 1, [startupMessage(startupFor('acme'))]);
      await c.request(1, 2, [startupMessage(startupFor('acme'))]);
      await c.request(1, 3, [startupMessage(startupFor('globex'), '127.0.0.1', 6432)]);
      await c.request(1, 4, [startupMessage(startupFor('nope'))]);
      await c.request(1, 5, [startupMessage(startupFor('initech'))]);
      await c.request(1, 6, [startupMessage(Buffer.from([0, 0, 0, 1]))]);
      await c.request(1, 7, [cancelMessageOf(encodeCancelRequest(1, Buffer.from([1, 2, 3, 4])), '127.0.0.1', [cancelId('acme', 'primary')])]);
      await c.request(1, 8, [cancelMessageOf(encodeCancelRequest(1, Buffer.from([1, 2, 3, 4])), '10.0.0.1')]);
      await c.request(1, 9, [{ name: 'not-ours', args: [] }]);

      const health = await get(HTTP_PORT, '/healthz');
      expect(health.status).toBe(200);
      expect(health.type).toMatch(/application\/json/);
      expect(JSON.parse(health.body)).toMatchObject({ status: 'ok', routeTable: 'v-test', tenants: 4, haproxyConnections: 1 });
      expect((await get(HTTP_PORT, '/readyz?x=1')).status).toBe(200);

      const metrics = await get(HTTP_PORT, '/metrics');
      expect(metrics.status).toBe(200);
      expect(metrics.type).toMatch(/text\/plain/);
      const line = (outcome: string, reason: string): number => {
        const m = new RegExp(`^pgroute_agent_decisions_total\\{outcome="${outcome}",reason="${reason}"\\} (\\d+)$`, 'm').exec(metrics.body);
        return m === null ? -1 : Number(m[1]);
      };
      // Routes by kind of packet: never a tenant or target name in a label.
      expect(line('route', 'startup')).toBe(3);
      expect(line('route', 'cancel')).toBe(1);
      expect(metrics.body).not.toMatch(/reason="(primary|pool|acme|globex)"/);
      // Every reason exists from the start, at 0.
      expect(line('refuse', 'cancel-rate-limited')).toBe(0);
      // Node's defaults under their standard names.
      expect(metrics.body).toMatch(/^process_cpu_seconds_total \d/m);
      expect(metrics.body).toMatch(/^nodejs_heap_size_used_bytes \d/m);
      expect(metrics.body).not.toMatch(/^pgroute_agent_(process|nodejs)_/m);
      expect(line('refuse', 'unknown-tenant')).toBe(1);
      expect(line('refuse', 'disabled-tenant')).toBe(1);
      expect(line('refuse', 'malformed')).toBe(1);
      expect(line('refuse', 'cancel-unroutable')).toBe(1);
      expect(metrics.body).toMatch(/^pgroute_agent_haproxy_connections 1$/m);
      expect(metrics.body).toMatch(/^pgroute_agent_route_table_tenants 4$/m);
      expect(metrics.body).toMatch(/^pgroute_agent_frames_total\{direction="in",type="notify"\} 9$/m);
      expect(metrics.body).toMatch(/^pgroute_agent_frames_total\{direction="out",type="ack"\} 9$/m);
      // Sampled: 1 decision in DECISION_SAMPLE_EVERY (16) is timed, the first one included.
      expect(metrics.body).toMatch(/^pgroute_agent_decision_seconds_count 1$/m);
      expect(metrics.body).toMatch(/^pgroute_agent_decision_seconds_bucket\{le="\+Inf"\} 1$/m);
      expect(metrics.body).toMatch(/^pgroute_agent_decision_seconds_sum \d/m);

      expect((await get(HTTP_PORT, '/nope')).status).toBe(404);
      expect((await get(HTTP_PORT, '/metrics', 'POST')).status).toBe(405);
      c.destroy();
    } finally {
      await agent.close();
    }
    expect(await refused(HTTP_PORT)).toBe(true);
  });

  it('protocol errors are counted', async () => {
    const agent = await startTestAgent();
    try {
      const c = await SpopClient.connect(agent.port);
      c.send(Buffer.from([0, 0, 0, 8, 0x7f, 0, 0, 0, 1, 0, 0, 0]));
      await c.expectDisconnect();
      expect((await agent.metrics.errors.get()).values).toContainEqual(expect.objectContaining({ labels: { kind: 'protocol' }, value: 1 }));
    } finally {
      await agent.close();
    }
  });
});

describe('graceful close()', () => {
  it('open connections (handshaken or not) get AGENT-DISCONNECT 0 and are closed; the listeners stop', async () => {
    const agent = await startTestAgent({ http: { host: '127.0.0.1', port: HTTP_PORT_CLOSE } });
    const ready = await SpopClient.connect(agent.port);
    await ready.hello();
    await ready.request(1, 1, [startupMessage(startupFor('acme'))]);
    const fresh = await SpopClient.connect(agent.port);
    // Let the agent accept `fresh` before closing.
    await new Promise((r) => setTimeout(r, 20));

    const started = Date.now();
    const closing = agent.close();
    const [a, b] = await Promise.all([ready.expectDisconnect(), fresh.expectDisconnect()]);
    expect(a.statusCode).toBe(STATUS.NONE);
    expect(b.statusCode).toBe(STATUS.NONE);
    await closing;
    expect(Date.now() - started).toBeLessThan(1_500); // did not need the 2 s destroy deadline
    expect(await refused(agent.port)).toBe(true);
    expect(await refused(HTTP_PORT_CLOSE)).toBe(true);
  });

  it('close() with no connections resolves promptly', async () => {
    const agent = await startTestAgent();
    const started = Date.now();
    await agent.close();
    expect(Date.now() - started).toBeLessThan(500);
    expect(await refused(agent.port)).toBe(true);
  });

  it('a peer that never reads its side does not hold close() past the deadline', async () => {
    const agent = await startTestAgent();
    const c = await SpopClient.connect(agent.port);
    await c.hello();
    c.socket.pause(); // stops reading: the AGENT-DISCONNECT still fits the kernel buffers, FIN is honoured on resume
    const started = Date.now();
    await agent.close();
    expect(Date.now() - started).toBeLessThan(3_000);
    c.destroy();
  });
});

describe('resources', () => {
  it('peers that never close after HAPROXY-DISCONNECT or a health check do not keep their sockets', async () => {
    const agent = await startTestAgent();
    try {
      const bye = await SpopClient.connect(agent.port);
      await bye.hello();
      const health = await SpopClient.connect(agent.port);
      // Neither client reads again, so neither sees the agent's FIN nor sends its own.
      bye.socket.pause();
      health.socket.pause();
      bye.send({ type: 'haproxy-disconnect', statusCode: 0, message: 'normal' });
      health.send(haproxyHello({ healthcheck: true }));
      const gauge = async (): Promise<number> => (await agent.metrics.haproxyConnections.get()).values[0]?.value ?? -1;
      const deadline = Date.now() + 4_000;
      while ((await gauge()) !== 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      expect(await gauge()).toBe(0);
      bye.destroy();
      health.destroy();
    } finally {
      await agent.close();
    }
  });

  it('startAgent that cannot bind its HTTP port rejects and leaves no SPOP listener behind', async () => {
    const squatter = createServer();
    squatter.listen(HTTP_PORT_TAKEN, '127.0.0.1');
    await once(squatter, 'listening');
    try {
      await expect(
        startTestAgent({ listen: { host: '127.0.0.1', port: SPOP_PORT_BIND_FAIL }, http: { host: '127.0.0.1', port: HTTP_PORT_TAKEN } }),
      ).rejects.toThrow(/cannot listen on 127\.0\.0\.1:31913/);
      expect(await refused(SPOP_PORT_BIND_FAIL)).toBe(true);
    } finally {
      await new Promise((r) => squatter.close(r));
    }
  });
});
