// Tenants named by the user name (`routing.user` pattern `<role>.<tenant>`), through real psql:
// `psql -U app.acme` without a database name connects to acme. libpq then sends the user name as
// the database itself (database=app.acme), which the agent counts as defaulted, like an absent one:
// before, it read as a second tenant and refused the connection (28000, "names two different
// tenants"). A database the client names that differs is still a conflict.

import { rmSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { portBlock } from '../support/ports.js';
import { startPostgresMany, SUPERUSER, type PgServer } from '../support/postgres.js';
import { startUp, writeTenantsFile } from '../support/pgroute.js';
import { stopAll, type ProcessHandle } from '../support/process.js';
import { pgQuery, psql } from '../support/psql.js';

const ports = portBlock(62);
let servers: PgServer[] = [];
let up: ProcessHandle;
let tmp: string;

beforeAll(async () => {
  servers = await startPostgresMany([{ name: 'acme', port: ports.pg[0] as number }, { name: 'globex', port: ports.pg[1] as number }]);
  // The tenant's server knows the client by its whole user name (pgroute forwards the packet as sent).
  const acme = servers[0] as PgServer;
  await pgQuery({ host: '127.0.0.1', port: acme.port, user: SUPERUSER, database: 'postgres' }, 'CREATE ROLE "app.acme" LOGIN');
  await pgQuery({ host: '127.0.0.1', port: acme.port, user: SUPERUSER, database: 'postgres' }, 'CREATE DATABASE "app.acme" OWNER "app.acme"');
  const file = writeTenantsFile(
    servers.map((s) => ({ id: s.name, port: s.port })),
    { routing: { keys: ['options', 'user', 'database'], user: { mode: 'pattern', pattern: '^(?<role>[^.]+)\\.(?<tenant>[a-z0-9-]+)$' } } },
  );
  tmp = file.dir;
  up = await startUp(ports, file.file, `${tmp}/state`);
}, 60_000);

afterAll(async () => {
  await up?.stop('SIGINT', 10_000);
  await stopAll();
  for (const s of servers) await s.stop();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

describe('routing.user pattern with real psql', () => {
  it('psql -U app.acme without a database name reaches acme (libpq sends database=app.acme itself)', async () => {
    const r = await psql({ port: ports.haproxy, user: 'app.acme', db: '', sslmode: 'disable', command: "SELECT current_setting('cluster_name') || ' ' || current_database()" });
    expect(r.stderr).toBe('');
    expect(r.stdout.trim()).toBe('acme app.acme');
  });

  it('a database that names another tenant is still refused: 28000 naming both', async () => {
    const r = await psql({ port: ports.haproxy, user: 'app.acme', db: 'globex', sslmode: 'disable', command: 'SELECT 1' });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('FATAL:  the connection names two different tenants: "acme" (user name) and "globex" (database name)');
  });
});
