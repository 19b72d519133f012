// /metrics/haproxy on the metrics address: HAProxy's exporter relayed as it answers; when HAProxy
// does not answer, a 502 naming the address (the scrape fails and `up` says so), never an empty 200.

import { once } from 'node:events';
import { createServer } from 'node:http';
import { afterAll, describe, expect, it } from 'vitest';
import { startTestAgent } from './harness.js';

// Port block 121 (test/support/ports.ts): 32100 metrics address, 32101 a stand-in exporter, 32102 nothing.
const METRICS = 32100;
const EXPORTER = 32101;
const NOTHING = 32102;

const exporter = createServer((req, res) => {
  if (req.url === '/metrics') res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' }).end('haproxy_process_uptime_seconds 42\n');
  else res.writeHead(404).end();
});
await once(exporter.listen(EXPORTER, '127.0.0.1'), 'listening');
afterAll(() => new Promise<void>((r) => exporter.close(() => r())));

describe('/metrics/haproxy', () => {
  it("relays the exporter's answer, status and content type", async () => {
    const agent = await startTestAgent({ http: { host: '127.0.0.1', port: METRICS }, haproxyExporter: { host: '127.0.0.1', port: EXPORTER } });
    try {
      const res = await fetch(`http://127.0.0.1:${METRICS}/metrics/haproxy`);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toBe('text/plain; version=0.0.4');
      expect(await res.text()).toBe('haproxy_process_uptime_seconds 42\n');
    } finally {
      await agent.close();
    }
  });

  it('HAProxy not answering: 502 naming the address, so the scrape fails', async () => {
    const agent = await startTestAgent({ http: { host: '127.0.0.1', port: METRICS }, haproxyExporter: { host: '127.0.0.1', port: NOTHING } });
    try {
      const res = await fetch(`http://127.0.0.1:${METRICS}/metrics/haproxy`);
      expect(res.status).toBe(502);
      expect(await res.text()).toMatch(new RegExp(`^HAProxy's exporter at 127\\.0\\.0\\.1:${NOTHING} is unreachable \\(connect ECONNREFUSED`));
    } finally {
      await agent.close();
    }
  });

  it('no exporter configured (stats port off, or `pgroute agent` alone): 404 saying why', async () => {
    const agent = await startTestAgent({ http: { host: '127.0.0.1', port: METRICS } });
    try {
      const res = await fetch(`http://127.0.0.1:${METRICS}/metrics/haproxy`);
      expect(res.status).toBe(404);
      expect(await res.text()).toMatch(/stats port is off/);
    } finally {
      await agent.close();
    }
  });
});
