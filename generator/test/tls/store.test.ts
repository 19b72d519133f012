import { X509Certificate, createPrivateKey } from 'node:crypto';
import { mkdir, readFile, stat, writeFile, chmod } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/errors.js';
import { createCa, describeCertificate, issueServerCertificate } from '../../src/tls/certificates.js';
import { tlsPaths } from '../../src/tls/paths.js';
import { ensureAutoTls, useProvidedTls } from '../../src/tls/store.js';
import { silentLog, tempDir, testCa } from './support.js';

const DAY = 86_400_000;
let dir: string;
let cleanup: () => Promise<void>;
beforeEach(async () => ({ dir, cleanup } = await tempDir()));
afterEach(() => cleanup());

const mode = async (path: string): Promise<number> => (await stat(path)).mode & 0o777;

describe('ensureAutoTls', () => {
  it('creates the CA and a server certificate once, private files 0600 in a 0700 directory', async () => {
    const stateDir = join(dir, 'state');
    const first = await ensureAutoTls({ stateDir, sans: ['localhost', '127.0.0.1'], log: silentLog });
    const p = tlsPaths(stateDir);
    expect(first).toMatchObject({ serverPemPath: p.serverPem, renewed: true, caCreated: true });
    expect(await mode(p.dir)).toBe(0o700);
    expect(await mode(p.caKey)).toBe(0o600);
    expect(await mode(p.serverPem)).toBe(0o600);
    expect(first.caPem).toBe(await readFile(p.caCert, 'utf8'));

    const pem = await readFile(p.serverPem, 'utf8');
    expect(pem).not.toMatch(/\n\n/); // no blank line: usable as a CLI payload as is
    const leaf = new X509Certificate(pem);
    expect(leaf.checkIssued(new X509Certificate(first.caPem))).toBe(true);
    expect(leaf.checkPrivateKey(createPrivateKey(pem))).toBe(true);
    expect(leaf.serialNumber.toLowerCase()).toContain(first.serialHex);

    const again = await ensureAutoTls({ stateDir, sans: ['127.0.0.1', 'LOCALHOST'], log: silentLog });
    expect(again).toMatchObject({ renewed: false, caCreated: false, serialHex: first.serialHex, caPem: first.caPem });
    expect(await readFile(p.serverPem, 'utf8')).toBe(pem);
  });

  it('renews when less than a third of the lifetime is left, keeping the CA', async () => {
    const t0 = new Date('2030-01-01T00:00:00Z');
    const first = await ensureAutoTls({ stateDir: dir, sans: ['localhost'], log: silentLog, now: t0, serverValidityDays: 90 });
    const day59 = await ensureAutoTls({ stateDir: dir, sans: ['localhost'], log: silentLog, now: new Date(t0.getTime() + 59 * DAY) });
    expect(day59.renewed).toBe(false);
    const day61 = await ensureAutoTls({ stateDir: dir, sans: ['localhost'], log: silentLog, now: new Date(t0.getTime() + 61 * DAY) });
    expect(day61).toMatchObject({ renewed: true, caCreated: false, caPem: first.caPem });
    expect(day61.reason).toMatch(/renewal due/);
    expect(day61.serialHex).not.toBe(first.serialHex);
    expect(day61.notAfter.getTime()).toBe(t0.getTime() + 151 * DAY);
  });

  it('reissues when the names change, and when server.pem is damaged', async () => {
    const first = await ensureAutoTls({ stateDir: dir, sans: ['localhost'], log: silentLog });
    const renamed = await ensureAutoTls({ stateDir: dir, sans: ['localhost', 'db.example.com'], log: silentLog });
    expect(renamed.renewed).toBe(true);
    expect(renamed.reason).toMatch(/names changed/);
    expect(renamed.caPem).toBe(first.caPem);
    expect(describeCertificate(await readFile(renamed.serverPemPath, 'utf8')).sans).toEqual(['localhost', 'db.example.com']);

    await writeFile(renamed.serverPemPath, 'garbage');
    const repaired = await ensureAutoTls({ stateDir: dir, sans: ['localhost', 'db.example.com'], log: silentLog });
    expect(repaired.renewed).toBe(true);
    expect(repaired.reason).toMatch(/unreadable/);
    expect(await mode(repaired.serverPemPath)).toBe(0o600);
  });

  it('reissues a certificate another CA signed, and replaces only an expired CA', async () => {
    const t0 = new Date('2030-01-01T00:00:00Z');
    const p = tlsPaths(dir);
    const first = await ensureAutoTls({ stateDir: dir, sans: ['localhost'], log: silentLog, now: t0, caValidityDays: 100 });
    const foreign = await createCa({ commonName: 'foreign CA', validityDays: 365, now: t0 });
    const other = await issueServerCertificate({ ca: foreign, sans: ['localhost'], commonName: 'localhost', validityDays: 30, now: t0 });
    await writeFile(p.serverPem, other.certPem + other.keyPem);
    const fixed = await ensureAutoTls({ stateDir: dir, sans: ['localhost'], log: silentLog, now: t0 });
    expect(fixed.reason).toBe('not issued by the current CA');

    const later = await ensureAutoTls({ stateDir: dir, sans: ['localhost'], log: silentLog, now: new Date(t0.getTime() + 101 * DAY) });
    expect(later.caCreated).toBe(true);
    expect(later.caPem).not.toBe(first.caPem);
    expect(later.renewed).toBe(true);
  });

  it('refuses a CA certificate whose key is missing rather than replacing it silently', async () => {
    const p = tlsPaths(dir);
    await mkdir(p.dir, { recursive: true });
    await writeFile(p.caCert, (await testCa()).certPem);
    await expect(ensureAutoTls({ stateDir: dir, sans: ['localhost'], log: silentLog })).rejects.toThrow(/ca\.key is missing/);
  });

  it('tightens a tls directory that exists with a wider mode', async () => {
    const p = tlsPaths(dir);
    await mkdir(p.dir, { mode: 0o755 });
    await chmod(p.dir, 0o755);
    await ensureAutoTls({ stateDir: dir, sans: ['localhost'], log: silentLog });
    expect(await mode(p.dir)).toBe(0o700);
  });

  it('serializes concurrent calls on one state dir: one CA, one certificate', async () => {
    const results = await Promise.all([1, 2, 3].map(() => ensureAutoTls({ stateDir: dir, sans: ['localhost'], log: silentLog })));
    expect(results.filter((r) => r.caCreated)).toHaveLength(1);
    expect(new Set(results.map((r) => r.serialHex)).size).toBe(1);
  });

  it('rejects bad names with a ConfigError', async () => {
    await expect(ensureAutoTls({ stateDir: dir, sans: ['no such name!'], log: silentLog })).rejects.toThrow(ConfigError);
  });
});

