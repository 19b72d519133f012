// /readyz follows readiness (what a balancer and a readiness probe follow); /healthz only whether
// the agent serves (what a liveness probe follows: a replica that is starting or draining is alive).

import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
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
