// TLS with the operator's own certificate (`pgroute up --tls-cert --tls-key`): clients verify it
// with their CA, and a rotated pair on disk (what cert-manager or certbot do) is picked up and
// swapped in through the runtime API, with no reload and no dropped session. A half-written
// rotation (a new certificate beside the old key) is refused and the served certificate stays.

import { existsSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { statePaths } from '../../generator/src/index.js';
import { createCa, issueServerCertificate, normalizeSerial, type IssuedCertificate } from '../../generator/src/tls/certificates.js';
import { portBlock } from '../support/ports.js';
import { startPostgres, type PgServer } from '../support/postgres.js';
import { reloadCount, startUp, writeTenantsFile } from '../support/pgroute.js';
import { stopAll, waitFor, type ProcessHandle } from '../support/process.js';
import { psql } from '../support/psql.js';
import { peerCertificate } from '../support/tls-client.js';

const ports = portBlock(13);
let server: PgServer | undefined;
let up: ProcessHandle;
let dir: string;
let stateDir: string;
let ca: IssuedCertificate;
let first: IssuedCertificate;

const certFile = (): string => join(dir, 'server.crt');
const keyFile = (): string => join(dir, 'server.key');

/** Writes a file the way rotation tools do: a new file renamed over the old one. */
function replace(path: string, content: string): void {
  writeFileSync(`${path}.new`, content, { mode: 0o600 });
  renameSync(`${path}.new`, path);
}

async function issue(commonName: string): Promise<IssuedCertificate> {
  return issueServerCertificate({ ca, sans: ['localhost', '127.0.0.1'], commonName, validityDays: 30 });
}

async function servedSerial(): Promise<string> {
  const cert = await peerCertificate({ port: ports.haproxy, negotiation: 'sslrequest', ca: ca.certPem, servername: 'localhost' });
  return normalizeSerial(cert.serialNumber);
}

beforeAll(async () => {
  server = await startPostgres({ name: 'acme', port: ports.pg[0] as number });
  const t = writeTenantsFile([{ id: 'acme', port: server.port }]);
  dir = t.dir;
  stateDir = join(dir, 'state');
  ca = await createCa({ commonName: 'operator test CA', validityDays: 30 });
  first = await issue('first');
  writeFileSync(join(dir, 'ca.pem'), ca.certPem);
  replace(certFile(), first.certPem);
  replace(keyFile(), first.keyPem);
  up = await startUp(ports, t.file, stateDir, ['--tls-cert', certFile(), '--tls-key', keyFile(), '--tls-watch-interval', '200ms']);
});

afterAll(async () => {
  await up?.stop('SIGINT', 15_000);
  await stopAll();
  await server?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('pgroute up --tls-cert --tls-key', () => {
  it('serves the given certificate: psql sslmode=verify-full with the operator CA lands on the tenant', async () => {
    const r = await psql({
      host: 'localhost',
      port: ports.haproxy,
      user: 'app',
      db: 'acme',
      sslmode: 'verify-full',
      command: 'SHOW cluster_name',
      env: { PGSSLROOTCERT: join(dir, 'ca.pem'), PGHOSTADDR: '127.0.0.1' },
    });
    expect(r.stderr).toBe('');
    expect(r.stdout.trim()).toBe('acme');
    expect(await servedSerial()).toBe(normalizeSerial(first.serialHex));
  });

  it('a rotated pair on disk is swapped in without a reload; a half-written rotation is refused meanwhile; open sessions carry on', async () => {
    const reloadsBefore = await reloadCount(statePaths(stateDir).masterSocket);
    const session = new pg.Client({ host: '127.0.0.1', port: ports.haproxy, user: 'app', database: 'acme', ssl: { ca: ca.certPem, servername: 'localhost' } });
    await session.connect();
    try {
      const second = await issue('second');
      // The certificate first, its key a moment later: that pair does not match and must not be served.
      replace(certFile(), second.certPem);
      const refusedLine = (): string | undefined => up.output().split('\n').find((l) => l.includes('renewal check failed') && l.includes('does not match the certificate'));
      await waitFor(async () => refusedLine() !== undefined, { timeoutMs: 5_000, what: 'the mismatched pair refused in the log' });
      expect(await servedSerial()).toBe(normalizeSerial(first.serialHex));

      replace(keyFile(), second.keyPem);
      await waitFor(async () => (await servedSerial()) === normalizeSerial(second.serialHex), { timeoutMs: 5_000, intervalMs: 100, what: 'the new certificate served' });
      expect(up.output()).toContain('swapped the renewed TLS certificate into HAProxy');
      expect(await reloadCount(statePaths(stateDir).masterSocket)).toBe(reloadsBefore);
      // The session opened under the first certificate is still there.
      const r = await session.query<{ cluster_name: string }>('SHOW cluster_name');
      expect(r.rows[0]?.cluster_name).toBe('acme');
    } finally {
      await session.end();
    }
  });

  it('an invalid --tls-watch-interval is refused before anything starts', async () => {
    const { runCliOnce, deploymentFlags } = await import('../support/pgroute.js');
    const r = await runCliOnce(['up', '--tenants', join(dir, 'missing.yaml'), ...deploymentFlags(ports, join(dir, 'state-2'), ['--tls-cert', certFile(), '--tls-watch-interval', 'soon'])]);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe('pgroute: --tls-watch-interval (PGROUTE_TLS_WATCH_INTERVAL) must be a duration of at least 100ms like 500ms, 5s or 1m, got "soon"\n');
    // Before anything: not even the state dir.
    expect(existsSync(join(dir, 'state-2'))).toBe(false);
  });
});
