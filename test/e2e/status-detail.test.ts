// `pgroute status` in the manner of PgBouncer's SHOW POOLS, against a running `pgroute up` (dist/):
// alpha on a real PostgreSQL server with maxconn 1 and maxqueue 2. With one session open, a second
// client waits: status shows 1 session, 1 queued, the limits; once HAProxy gives up on it
// (`timeout queue`, 10 s), 1 refused. How long ago the health changed is shown, and the definition
// the tenants file holds but pgroute refused is listed with its reason.

import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { StatusReport } from '../../generator/src/status/join.js';
import { runCliOnce, startUp, writeTenantsFile } from '../support/pgroute.js';
import { portBlock } from '../support/ports.js';
import { startPostgres, type PgServer } from '../support/postgres.js';
import { stopAll, waitFor, type ProcessHandle } from '../support/process.js';

const ports = portBlock(124);

let server: PgServer | undefined;
let up: ProcessHandle | undefined;
let tmp = '';
let state = '';
const clients: pg.Client[] = [];

async function statusJson(): Promise<StatusReport> {
  const r = await runCliOnce(['status', '--json', '--state-dir', state], 30_000);
  if (r.code !== 0) throw new Error(`pgroute status exited ${r.code}: ${r.stderr}`);
  return JSON.parse(r.stdout) as StatusReport;
}

function client(timeoutMs: number): pg.Client {
  const c = new pg.Client({ host: '127.0.0.1', port: ports.haproxy, user: 'app', database: 'alpha', connectionTimeoutMillis: timeoutMs });
  c.on('error', () => {});
  clients.push(c);
  return c;
}

beforeAll(async () => {
  server = await startPostgres({ name: 'alpha', port: ports.pg[0] });
  const file = writeTenantsFile([]);
  // Limits and an invalid definition, which TenantSpec does not describe.
  writeFileSync(file.file, JSON.stringify({ tenants: [{ id: 'alpha', host: '127.0.0.1', port: server.port, maxconn: 1, maxqueue: 2 }, { id: 'bravo', host: '127.0.0.1', port: 70000 }] }));
  tmp = file.dir;
  state = join(tmp, 'state');
  up = await startUp(ports, file.file, state);
}, 120_000);

afterAll(async () => {
  await Promise.all(clients.map((c) => c.end().catch(() => undefined)));
  await up?.stop('SIGINT', 10_000);
  await stopAll();
  await server?.stop();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

describe('pgroute status: limits, queue, refusals, last change, refused definitions', () => {
  it('one session at maxconn 1: a second client is queued, and status shows it against the limits', async () => {
    const first = client(5_000);
    await first.connect();
    expect((await first.query("SELECT current_setting('cluster_name') AS c")).rows).toEqual([{ c: 'alpha' }]);
    // HAProxy gives up on a queued connection after `timeout queue` (10 s): the client waits longer.
    const second = client(30_000);
    const secondDone = second.connect().then(
      () => 'connected',
      (err: Error) => err.message,
    );

    const report = await waitFor(
      async () => {
        const r = await statusJson();
        return r.tenants[0]?.targets[0]?.queued === 1 ? r : undefined;
      },
      { timeoutMs: 10_000, intervalMs: 100, what: 'alpha with one queued connection', process: up },
    );
    const alpha = report.tenants.find((t) => t.id === 'alpha')?.targets[0];
    expect(alpha).toMatchObject({ target: 'primary', health: 'UP', scur: 1, queued: 1, maxconn: 1, maxqueue: 2, refused: 0 });
    expect(alpha?.lastChangeSeconds).toEqual(expect.any(Number));
    expect(alpha?.servers[0]).toMatchObject({ name: 's1', scur: 1, maxconn: 1, maxqueue: 2 });

    const table = await runCliOnce(['status', '--state-dir', state], 30_000);
    expect(table.code).toBe(0);
    expect(table.stdout).toMatch(/^TENANT\s+STATE\s+TARGET\s+BACKEND\s+ADDRESS\s+HEALTH\s+SESSIONS\s+QUEUED\s+MAXCONN\s+MAXQUEUE\s+REFUSED\s+RATE\s+TOTAL\s+CHANGED$/m);
    expect(table.stdout).toMatch(new RegExp(`^alpha\\s+enabled\\s+primary\\s+pg\\.alpha\\.primary\\s+127\\.0\\.0\\.1:${ports.pg[0]}\\s+UP\\s+1\\s+1\\s+1\\s+2\\s+0\\s+\\d+\\s+\\d+\\s+\\d+[smhd]$`, 'm'));

    // The queued client is refused once `timeout queue` passes; status counts it.
    expect(await secondDone).not.toBe('connected');
    const after = await waitFor(
      async () => {
        const r = await statusJson();
        return r.tenants[0]?.targets[0]?.refused === 1 ? r : undefined;
      },
      { timeoutMs: 10_000, intervalMs: 200, what: 'alpha with one refused connection' },
    );
    expect(after.tenants[0]?.targets[0]).toMatchObject({ scur: 1, queued: 0, refused: 1 });
  });

  it('the refused definition is listed with where and why, in JSON and under the table', async () => {
    const report = await statusJson();
    expect(report.tenants.map((t) => t.id)).toEqual(['alpha']);
    expect(report.refused).toEqual([{ where: expect.stringMatching(/tenants\.yaml: tenants\[1\]$/), id: 'bravo', reason: expect.stringContaining('70000') }]);
    const table = await runCliOnce(['status', '--state-dir', state], 30_000);
    expect(table.stdout).toMatch(/\nRefused definitions \(not served\):\nTENANT\s+WHERE\s+REASON\nbravo\s+\S*tenants\.yaml: tenants\[1\]\s+.*70000/);
  });
});