describe('useProvidedTls', () => {
  async function provided(sans = ['db.example.com']) {
    const ca = await createCa({ commonName: 'operator CA', validityDays: 30 });
    const server = await issueServerCertificate({ ca, sans, commonName: sans[0]!, validityDays: 10 });
    return { ca, server };
  }

  it('writes the leaf, its chain and its key as server.pem (0600), the leaf first', async () => {
    const { ca, server } = await provided();
    const certPath = join(dir, 'fullchain.pem');
    const keyPath = join(dir, 'key.pem');
    // chain given CA-first on purpose; the key as SEC1 ("EC PRIVATE KEY")
    await writeFile(certPath, ca.certPem + '\n' + server.certPem);
    await writeFile(keyPath, createPrivateKey(server.keyPem).export({ type: 'sec1', format: 'pem' }) as string);
    const r = await useProvidedTls({ stateDir: dir, certPath, keyPath });
    expect(r.changed).toBe(true);
    expect(r.certificate.serialHex).toBe(server.serialHex);
    expect(await mode(r.serverPemPath)).toBe(0o600);
    const pem = await readFile(r.serverPemPath, 'utf8');
    const blocks = pem.match(/-----BEGIN [A-Z ]+-----/g);
    expect(blocks).toEqual(['-----BEGIN CERTIFICATE-----', '-----BEGIN CERTIFICATE-----', '-----BEGIN PRIVATE KEY-----']);
    expect(new X509Certificate(pem).serialNumber.toLowerCase()).toContain(server.serialHex);
    expect((await useProvidedTls({ stateDir: dir, certPath, keyPath })).changed).toBe(false);
  });

  it('accepts one combined file', async () => {
    const { server } = await provided();
    const both = join(dir, 'both.pem');
    await writeFile(both, server.keyPem + server.certPem);
    const r = await useProvidedTls({ stateDir: dir, certPath: both });
    expect(r.certificate.sans).toEqual(['db.example.com']);
  });

  it('rejects a key that is not the certificate\'s, naming both files', async () => {
    const a = await provided();
    const b = await provided();
    const certPath = join(dir, 'cert.pem');
    const keyPath = join(dir, 'other.key');
    await writeFile(certPath, a.server.certPem);
    await writeFile(keyPath, b.server.keyPem);
    const err = await useProvidedTls({ stateDir: dir, certPath, keyPath }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as Error).message).toBe(
      `the private key in ${keyPath} does not match the certificate in ${certPath} (CN=db.example.com): its public key is not the certificate's`,
    );
  });

  it('names the file that is missing, empty, or holds garbage or an encrypted key', async () => {
    const { server } = await provided();
    const certPath = join(dir, 'cert.pem');
    const keyPath = join(dir, 'key.pem');
    await writeFile(certPath, server.certPem);
    await expect(useProvidedTls({ stateDir: dir, certPath: join(dir, 'nope.pem'), keyPath })).rejects.toThrow(`cannot read the TLS certificate file ${join(dir, 'nope.pem')}: no such file (ENOENT)`);
    await expect(useProvidedTls({ stateDir: dir, certPath, keyPath })).rejects.toThrow(`cannot read the TLS private key file ${keyPath}: no such file (ENOENT)`);
    await writeFile(keyPath, 'not a key');
    await expect(useProvidedTls({ stateDir: dir, certPath, keyPath })).rejects.toThrow(`${keyPath} holds no PEM private key`);
    await writeFile(keyPath, '-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n');
    await expect(useProvidedTls({ stateDir: dir, certPath, keyPath })).rejects.toThrow(`${keyPath}: the private key cannot be parsed`);
    await writeFile(keyPath, createPrivateKey(server.keyPem).export({ type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase: 'x' }) as string);
    await expect(useProvidedTls({ stateDir: dir, certPath, keyPath })).rejects.toThrow(`${keyPath}: the private key is encrypted`);
    await writeFile(certPath, 'nothing');
    await expect(useProvidedTls({ stateDir: dir, certPath, keyPath })).rejects.toThrow(`${certPath} holds no PEM certificate`);
    await writeFile(certPath, '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n');
    await expect(useProvidedTls({ stateDir: dir, certPath, keyPath })).rejects.toThrow(`${certPath}: certificate #1 cannot be parsed`);
  });
});
