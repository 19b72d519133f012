// A reload while connections of a paused tenant are held (`pgroute up --tls auto`, real HAProxy,
// agent, PostgreSQL 15): the move is applied with a reload (a new tenant that no spare backend fits
// comes with it), the old server is stopped, the tenant resumed. The held connections, clear text and
// TLS, were accepted by the worker the reload retired; they must survive it and, at resume, land on
// the new server, as connections held without a reload do (docs/pause.md, "A reload while held").

import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { portBlock } from '../support/ports.js';
import type { PgServer } from '../support/postgres.js';
import { agentMetric, cliOk, reloadCount, serverStat, startUpOn, type UpOnServers } from '../support/pgroute.js';
import { stopAll, waitFor, type ProcessHandle } from '../support/process.js';

const ports = portBlock(57);
const PAUSE_TIMEOUT_MS = 30_000;
let servers: PgServer[] = [];
let up: ProcessHandle;
let fixture: UpOnServers | undefined;
let tenantsFile: string;
let stateDir: string;

function writeTenants(tenants: { id: string; port: number }[]): void {
  writeFileSync(tenantsFile, JSON.stringify({ tenants: tenants.map((t) => ({ ...t, host: '127.0.0.1' })) }, null, 2));
}

beforeAll(async () => {
  // No spare backend: a new tenant needs a reload.
  fixture = await startUpOn(
    ports,
    [
      { name: 'reloadold', port: ports.pg[0] as number, database: 'acme' },
      { name: 'reloadnew', port: ports.pg[1] as number, database: 'acme' },
    ],
    [{ id: 'acme', port: ports.pg[0] as number }],
    ['--tls', 'auto', '--spares', '0', '--pause-timeout', `${PAUSE_TIMEOUT_MS}ms`, '--log', 'all'],
  );
  ({ servers, up, tenantsFile, stateDir } = fixture);
}, 90_000);

afterAll(async () => {
  await (fixture?.stop() ?? stopAll());
});

/** One connection: the port of the server it reached, or the error it got (SQLSTATE and message). */
async function serverPort(tls: boolean): Promise<{ port: number } | { code: string | undefined; message: string }> {
  const c = new pg.Client({ host: '127.0.0.1', port: ports.haproxy, user: 'app', password: 'app', database: 'acme', ssl: tls ? { rejectUnauthorized: false, servername: 'acme.pause.test' } : false, connectionTimeoutMillis: 60_000 });
  c.on('error', () => undefined);
  try {
    await c.connect();
    const r = await c.query<{ port: number }>('SELECT inet_server_port() AS port');
    return { port: Number(r.rows[0]?.port) };
  } catch (err) {
    return { code: (err as { code?: string }).code, message: (err as Error).message };
  } finally {
    await c.end().catch(() => undefined);
  }
}

const cli = (...args: string[]): Promise<string> => cliOk(stateDir, ...args);
const heldNow = (): Promise<number> => agentMetric(ports.agentHealth, 'pgroute_agent_held_connections');
/** The address and status of the tenant's server, as HAProxy's current worker has them. */
const acmeServer = (): Promise<{ addr: string; status: string }> => serverStat(stateDir, 'pg.acme.primary', 's1');

describe('a reload while connections of a paused tenant are held', () => {
  it('the held connections survive it and go to the new server at resume, clear text and TLS', async () => {
    const oldPort = ports.pg[0] as number;
    const newPort = ports.pg[1] as number;
    expect(await serverPort(false)).toEqual({ port: oldPort });

    await cli('tenant', 'pause', 'acme');
    await waitFor(() => /"paused": true/.test(readFileSync(join(stateDir, 'routes.json'), 'utf8')), { what: 'routes.json to say paused', timeoutMs: 10_000, intervalMs: 20 });
    const held = [serverPort(false), serverPort(true), serverPort(false), serverPort(true)];
    await waitFor(async () => (await heldNow()) === held.length, { what: 'the connections to be held', timeoutMs: 10_000, intervalMs: 20 });

    // The move, with a reload: a tenant no spare backend fits comes with it.
    const reloads = await reloadCount(join(stateDir, 'haproxy-master.sock'));
    writeTenants([{ id: 'acme', port: newPort }, { id: 'beta', port: newPort }]);
    await waitFor(async () => (await reloadCount(join(stateDir, 'haproxy-master.sock'))) > reloads, { what: 'the reload', timeoutMs: 20_000, intervalMs: 50 });
    await waitFor(async () => {
      const s = await acmeServer();
      return s.addr === `127.0.0.1:${newPort}` && s.status === 'UP';
    }, { what: "the new worker to have acme's new address, up", timeoutMs: 20_000, intervalMs: 50 });
    await servers[0]?.stop();
    expect(await heldNow()).toBe(held.length);

    await cli('tenant', 'resume', 'acme');
    expect(await Promise.all(held)).toEqual(held.map(() => ({ port: newPort })));
    // The retired worker sent each on through the loop, by the socket of how it came (TLS or not);
    // the current worker's hold frontend saw the client as it was: TLS, its server name.
    const logged = async (re: RegExp, n: number): Promise<void> => {
      await waitFor(() => up.outputLines().filter((l) => re.test(l)).length === n, { what: `${n} log lines ${re}`, timeoutMs: 10_000, intervalMs: 50 });
    };
    await logged(/ pgroute-hold pgroute-hold-loop\/tls .* tls=1 sni="acme\.pause\.test"/, 2);
    await logged(/ pgroute-hold pgroute-hold-loop\/clear .* tls=0 sni=""/, 2);
    await logged(/ pgroute-hold pg\.acme\.primary\/s1 .* tls=1 sni="acme\.pause\.test"/, 2);
    await logged(/ pgroute-hold pg\.acme\.primary\/s1 .* tls=0 sni=""/, 2);
    // And after: new connections too.
    expect(await serverPort(true)).toEqual({ port: newPort });
  }, 120_000);
});
