import { X509Certificate as NodeX509 } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { x509 } from '../../src/tls/x509.js';
import {
  CLOCK_SKEW_MS,
  createCa,
  describeCertificate,
  issueServerCertificate,
  needsRenewal,
  normalizeSerial,
} from '../../src/tls/certificates.js';
import { ConfigError } from '../../src/errors.js';
import { testCa } from './support.js';

const DAY = 86_400_000;

describe('createCa', () => {
  it('is a self-signed P-256 CA: CA:true pathlen 0 critical, keyCertSign+cRLSign critical, SKI', async () => {
    const now = new Date('2030-01-01T00:00:00Z');
    const ca = await createCa({ commonName: 'pgroute CA', validityDays: 3650, now });
    expect(ca.keyPem).toMatch(/^-----BEGIN PRIVATE KEY-----\n/);
    const node = new NodeX509(ca.certPem);
    expect(node.ca).toBe(true);
    expect(node.subject).toBe('CN=pgroute CA');
    expect(node.checkIssued(node)).toBe(true);
    expect(node.verify(node.publicKey)).toBe(true);
    expect(node.publicKey.asymmetricKeyDetails?.namedCurve).toBe('prime256v1');

    const cert = new x509.X509Certificate(ca.certPem);
    expect(cert.signatureAlgorithm).toMatchObject({ name: 'ECDSA', hash: { name: 'SHA-256' } });
    const bc = cert.getExtension(x509.BasicConstraintsExtension)!;
    expect(bc).toMatchObject({ ca: true, pathLength: 0, critical: true });
    const ku = cert.getExtension(x509.KeyUsagesExtension)!;
    expect(ku.critical).toBe(true);
    expect(ku.usages).toBe(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign);
    expect(cert.getExtension(x509.SubjectKeyIdentifierExtension)?.keyId).toMatch(/^[0-9a-f]{40}$/);

    expect(ca.notBefore.getTime()).toBe(now.getTime() - CLOCK_SKEW_MS);
    expect(ca.notAfter.getTime()).toBe(now.getTime() + 3650 * DAY);
  });
});

describe('issueServerCertificate', () => {
  it('verifies against its CA, carries DNS and IP SANs, and names itself a TLS server', async () => {
    const ca = await testCa();
    const server = await issueServerCertificate({
      ca,
      sans: ['db.example.com', '127.0.0.1', '::1', '*.tenants.example.com'],
      commonName: 'db.example.com',
      validityDays: 90,
    });
    const caNode = new NodeX509(ca.certPem);
    const node = new NodeX509(server.certPem);
    expect(node.checkIssued(caNode)).toBe(true);
    expect(node.verify(caNode.publicKey)).toBe(true);
    expect(node.ca).toBe(false);
    expect(node.issuer).toBe('CN=pgroute test CA');
    expect(node.checkHost('db.example.com')).toBe('db.example.com');
    expect(node.checkHost('acme.tenants.example.com')).toBe('*.tenants.example.com');
    expect(node.checkHost('other.example.com')).toBeUndefined();
    expect(node.checkIP('127.0.0.1')).toBe('127.0.0.1');
    expect(node.checkIP('::1')).toBe('::1');
    expect(node.checkIP('10.0.0.1')).toBeUndefined();
    expect(node.checkPrivateKey((await import('node:crypto')).createPrivateKey(server.keyPem))).toBe(true);

    const cert = new x509.X509Certificate(server.certPem);
    expect(cert.getExtension(x509.BasicConstraintsExtension)).toMatchObject({ ca: false });
    const ku = cert.getExtension(x509.KeyUsagesExtension)!;
    expect(ku.critical).toBe(true);
    expect(ku.usages).toBe(x509.KeyUsageFlags.digitalSignature);
    expect(cert.getExtension(x509.ExtendedKeyUsageExtension)?.usages).toEqual([x509.ExtendedKeyUsage.serverAuth]);
    const san = cert.getExtension(x509.SubjectAlternativeNameExtension)!;
    expect(san.names.items.map((n) => n.type)).toEqual(['dns', 'ip', 'ip', 'dns']);
    const caSki = new x509.X509Certificate(ca.certPem).getExtension(x509.SubjectKeyIdentifierExtension)!.keyId;
    expect(cert.getExtension(x509.AuthorityKeyIdentifierExtension)?.keyId).toBe(caSki);
    // and OpenSSL's own chain check agrees (node verify() only checks the signature)
    expect(await new x509.X509ChainBuilder({ certificates: [new x509.X509Certificate(ca.certPem)] }).build(cert)).toHaveLength(2);
  });

  it('starts a few minutes in the past and never outlives its CA', async () => {
    const now = new Date('2031-06-01T12:00:00Z');
    const ca = await createCa({ commonName: 'short CA', validityDays: 30, now });
    const server = await issueServerCertificate({ ca, sans: ['localhost'], commonName: 'localhost', validityDays: 90, now });
    expect(server.notBefore.getTime()).toBe(now.getTime() - CLOCK_SKEW_MS);
    expect(server.notAfter.getTime()).toBe(ca.notAfter.getTime());
  });

  it('refuses to issue from an expired CA, and refuses names that are neither DNS names nor IPs', async () => {
    const ca = await createCa({ commonName: 'old CA', validityDays: 1, now: new Date('2020-01-01T00:00:00Z') });
    await expect(issueServerCertificate({ ca, sans: ['localhost'], commonName: 'x', validityDays: 1 })).rejects.toThrow(/expired/);
    const good = await testCa();
    await expect(issueServerCertificate({ ca: good, sans: ['bad name!'], commonName: 'x', validityDays: 1 })).rejects.toThrow(ConfigError);
    await expect(issueServerCertificate({ ca: good, sans: [], commonName: 'x', validityDays: 1 })).rejects.toThrow(/at least one name/);
  });

  it('gives unique, positive 128-bit serials (50 issues)', async () => {
    const ca = await testCa();
    const serials = new Set<string>();
    for (let i = 0; i < 50; i++) {
      const s = await issueServerCertificate({ ca, sans: ['localhost'], commonName: 'localhost', validityDays: 1 });
      expect(s.serialHex).toMatch(/^[1-7][0-9a-f]{31}$|^0[1-9a-f][0-9a-f]{30}$/); // 16 bytes, high bit clear
      expect(normalizeSerial(new NodeX509(s.certPem).serialNumber)).toBe(s.serialHex);
      serials.add(s.serialHex);
    }
    expect(serials.size).toBe(50);
  });
});

