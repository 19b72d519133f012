// The verdict memo (--memo on, docs/memo.md) through TLS, with real HAProxy (PGROUTE_HAPROXY) and a
// real PostgreSQL 15: the memo's key holds whether the startup came through TLS, so a startup
// remembered from a TLS connection is never served from memory to the same bytes in clear text.
// The port here requires TLS: served from memory, the clear-text startup would be routed where the
// agent refuses it.

import { rmSync } from 'node:fs';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { portBlock } from '../support/ports.js';
import { startPostgres, type PgServer } from '../support/postgres.js';
import { startUp, writeTenantsFile } from '../support/pgroute.js';
import { stopAll, waitFor, type ProcessHandle } from '../support/process.js';
import { connectTlsPg } from '../support/tls-client.js';

const ports = portBlock(41);
let server: PgServer;
let up: ProcessHandle;
let dir: string;
let file: string;

async function memoCounts(): Promise<{ hits: number; misses: number }> {
  const text = await (await fetch(`http://127.0.0.1:${ports.agentHealth}/metrics`)).text();
  const value = (name: string): number => Number(/^(\S+) (\S+)$/m.exec(text.split('\n').find((l) => l.startsWith(`${name} `)) ?? '')?.[2] ?? NaN);
  return { hits: value('pgroute_memo_hits_total'), misses: value('pgroute_memo_misses_total') };
}

/** One connection, always with the same startup parameters: 'routed' (a query answered) or the refusal's SQLSTATE. */
async function outcome(ssl: boolean): Promise<string> {
  const client = new pg.Client({
    host: '127.0.0.1',
    port: ports.haproxy,
    user: 'app',
    password: 'app',
    database: 'postgres',
    options: '-c pgroute.tenant=acme',
    application_name: 'memo-tls',
    ssl: ssl ? { rejectUnauthorized: false } : false,
  });
  try {
    await client.connect();
    await client.query('SELECT 1');
    return 'routed';
  } catch (err) {
    const e = err as { code?: string; message: string };
    return e.code === undefined ? `error: ${e.message}` : `refused ${e.code}`;
  } finally {
    await client.end().catch(() => undefined);
  }
}

beforeAll(async () => {
  server = await startPostgres({ name: 'memo-tls', port: ports.pg[0] as number });
  ({ dir, file } = writeTenantsFile([{ id: 'acme', port: server.port }], { listeners: [{ port: ports.haproxy, tls: 'required' }] }));
  up = await startUp(ports, file, `${dir}/state`, ['--memo', 'on', '--tls', 'auto', '--log', 'errors']);
});

afterAll(async () => {
  await up?.stop('SIGINT', 15_000);
  await stopAll();
  await server?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('the verdict memo through TLS', () => {
  it('routes a repeated TLS startup from memory, and refuses the same startup in clear text on a TLS-only port', async () => {
    expect(await outcome(true)).toBe('routed'); // the agent's verdict, now remembered
    const m0 = await memoCounts();
    expect(await outcome(true)).toBe('routed');
    const m1 = await waitFor(async () => {
      const m = await memoCounts();
      return m.hits > m0.hits ? m : undefined;
    }, { timeoutMs: 5_000, what: 'the memo hit counted' });
    expect(m1.hits - m0.hits).toBe(1);
    // The same startup packet in clear text: a key of its own, so the agent decides, and refuses.
    expect(await outcome(false)).toBe('refused 28000');
    expect(await outcome(false)).toBe('refused 28000');
    const m2 = await memoCounts();
    expect(m2.hits).toBe(m1.hits);
  });

  it('keys a startup over 8 KB by all of it: two alike but for the tenant named at their end get two verdicts', async () => {
    // The hex of a packet over 8,192 bytes fills HAProxy's scratch buffer: a key taken from it would
    // end there, without the port and server name, and the second startup would be served the
    // first one's memory (docs/memo.md).
    const startup = (tenant: string) =>
      connectTlsPg({ port: ports.haproxy, negotiation: 'sslrequest', params: { user: 'app', database: 'postgres', application_name: 'x'.repeat(9_000), options: `-c pgroute.tenant=${tenant}` } });
    for (let i = 0; i < 2; i++) {
      const s = await startup('acme'); // the agent's verdict, then a hit
      expect(s.error).toBeUndefined();
      await s.close();
    }
    const other = await startup('acmf');
    expect(other.error?.sqlstate).toBe('3D000');
    await other.close();
  });
});
