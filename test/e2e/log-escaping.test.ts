// HAProxy's traffic log carries what clients sent (the TLS server name; the tenant and target the
// agent read from the startup packet). A client must not be able to write a line of its own into
// that log: every client-controlled field is quoted and escaped.

import { rmSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { portBlock } from '../support/ports.js';
import { startPostgres, type PgServer } from '../support/postgres.js';
import { startUp, writeTenantsFile } from '../support/pgroute.js';
import { stopAll, waitFor, type ProcessHandle } from '../support/process.js';
import { connectTlsPg } from '../support/tls-client.js';

const ports = portBlock(48);
let server: PgServer;
let dir: string;
let up: ProcessHandle | undefined;

beforeAll(async () => {
  server = await startPostgres({ name: 'logged', port: ports.pg[0] });
  let file: string;
  ({ dir, file } = writeTenantsFile([{ id: 'logged', port: server.port }]));
  up = await startUp(ports, file, `${dir}/state`, ['--tls', 'auto', '--log', 'all']);
});

afterAll(async () => {
  await up?.stop('SIGINT', 15_000);
  await stopAll();
  await server?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('the traffic log', () => {
  it('a server name with a line break and quotes stays inside its own, quoted field', async () => {
    const forged = 'x.example\n127.0.0.1:1 [forged] pgroute pg.logged.primary/s1 "sni=';
    const s = await connectTlsPg({ port: ports.haproxy, negotiation: 'direct', servername: forged, params: { user: 'app', database: 'postgres', options: '-c pgroute.tenant=logged' } });
    expect(s.error).toBeUndefined();
    await s.close();
    const line = await waitFor(async () => up?.outputLines().find((l) => l.includes('sni="x.example')), { timeoutMs: 10_000, what: 'the log line of the session' });
    expect(line).toContain('sni="x.example\\n127.0.0.1:1 [forged] pgroute pg.logged.primary\\/s1 \\"sni="'); // JSON escapes: \n, \/, \"
    expect(line).toContain('tenant="logged" target="primary"');
    expect(up?.outputLines().some((l) => /^out\| 127\.0\.0\.1:1 \[forged\]/.test(l))).toBe(false);
  });
});