describe('describeCertificate', () => {
  it('reports what the certificate says, in the forms operators compare', async () => {
    const ca = await testCa();
    const s = await issueServerCertificate({ ca, sans: ['DB.Example.com', '127.0.0.1', '2001:db8::1'], commonName: 'db.example.com', validityDays: 10 });
    const d = describeCertificate(s.certPem + s.keyPem);
    expect(d).toMatchObject({
      subject: 'CN=db.example.com',
      issuer: 'CN=pgroute test CA',
      sans: ['db.example.com', '127.0.0.1', '2001:db8::1'],
      serialHex: s.serialHex,
      notBefore: s.notBefore,
      notAfter: s.notAfter,
    });
    expect(d.fingerprintSha256).toBe(new NodeX509(s.certPem).fingerprint256);
    expect(() => describeCertificate('nothing here')).toThrow(/no PEM certificate/);
  });
});

describe('needsRenewal', () => {
  const nb = new Date('2030-01-01T00:00:00Z');
  const na = new Date(nb.getTime() + 90 * DAY);
  it('is false while more than a third of the lifetime is left, true after', () => {
    expect(needsRenewal(nb, na, new Date(nb.getTime() + 59 * DAY))).toBe(false);
    expect(needsRenewal(nb, na, new Date(nb.getTime() + 61 * DAY))).toBe(true);
    expect(needsRenewal(nb, na, new Date(na.getTime() + 1))).toBe(true);
    expect(needsRenewal(nb, na, new Date(nb.getTime() - 1))).toBe(true); // not valid yet
    expect(needsRenewal(nb, na, new Date(nb.getTime() + 80 * DAY), 0.1)).toBe(false);
  });
  it('is monotonic in time', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 90 * DAY }), fc.integer({ min: 0, max: 90 * DAY }), fc.double({ min: 0.01, max: 0.99, noNaN: true }), (a, b, f) => {
        const [t1, t2] = a <= b ? [a, b] : [b, a];
        if (needsRenewal(nb, na, new Date(nb.getTime() + t1), f)) expect(needsRenewal(nb, na, new Date(nb.getTime() + t2), f)).toBe(true);
      }),
    );
  });
});
