// The auto TLS mode kept in a Kubernetes Secret (generator/src/tls/secret-store.ts), through the real
// @kubernetes/client-node CoreV1Api against the fake apiserver (test/support/fake-kube-apiserver.ts).
// Ports 24300-24349, one per test.

import { X509Certificate } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { CoreV1Api } from '@kubernetes/client-node';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FakeKubeApiServer } from '../../../test/support/fake-kube-apiserver.js';
import { kubeConfigFor } from '../../../test/support/kube-config.js';
import { prepareTls } from '../../../cli/tls.js';
import { defaultSettings } from '../../src/settings.js';
import { ConfigError } from '../../src/errors.js';
import { tlsPaths } from '../../src/tls/paths.js';
import { joinPem } from '../../src/tls/pem.js';
import { ensureSecretTls, parseSecretRef, secretApi, SecretStoreError, type SecretTlsOptions } from '../../src/tls/secret-store.js';
import { silentLog, tempDir } from './support.js';

const DAY = 86_400_000;
const NS = 'pgroute';
const NAME = 'pgroute-tls';
const REF = { namespace: NS, name: NAME };
let port = 24300;


let dir: string;
let cleanup: () => Promise<void>;
let fake: FakeKubeApiServer;
beforeEach(async () => {
  ({ dir, cleanup } = await tempDir('pgroute-tls-secret-'));
  fake = new FakeKubeApiServer({ port: port++ });
  await fake.start();
});
afterEach(async () => {
  await fake.stop();
  await cleanup();
});

const mode = async (path: string): Promise<number> => (await stat(path)).mode & 0o777;
/** One replica: its own state dir, its own client. */
function replica(id: string, extra: Partial<SecretTlsOptions> = {}): SecretTlsOptions {
  return { stateDir: join(dir, id), sans: ['localhost', 'db.example.com'], log: silentLog, secret: REF, api: secretApi(kubeConfigFor(fake.url)), ...extra };
}
const writes = (): string[] => fake.requests.filter((r) => /^(POST|PUT) /.test(r));

describe('the fake apiserver serves Secrets as the real one does', () => {
  it('GET 404, POST 201 (server-set metadata), POST again 409, PUT with a stale resourceVersion 409, a no-op PUT keeps it', async () => {
    const api = kubeConfigFor(fake.url).makeApiClient(CoreV1Api);
    await expect(api.readNamespacedSecret({ namespace: NS, name: 's' })).rejects.toMatchObject({ code: 404 });
    const created = await api.createNamespacedSecret({ namespace: NS, body: { metadata: { name: 's' }, stringData: { a: 'x' } } });
    expect(created.type).toBe('Opaque');
    expect(created.data).toEqual({ a: Buffer.from('x').toString('base64') });
    expect(created.metadata?.uid).toBeTruthy();
    const rv = created.metadata!.resourceVersion!;
    await expect(api.createNamespacedSecret({ namespace: NS, body: { metadata: { name: 's' } } })).rejects.toMatchObject({ code: 409 });
    const same = await api.replaceNamespacedSecret({ namespace: NS, name: 's', body: created });
    expect(same.metadata?.resourceVersion).toBe(rv);
    const changed = await api.replaceNamespacedSecret({ namespace: NS, name: 's', body: { ...created, data: { a: 'eQ==' } } });
    expect(Number(changed.metadata?.resourceVersion)).toBeGreaterThan(Number(rv));
    expect(changed.metadata?.uid).toBe(created.metadata?.uid);
    const stale = await api.replaceNamespacedSecret({ namespace: NS, name: 's', body: { ...created, data: { a: 'eg==' } } }).catch((e: unknown) => e);
    expect(stale).toMatchObject({ code: 409 });
    expect(String((stale as { body: unknown }).body)).toContain('the object has been modified');
    await expect(api.replaceNamespacedSecret({ namespace: NS, name: 'nope', body: { metadata: { name: 'nope' } } })).rejects.toMatchObject({ code: 404 });
  });

  it('refuses what the apiserver refuses: name mismatch, type change, tls without keys, bad base64, POST on a name', async () => {
    const api = kubeConfigFor(fake.url).makeApiClient(CoreV1Api);
    const s = await api.createNamespacedSecret({ namespace: NS, body: { metadata: { name: 's' } } });
    await expect(api.replaceNamespacedSecret({ namespace: NS, name: 's', body: { ...s, metadata: { ...s.metadata, name: 't' } } })).rejects.toMatchObject({ code: 400 });
    await expect(api.replaceNamespacedSecret({ namespace: NS, name: 's', body: { ...s, type: 'kubernetes.io/tls', data: { 'tls.crt': '', 'tls.key': '' } } })).rejects.toMatchObject({ code: 422 });
    await expect(api.createNamespacedSecret({ namespace: NS, body: { metadata: { name: 'tls' }, type: 'kubernetes.io/tls', data: { 'tls.crt': '' } } })).rejects.toMatchObject({ code: 422 });
    await expect(api.createNamespacedSecret({ namespace: NS, body: { metadata: { name: 'b64' }, data: { a: '!!' } } })).rejects.toMatchObject({ code: 400 });
    await expect(api.createNamespacedSecret({ namespace: NS, body: { metadata: { name: 'rv', resourceVersion: '5' } } })).rejects.toMatchObject({ code: 500 });
    const post = await fetch(`${fake.url}/api/v1/namespaces/${NS}/secrets/s`, { method: 'POST', body: '{}', headers: { 'content-type': 'application/json' } });
    expect(post.status).toBe(405);
  });
});

