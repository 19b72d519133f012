// `pgroute status` against a running `pgroute up` with two tenants: alpha on a real PostgreSQL
// server, bravo pointing at a closed port. With a session open to alpha, `status --json` shows both
// tenants, alpha UP with one current session, bravo DOWN; the table says the same; `tenant disable`
// shows up as disabled (access.json); without HAProxy, health is unknown and the exit code 1.
//
// Until cli/pgroute.ts registers the status and tenant commands, they run through an equivalent
// entry point built from dist/cli/status.js and dist/cli/tenant.js (see pgrouteOnce).

import { rmSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { StatusReport } from '../../generator/src/status/join.js';
import { runCliOnce, startUp, writeTenantsFile, type CliRun } from '../support/pgroute.js';
import { portBlock } from '../support/ports.js';
import { startPostgres, type PgServer } from '../support/postgres.js';
import { stopAll, waitFor, type ProcessHandle } from '../support/process.js';

const ports = portBlock(11);

let server: PgServer | undefined;
let up: ProcessHandle | undefined;
let tmp = '';
let state = '';
let session: pg.Client | undefined;
const timings: Record<string, number> = {};



/** `pgroute <args>` to completion. */
function pgrouteOnce(args: readonly string[]): Promise<CliRun> {
  return runCliOnce(args, 30_000);
}

async function statusJson(): Promise<StatusReport> {
  const r = await pgrouteOnce(['status', '--json', '--state-dir', state]);
  if (r.code !== 0) throw new Error(`pgroute status exited ${r.code}: ${r.stderr}`);
  timings['status --json (command)'] = r.ms;
  return JSON.parse(r.stdout) as StatusReport;
}

beforeAll(async () => {
  server = await startPostgres({ name: 'alpha', port: ports.pg[0] });
  const file = writeTenantsFile([
    { id: 'alpha', port: server.port },
    { id: 'bravo', port: ports.pg[1] }, // nothing listens there
  ]);
  tmp = file.dir;
  state = join(tmp, 'state');
  up = await startUp(ports, file.file, state);
}, 120_000);

afterAll(async () => {
  await session?.end().catch(() => undefined);
  await up?.stop('SIGINT', 10_000);
  await stopAll();
  await server?.stop();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
  console.log(`status timings (ms): ${JSON.stringify(timings)}`);
});

describe('pgroute status (pgroute up, real HAProxy)', () => {
  it('--json: both tenants, alpha UP with the open session, bravo DOWN', async () => {
    session = new pg.Client({ host: '127.0.0.1', port: ports.haproxy, user: 'app', database: 'alpha', connectionTimeoutMillis: 5_000 });
    session.on('error', () => {});
    await session.connect();
    expect((await session.query('SELECT current_setting(\'cluster_name\') AS c')).rows).toEqual([{ c: 'alpha' }]);

    const t = Date.now();
    const report = await waitFor(
      async () => {
        const r = await statusJson();
        const bravo = r.tenants.find((x) => x.id === 'bravo');
        return bravo?.targets[0]?.health === 'DOWN' ? r : undefined;
      },
      { timeoutMs: 15_000, intervalMs: 100, what: 'bravo DOWN in pgroute status', process: up },
    );
    timings['bravo DOWN in status (after start)'] = Date.now() - t;
    expect(report.haproxy).toEqual({ reachable: true });
    expect(report.tenants.map((x) => x.id)).toEqual(['alpha', 'bravo']);
    const [alpha, bravo] = report.tenants;
    expect(alpha).toMatchObject({ id: 'alpha', state: 'enabled', scur: 1 });
    expect(alpha?.targets).toEqual([
      expect.objectContaining({ target: 'primary', backend: 'pg.alpha.primary', address: `127.0.0.1:${ports.pg[0]}`, health: 'UP', scur: 1, stot: 1 }),
    ]);
    expect(alpha?.targets[0]?.servers).toEqual([expect.objectContaining({ name: 's1', health: 'UP', status: 'UP', checkStatus: 'L4OK', scur: 1 })]);
    expect(bravo).toMatchObject({ id: 'bravo', state: 'enabled', scur: 0 });
    expect(bravo?.targets).toEqual([expect.objectContaining({ target: 'primary', backend: 'pg.bravo.primary', address: `127.0.0.1:${ports.pg[1]}`, health: 'DOWN', scur: 0 })]);
    expect(bravo?.targets[0]?.servers[0]?.checkStatus).toBe('L4CON');
  });

  it('the table shows the same', async () => {
    const r = await pgrouteOnce(['status', '--state-dir', state]);
    expect(r.code).toBe(0);
    timings['status (table, command)'] = r.ms;
    const lines = r.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^TENANT\s+STATE\s+TARGET\s+BACKEND\s+ADDRESS\s+HEALTH\s+SESSIONS\s+QUEUED\s+MAXCONN\s+MAXQUEUE\s+REFUSED\s+RATE\s+TOTAL\s+CHANGED$/);
    expect(lines).toContainEqual(expect.stringMatching(new RegExp(`^alpha\\s+enabled\\s+primary\\s+pg\\.alpha\\.primary\\s+127\\.0\\.0\\.1:${ports.pg[0]}\\s+UP\\s+1\\s+0\\s+-\\s+-\\s+0\\s+\\d+\\s+1\\s+\\d+[smhd]$`)));
    expect(lines).toContainEqual(expect.stringMatching(new RegExp(`^bravo\\s+enabled\\s+primary\\s+pg\\.bravo\\.primary\\s+127\\.0\\.0\\.1:${ports.pg[1]}\\s+DOWN\\s+0\\s+0\\s+-\\s+-\\s+0\\s+0\\s+0\\s+\\d+[smhd]$`)));
  });

  it('a tenant disabled with `pgroute tenant disable` (file source) shows as disabled by access.json', async () => {
    const d = await pgrouteOnce(['tenant', 'disable', 'bravo', '--state-dir', state]);
    expect(d.code).toBe(0);
    const report = await waitFor(
      async () => {
        const r = await statusJson();
        const b = r.tenants.find((x) => x.id === 'bravo');
        return b?.state === 'disabled' && b.pending === undefined ? r : undefined;
      },
      { timeoutMs: 5_000, intervalMs: 50, what: 'bravo disabled (applied) in pgroute status' },
    );
    expect(report.tenants.find((x) => x.id === 'bravo')).toMatchObject({ state: 'disabled', disabledBy: 'access.json' });
    expect(report.tenants.find((x) => x.id === 'alpha')).toMatchObject({ state: 'enabled', scur: 1 });
    expect((await pgrouteOnce(['status', '--state-dir', state])).stdout).toMatch(/^bravo\s+disabled \(access\.json\)\s+primary/m);
  });

  it('the session count follows: 0 once the session ends', async () => {
    await session?.end();
    session = undefined;
    const report = await waitFor(
      async () => {
        const r = await statusJson();
        return r.tenants.find((x) => x.id === 'alpha')?.scur === 0 ? r : undefined;
      },
      { timeoutMs: 5_000, intervalMs: 50, what: 'alpha with no session' },
    );
    expect(report.tenants.find((x) => x.id === 'alpha')?.targets[0]).toMatchObject({ health: 'UP', scur: 0, stot: 1 });
  });

  it('without HAProxy: tenants from the files, health unknown, exit code 1', async () => {
    await up?.stop('SIGINT', 10_000);
    const r = await pgrouteOnce(['status', '--json', '--state-dir', state]);
    expect(r.code).toBe(1);
    const report = JSON.parse(r.stdout) as StatusReport;
    expect(report.haproxy.reachable).toBe(false);
    expect(report.tenants.map((x) => [x.id, x.targets[0]?.health])).toEqual([
      ['alpha', 'unknown'],
      ['bravo', 'unknown'],
    ]);
  });
});
