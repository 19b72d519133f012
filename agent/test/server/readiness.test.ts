// /readyz follows readiness (what a balancer and a readiness probe follow); /healthz only whether
// the agent serves (what a liveness probe follows: a replica that is starting or draining is alive).

import { once } from 'node:events';
import { connect, type AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { createAgentMetrics } from '../../src/metrics.js';
import { createAgentHttpServer } from '../../src/server/http.js';

describe('/readyz and /healthz', () => {
  it('answer 503 with the reason while not ready (/readyz) or not serving (both)', async () => {
    let unhealthy: string | undefined;
    let notReady: string | undefined = 'HAProxy is starting';
    const server = createAgentHttpServer(createAgentMetrics(), { unhealthy: () => unhealthy, notReady: () => notReady, describe: () => ({ tenants: 2 }) });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const port = (server.address() as AddressInfo).port;
    const get = async (path: string): Promise<[number, Record<string, unknown>]> => {
      const r = await fetch(`http://127.0.0.1:${port}${path}`);
      return [r.status, (await r.json()) as Record<string, unknown>];
    };
    try {
      expect(await get('/readyz')).toEqual([503, { status: 'not ready', problem: 'HAProxy is starting', tenants: 2 }]);
      expect(await get('/healthz')).toEqual([200, { status: 'not ready', problem: 'HAProxy is starting', tenants: 2 }]);
      notReady = undefined;
      expect(await get('/readyz')).toEqual([200, { status: 'ok', tenants: 2 }]);
      notReady = 'draining: this replica is stopping';
      expect((await get('/readyz'))[0]).toBe(503);
      unhealthy = 'SPOP listener closed';
      expect(await get('/healthz')).toEqual([503, { status: 'unhealthy', problem: 'SPOP listener closed', tenants: 2 }]);
      expect((await get('/readyz'))[0]).toBe(503);
    } finally {
      server.close();
    }
  });
});

describe('the metrics address', () => {
  it('lets go of a client that does not finish its request within the request timeout', async () => {
    const server = createAgentHttpServer(createAgentMetrics(), { unhealthy: () => undefined, describe: () => ({}) }, { requestTimeoutMs: 300 });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const port = (server.address() as AddressInfo).port;
    try {
      // Half a request line, then nothing: Node answers 408 and closes, about when the timeout ends.
      const sock = connect(port, '127.0.0.1');
      await once(sock, 'connect');
      const started = Date.now();
      sock.write('GET /metrics HTTP/1.1\r\nHost: x\r\n');
      let received = '';
      sock.on('data', (d: Buffer) => (received += d.toString('latin1')));
      await once(sock, 'close');
      expect(received).toMatch(/^HTTP\/1\.1 408 /);
      expect(Date.now() - started).toBeGreaterThanOrEqual(250);
      // Node checks the timeouts once a second here (every 30 s by default): closed well before a minute.
      expect(Date.now() - started).toBeLessThan(5_000);
    } finally {
      server.close();
    }
  });
});