describe('ensureSecretTls', () => {
  it('first start: creates the CA and certificate, CREATEs the Secret, writes the state dir (0600 keys)', async () => {
    const r = await ensureSecretTls(replica('a'));
    expect(r).toMatchObject({ renewed: true, caCreated: true, conflicts: 0, secret: { ...REF, action: 'created' } });
    const stored = fake.getSecret(NS, NAME)!;
    expect(stored.type).toBe('Opaque');
    expect(Object.keys(stored.data!).sort()).toEqual(['ca.crt', 'ca.key', 'tls.crt', 'tls.key']);
    expect(r.secret.resourceVersion).toBe(stored.metadata.resourceVersion);

    const p = tlsPaths(join(dir, 'a'));
    expect(await mode(p.dir)).toBe(0o700);
    expect(await mode(p.caKey)).toBe(0o600);
    expect(await mode(p.serverPem)).toBe(0o600);
    expect(await mode(p.caCert)).toBe(0o644);
    const serverPem = await readFile(p.serverPem, 'utf8');
    expect(serverPem).toBe(joinPem([fake.secretText(NS, NAME, 'tls.crt')!, fake.secretText(NS, NAME, 'tls.key')!]));
    expect(serverPem).not.toMatch(/\n\n/);
    expect(await readFile(p.caCert, 'utf8')).toBe(fake.secretText(NS, NAME, 'ca.crt'));
    expect(await readFile(p.caKey, 'utf8')).toBe(fake.secretText(NS, NAME, 'ca.key'));
    const leaf = new X509Certificate(serverPem);
    expect(leaf.checkIssued(new X509Certificate(r.caPem))).toBe(true);
    expect(leaf.subjectAltName).toBe('DNS:localhost, DNS:db.example.com');
  });

  it('a second replica (another state dir) reuses the same CA and certificate, writing nothing to the API', async () => {
    const a = await ensureSecretTls(replica('a'));
    const before = writes().length;
    const b = await ensureSecretTls(replica('b', { sans: ['DB.example.com', 'localhost'] }));
    expect(b).toMatchObject({ caCreated: false, conflicts: 0, caPem: a.caPem, serialHex: a.serialHex, secret: { action: 'read', resourceVersion: a.secret.resourceVersion } });
    expect(writes().length).toBe(before);
    expect(await readFile(tlsPaths(join(dir, 'b')).serverPem, 'utf8')).toBe(await readFile(tlsPaths(join(dir, 'a')).serverPem, 'utf8'));
    expect(await mode(tlsPaths(join(dir, 'b')).serverPem)).toBe(0o600);
    // Again on the same state dir: nothing changes anywhere.
    const again = await ensureSecretTls(replica('b'));
    expect(again).toMatchObject({ renewed: false, secret: { action: 'read' } });
  });

  it('two concurrent first starts converge on one CA: the loser gets 409 AlreadyExists and uses the winner\'s', async () => {
    fake.holdRequests('GET', 2); // both read "absent" before either creates
    const [a, b] = await Promise.all([ensureSecretTls(replica('a')), ensureSecretTls(replica('b'))]);
    const [winner, loser] = a.secret.action === 'created' ? [a, b] : [b, a];
    expect(winner).toMatchObject({ caCreated: true, conflicts: 0, secret: { action: 'created' } });
    expect(loser).toMatchObject({ caCreated: false, conflicts: 1, secret: { action: 'read', resourceVersion: winner.secret.resourceVersion } });
    expect(loser.caPem).toBe(winner.caPem);
    expect(loser.serialHex).toBe(winner.serialHex);
    expect(writes().filter((w) => w.startsWith('POST')).length).toBe(2);
    expect(fake.secretText(NS, NAME, 'ca.crt')).toBe(winner.caPem);
    expect(await readFile(tlsPaths(join(dir, 'a')).serverPem, 'utf8')).toBe(await readFile(tlsPaths(join(dir, 'b')).serverPem, 'utf8'));
  });

  it('renewal REPLACEs with the resourceVersion read; a concurrent replace gets 409 and adopts the winner\'s certificate', async () => {
    const t0 = new Date('2030-01-01T00:00:00Z');
    const first = await ensureSecretTls(replica('a', { now: t0 }));
    await ensureSecretTls(replica('b', { now: t0 }));
    const day59 = await ensureSecretTls(replica('a', { now: new Date(t0.getTime() + 59 * DAY) }));
    expect(day59).toMatchObject({ renewed: false, secret: { action: 'read' } });

    const day61 = new Date(t0.getTime() + 61 * DAY);
    fake.holdRequests('GET', 2); // both read the old certificate (same resourceVersion) before either writes
    const [a, b] = await Promise.all([ensureSecretTls(replica('a', { now: day61 })), ensureSecretTls(replica('b', { now: day61 }))]);
    const [winner, loser] = a.secret.action === 'replaced' ? [a, b] : [b, a];
    expect(winner).toMatchObject({ renewed: true, caCreated: false, conflicts: 0, caPem: first.caPem, secret: { action: 'replaced' } });
    expect(winner.reason).toMatch(/renewal due/);
    expect(loser).toMatchObject({ renewed: true, conflicts: 1, caPem: first.caPem, serialHex: winner.serialHex, secret: { action: 'read', resourceVersion: winner.secret.resourceVersion } });
    expect(loser.reason).toMatch(/taken from Secret pgroute\/pgroute-tls/);
    expect(winner.serialHex).not.toBe(first.serialHex);
    expect(Number(winner.secret.resourceVersion)).toBeGreaterThan(Number(first.secret.resourceVersion));
    expect(writes().filter((w) => w.startsWith('PUT')).length).toBe(2);
    expect(await readFile(tlsPaths(join(dir, 'a')).serverPem, 'utf8')).toBe(await readFile(tlsPaths(join(dir, 'b')).serverPem, 'utf8'));
    expect(await mode(tlsPaths(join(dir, 'a')).serverPem)).toBe(0o600);
    expect(await mode(tlsPaths(join(dir, 'b')).serverPem)).toBe(0o600);
  });

  it('new names: REPLACEs with a certificate for them; a replica that did not renew takes it at its next check', async () => {
    const a = await ensureSecretTls(replica('a'));
    await ensureSecretTls(replica('b'));
    const renamed = await ensureSecretTls(replica('a', { sans: ['localhost', 'db.example.com', 'db2.example.com'] }));
    expect(renamed).toMatchObject({ renewed: true, caPem: a.caPem, secret: { action: 'replaced' } });
    expect(renamed.reason).toMatch(/names changed/);
    const b = await ensureSecretTls(replica('b', { sans: ['localhost', 'db.example.com', 'db2.example.com'] }));
    expect(b).toMatchObject({ renewed: true, serialHex: renamed.serialHex, secret: { action: 'read' } });
  });

  it('an empty pre-created Secret is absent: filled with an update (no create needed), its metadata kept', async () => {
    fake.createSecret({ namespace: NS, name: NAME, labels: { team: 'db' } });
    const r = await ensureSecretTls(replica('a'));
    expect(r).toMatchObject({ caCreated: true, secret: { action: 'replaced' } });
    expect(writes().some((w) => w.startsWith('POST'))).toBe(false);
    const s = fake.getSecret(NS, NAME)!;
    expect(s.metadata.labels).toEqual({ team: 'db' });
    expect(fake.secretText(NS, NAME, 'ca.crt')).toBe(r.caPem);
  });

  it('refuses a Secret that is not its own, and a CA certificate without its key, writing nothing', async () => {
    fake.createSecret({ namespace: NS, name: NAME, type: 'kubernetes.io/tls', data: { 'tls.crt': 'x', 'tls.key': 'y' } });
    await expect(ensureSecretTls(replica('a'))).rejects.toThrow(ConfigError);
    await expect(ensureSecretTls(replica('a'))).rejects.toThrow(/not made by --tls auto/);
    fake.createSecret({ namespace: NS, name: 'half', data: { 'ca.crt': (await ensureSecretTls(replica('b', { secret: { namespace: NS, name: 'other' } }))).caPem } });
    await expect(ensureSecretTls(replica('c', { secret: { namespace: NS, name: 'half' } }))).rejects.toThrow(/Secret pgroute\/half key ca.crt exists but its key Secret pgroute\/half key ca.key is missing/);
    expect(writes().filter((w) => w.includes('/half') || w.includes(`/${NAME}`))).toEqual([]);
  });

  it('a 403 names the permissions the service account needs', async () => {
    fake.failNextRequests(1, 403);
    const err = await ensureSecretTls(replica('a')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SecretStoreError);
    expect((err as SecretStoreError).status).toBe(403);
    expect((err as Error).message).toMatch(/cannot get the TLS Secret pgroute\/pgroute-tls: HTTP 403.*needs get and update on Secret pgroute-tls in namespace pgroute/);
  });
});

