// TLS from HAProxy to a tenant's server that accepts TLS first. PostgreSQL 15 (Debian's) expects an
// SSLRequest first, so the "server" here is a real TLS terminator (a second, plain HAProxy) in
// front of a real PostgreSQL: what the target's `tls` setting is for until PostgreSQL 17.

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCa, issueServerCertificate } from '../../generator/src/tls/certificates.js';
import { portBlock } from '../support/ports.js';
import { startPostgres, type PgServer } from '../support/postgres.js';
import { startUp, writeTenantsFile } from '../support/pgroute.js';
import { spawnLogged, stopAll, waitFor, waitForPort, type ProcessHandle } from '../support/process.js';
import { psql } from '../support/psql.js';

const ports = portBlock(12);
const TERMINATOR = ports.spare[0] as number;
let pg: PgServer;
let terminator: ProcessHandle;
let up: ProcessHandle;
let dir: string;
let tenantsDir: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'pgroute-backend-tls-'));
  const ca = await createCa({ commonName: 'backend test CA', validityDays: 2 });
  const server = await issueServerCertificate({ ca, sans: ['db.acme.internal'], commonName: 'db.acme.internal', validityDays: 1 });
  const other = await createCa({ commonName: 'some other CA', validityDays: 2 });
  writeFileSync(join(dir, 'ca.pem'), ca.certPem);
  writeFileSync(join(dir, 'other-ca.pem'), other.certPem);
  writeFileSync(join(dir, 'server.pem'), server.certPem + server.keyPem, { mode: 0o600 });
  pg = await startPostgres({ name: 'tlsback', port: ports.pg[0] as number });
  writeFileSync(
    join(dir, 'terminator.cfg'),
    [
      'defaults',
      '    mode tcp',
      '    timeout connect 5s',
      '    timeout client 1m',
      '    timeout server 1m',
      'frontend tls',
      `    bind 127.0.0.1:${TERMINATOR} ssl crt ${join(dir, 'server.pem')} alpn postgresql`,
      '    default_backend pg',
      'backend pg',
      `    server pg 127.0.0.1:${pg.port}`,
      '',
    ].join('\n'),
  );
  terminator = spawnLogged('haproxy', ['-db', '-f', join(dir, 'terminator.cfg')], { name: 'tls-terminator' });
  await waitForPort(TERMINATOR, '127.0.0.1', 10_000, { process: terminator });

  const file = writeTenantsFile([
    { id: 'secure', port: TERMINATOR, tls: { verify: 'required', ca: join(dir, 'ca.pem'), serverName: 'db.acme.internal' } },
    { id: 'wrongca', port: TERMINATOR, tls: { verify: 'required', ca: join(dir, 'other-ca.pem'), serverName: 'db.acme.internal' } },
    { id: 'wrongname', port: TERMINATOR, tls: { verify: 'required', ca: join(dir, 'ca.pem'), serverName: 'db.other.internal' } },
    { id: 'missingca', port: TERMINATOR, tls: { verify: 'required', ca: join(dir, 'nowhere.pem') } },
  ]);
  tenantsDir = file.dir;
  up = await startUp(ports, file.file, join(tenantsDir, 'state'));
});

afterAll(async () => {
  await up?.stop('SIGINT', 10_000);
  await stopAll();
  await pg?.stop();
  for (const d of [dir, tenantsDir]) if (d) rmSync(d, { recursive: true, force: true });
});

async function connect(tenant: string): Promise<{ code: number | null; out: string }> {
  const r = await psql({ host: '127.0.0.1', port: ports.haproxy, user: 'app', db: 'postgres', options: `-c pgroute.tenant=${tenant}`, command: 'SHOW cluster_name', timeoutMs: 8_000 });
  return { code: r.code, out: `${r.stdout}${r.stderr}`.trim() };
}

describe('TLS from HAProxy to a tenant server', () => {
  it('reaches the server through TLS when its certificate is signed by the CA and names the server', async () => {
    await waitFor(async () => (await connect('secure')).out === 'tlsback', { timeoutMs: 10_000, what: 'secure tenant routable over backend TLS' });
  });

  it('never connects to a server whose certificate another CA signed, or that names another server', async () => {
    for (const tenant of ['wrongca', 'wrongname']) {
      const r = await connect(tenant);
      expect(r.code, r.out).not.toBe(0);
      expect(r.out).not.toContain('tlsback');
    }
  });

  it('a tenant whose CA file is missing is refused with its reason; the others are served', async () => {
    expect(up.output()).toContain(`tls.ca ${join(dir, 'nowhere.pem')} does not exist`);
    expect((await connect('missingca')).out).toContain('no tenant "missingca" is served here');
    expect((await connect('secure')).out).toBe('tlsback');
  });
});
