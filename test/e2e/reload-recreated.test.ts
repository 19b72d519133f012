// A tenant removed (its backend vacated at runtime: its server in maintenance, so marked DOWN) and
// then defined again in a change that needs a reload (a new tenant no spare backend fits comes with
// it): the reload recreates its backend, which must start as a new backend does, serving at once,
// not with the DOWN state the retired worker's `show servers state` held for the vacated server
// (generator/src/haproxy/server-state.ts). `pgroute up`, real HAProxy and PostgreSQL 15; a client
// connects over and over across the change, and no connection is refused as unavailable (57P03).

import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { portBlock } from '../support/ports.js';
import { reloadCount, serverStat, startUpOn, type UpOnServers } from '../support/pgroute.js';
import { stopAll, waitFor, type ProcessHandle } from '../support/process.js';

const ports = portBlock(59);
let up: ProcessHandle;
let fixture: UpOnServers | undefined;
let tenantsFile: string;
let stateDir: string;

function writeTenants(ids: string[]): void {
  writeFileSync(tenantsFile, JSON.stringify({ tenants: ids.map((id) => ({ id, host: '127.0.0.1', port: ports.pg[0] })) }, null, 2));
}

beforeAll(async () => {
  // One spare: acme's vacated backend is not reused at runtime while it rests (10 s), and the
  // change below brings two new targets, which one spare cannot hold: a reload.
  fixture = await startUpOn(
    ports,
    [{ name: 'recreated', port: ports.pg[0] as number, database: 'acme' }],
    ['acme', 'beta'].map((id) => ({ id, port: ports.pg[0] as number })),
    ['--spares', '1'],
  );
  ({ up, tenantsFile, stateDir } = fixture);
}, 90_000);

afterAll(async () => {
  await (fixture?.stop() ?? stopAll());
});

/** One connection to acme: 'ok', or the SQLSTATE (and message) it was refused with. */
async function connectAcme(): Promise<string> {
  const c = new pg.Client({ host: '127.0.0.1', port: ports.haproxy, user: 'app', password: 'app', database: 'acme', connectionTimeoutMillis: 10_000 });
  c.on('error', () => undefined);
  try {
    await c.connect();
    await c.query('SELECT 1');
    return 'ok';
  } catch (err) {
    return `${(err as { code?: string }).code ?? '-'} ${(err as Error).message}`;
  } finally {
    await c.end().catch(() => undefined);
  }
}

const acmeStatus = async (): Promise<string> => (await serverStat(stateDir, 'pg.acme.primary', 's1')).status;

describe('a reload that recreates a removed tenant\'s backend', () => {
  it('the recreated backend serves at once: no 57P03 before its first check', async () => {
    expect(await connectAcme()).toBe('ok');
    writeTenants(['beta']);
    await waitFor(async () => (await acmeStatus()) === 'MAINT', { what: "acme's vacated server in maintenance", timeoutMs: 20_000, intervalMs: 50 });
    expect(await connectAcme()).toMatch(/^3D000 /);

    const reloads = await reloadCount(join(stateDir, 'haproxy-master.sock'));
    const results: string[] = [];
    let stopped = false;
    const loop = (async () => {
      while (!stopped) results.push(await connectAcme());
    })();
    writeTenants(['acme', 'beta', 'gamma', 'delta']);
    await waitFor(async () => (await reloadCount(join(stateDir, 'haproxy-master.sock'))) > reloads, { what: 'the reload', timeoutMs: 20_000, intervalMs: 50 });
    await waitFor(() => results.filter((r) => r === 'ok').length >= 20, { what: 'acme served again', timeoutMs: 20_000, intervalMs: 20 });
    stopped = true;
    await loop;
    const since = results.findIndex((r) => !r.startsWith('3D000 '));
    console.log(`reload-recreated: ${results.length} connections, first served at #${since}; outcomes after: ${JSON.stringify([...new Set(results.slice(since))])}`);
    expect(results.slice(since).filter((r) => r !== 'ok')).toEqual([]);
  }, 90_000);
});