describe('--tls-secret', () => {
  it('parses <namespace>/<name> and nothing else', () => {
    expect(parseSecretRef('pgroute/pgroute-tls')).toEqual(REF);
    for (const bad of ['pgroute-tls', 'a/b/c', 'Pgroute/x', '/x', 'ns/']) expect(() => parseSecretRef(bad), bad).toThrow(ConfigError);
  });

  it('prepareTls serves the Secret\'s certificate from the state dir; it needs --tls auto and --tls-san, and refuses --tls-cert', async () => {
    const settings = defaultSettings(join(dir, 'state'));
    const flags = { tls: 'auto' as const, tlsMinVersion: 'TLSv1.2' as const, tlsSan: ['localhost'], tlsSecret: `${NS}/${NAME}` };
    const out = await prepareTls(flags, settings, silentLog as never, { kubeConfig: kubeConfigFor(fake.url) });
    expect(out.tls?.crtPath).toBe(tlsPaths(settings.stateDir).serverPem);
    expect(await readFile(out.tls!.crtPath, 'utf8')).toBe(joinPem([fake.secretText(NS, NAME, 'tls.crt')!, fake.secretText(NS, NAME, 'tls.key')!]));
    await expect(prepareTls({ ...flags, tls: 'off' }, settings, silentLog as never)).rejects.toThrow(/--tls-secret needs --tls auto/);
    await expect(prepareTls({ ...flags, tlsCert: '/x.pem' }, settings, silentLog as never)).rejects.toThrow(/cannot go with --tls-cert/);
    // The default names include each host's name: replicas sharing a Secret must name theirs.
    const { tlsSan: _omitted, ...noSans } = flags;
    await expect(prepareTls(noSans, settings, silentLog as never, { kubeConfig: kubeConfigFor(fake.url) })).rejects.toThrow(/--tls-secret needs --tls-san/);
  });
});
