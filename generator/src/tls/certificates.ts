// Creating a private CA and the server certificates it signs, and describing certificates.
// No file system: keys and certificates go in and out as PEM text. ECDSA P-256 with SHA-256.

import { X509Certificate as NodeX509Certificate, getRandomValues, type webcrypto } from 'node:crypto';
import { crypto, x509 } from './x509.js';
import { parseSan, parseSans } from './sans.js';
import { certificateBlocks } from './pem.js';

const DAY_MS = 86_400_000;
/** notBefore is set this far in the past, so a client whose clock is a bit behind accepts a fresh certificate. */
export const CLOCK_SKEW_MS = 5 * 60_000;

const KEY_ALGORITHM: webcrypto.EcKeyGenParams = { name: 'ECDSA', namedCurve: 'P-256' };
const SIGNING_ALGORITHM: webcrypto.EcdsaParams = { name: 'ECDSA', hash: 'SHA-256' };

export interface IssuedCertificate {
  readonly certPem: string;
  /** PKCS#8 PEM. */
  readonly keyPem: string;
  /** Lower-case hex, no leading zero byte. */
  readonly serialHex: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
}

/** A CA able to sign: its certificate and its private key, both PEM. */
export interface CertificateAuthority {
  readonly certPem: string;
  readonly keyPem: string;
}

export interface CreateCaOptions {
  readonly commonName: string;
  readonly validityDays: number;
  /** The clock; defaults to now. */
  readonly now?: Date;
}

export interface IssueServerOptions {
  readonly ca: CertificateAuthority;
  /** DNS names and IP addresses (told apart automatically). */
  readonly sans: readonly string[];
  readonly commonName: string;
  readonly validityDays: number;
  readonly now?: Date;
}

export interface CertificateDescription {
  readonly subject: string;
  readonly issuer: string;
  /** DNS names and IP addresses, in the certificate's order. */
  readonly sans: string[];
  readonly serialHex: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
  /** "AB:CD:…", as `openssl x509 -fingerprint -sha256` prints it. */
  readonly fingerprintSha256: string;
}

/** A self-signed CA: CA:true pathlen 0 (signs servers only), keyCertSign + cRLSign. */
export async function createCa(opts: CreateCaOptions): Promise<IssuedCertificate> {
  const { notBefore, notAfter } = validity(opts.now ?? new Date(), opts.validityDays);
  const keys = await generateKeys();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomSerialHex(),
    name: nameOf(opts.commonName),
    notBefore,
    notAfter,
    keys,
    signingAlgorithm: SIGNING_ALGORITHM,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return issued(cert, await exportKey(keys.privateKey));
}

/**
 * A server certificate signed by `ca`: CA:false, digitalSignature, serverAuth, the SANs. Its
 * validity never outlasts the CA's.
 */
export async function issueServerCertificate(opts: IssueServerOptions): Promise<IssuedCertificate> {
  const now = opts.now ?? new Date();
  const sans = parseSans(opts.sans);
  const caCert = parseCertificate(opts.ca.certPem, 'CA certificate');
  const caKey = await importKey(opts.ca.keyPem);
  if (caCert.notAfter.getTime() <= now.getTime()) {
    throw new Error(`the CA "${caCert.subject}" expired on ${caCert.notAfter.toISOString()}; it cannot issue certificates`);
  }
  const requested = validity(now, opts.validityDays);
  const notAfter = new Date(Math.min(requested.notAfter.getTime(), caCert.notAfter.getTime()));
  const caKeyId = caCert.getExtension(x509.SubjectKeyIdentifierExtension)?.keyId;
  const keys = await generateKeys();
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: randomSerialHex(),
    subject: nameOf(opts.commonName),
    issuer: caCert.subjectName,
    notBefore: requested.notBefore,
    notAfter,
    publicKey: keys.publicKey,
    signingKey: caKey,
    signingAlgorithm: SIGNING_ALGORITHM,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth], false),
      new x509.SubjectAlternativeNameExtension(sans.map((s) => ({ type: s.type, value: s.value })), false),
      caKeyId !== undefined
        ? new x509.AuthorityKeyIdentifierExtension(caKeyId, false)
        : await x509.AuthorityKeyIdentifierExtension.create(caCert.publicKey, false),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return issued(cert, await exportKey(keys.privateKey));
}

/** What an operator wants to know about the first certificate of a PEM text. */
export function describeCertificate(pem: string): CertificateDescription {
  const first = certificateBlocks(pem)[0];
  if (first === undefined) throw new Error('no PEM certificate found');
  const cert = new NodeX509Certificate(first);
  return {
    subject: oneLineName(cert.subject),
    issuer: oneLineName(cert.issuer),
    sans: subjectAltNames(cert.subjectAltName),
    serialHex: normalizeSerial(cert.serialNumber),
    notBefore: new Date(cert.validFrom),
    notAfter: new Date(cert.validTo),
    fingerprintSha256: cert.fingerprint256,
  };
}

/** True when less than `fraction` of the lifetime is left (or the certificate is not valid yet). */
export function needsRenewal(notBefore: Date, notAfter: Date, now: Date, fraction = 1 / 3): boolean {
  const lifetime = notAfter.getTime() - notBefore.getTime();
  const left = notAfter.getTime() - now.getTime();
  if (now.getTime() < notBefore.getTime()) return true;
  return left < lifetime * fraction;
}

/** 16 random bytes, first byte 0x01..0x7f: positive, and exactly 16 bytes in DER (>120 random bits). */
export function randomSerialHex(): string {
  const bytes = getRandomValues(new Uint8Array(16));
  bytes[0] = (bytes[0]! & 0x7f) || 0x01;
  return Buffer.from(bytes).toString('hex');
}

/** Lower-case hex without leading zero bytes, whoever printed it. */
export function normalizeSerial(hex: string): string {
  const h = hex.toLowerCase().replace(/[^0-9a-f]/g, '');
  const stripped = h.replace(/^(00)+/, '');
  return stripped === '' ? '00' : stripped;
}

function validity(now: Date, validityDays: number): { notBefore: Date; notAfter: Date } {
  if (!(validityDays > 0)) throw new Error(`validityDays must be positive, got ${validityDays}`);
  // X.509 times have one-second precision: truncate so the returned dates equal the encoded ones.
  const t = Math.floor(now.getTime() / 1000) * 1000;
  return { notBefore: new Date(t - CLOCK_SKEW_MS), notAfter: new Date(t + validityDays * DAY_MS) };
}

function nameOf(commonName: string): x509.JsonName {
  if (commonName.trim() === '') throw new Error('a certificate needs a non-empty common name');
  return [{ CN: [commonName] }];
}

async function generateKeys(): Promise<webcrypto.CryptoKeyPair> {
  return (await crypto.subtle.generateKey(KEY_ALGORITHM, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
}

async function exportKey(key: webcrypto.CryptoKey): Promise<string> {
  return x509.PemConverter.encode(await crypto.subtle.exportKey('pkcs8', key), 'PRIVATE KEY') + '\n';
}

async function importKey(pem: string): Promise<webcrypto.CryptoKey> {
  let der: ArrayBuffer;
  try {
    const blocks = x509.PemConverter.decodeWithHeaders(pem).filter((b) => b.type === 'PRIVATE KEY');
    if (blocks[0] === undefined) throw new Error('no "PRIVATE KEY" (PKCS#8) block');
    der = blocks[0].rawData;
  } catch (err) {
    throw new Error(`the CA private key is not a PKCS#8 PEM key: ${(err as Error).message}`);
  }
  try {
    return await crypto.subtle.importKey('pkcs8', der, KEY_ALGORITHM, false, ['sign']);
  } catch (err) {
    throw new Error(`the CA private key is not an ECDSA P-256 key: ${(err as Error).message}`);
  }
}

function parseCertificate(pem: string, what: string): x509.X509Certificate {
  try {
    return new x509.X509Certificate(pem);
  } catch (err) {
    throw new Error(`the ${what} is not a PEM certificate: ${(err as Error).message}`);
  }
}

function issued(cert: x509.X509Certificate, keyPem: string): IssuedCertificate {
  return {
    certPem: cert.toString('pem') + '\n',
    keyPem,
    serialHex: normalizeSerial(cert.serialNumber),
    notBefore: cert.notBefore,
    notAfter: cert.notAfter,
  };
}

function oneLineName(name: string): string {
  return name.split('\n').filter(Boolean).join(', ');
}

/** Node prints "DNS:a, IP Address:1.2.3.4" (values with special characters JSON-quoted). */
function subjectAltNames(text: string | undefined): string[] {
  if (text === undefined || text === '') return [];
  const out: string[] = [];
  const entry = /(DNS|IP Address):("(?:[^"\\]|\\.)*"|[^,]*)(?:, |$)/g;
  for (const m of text.matchAll(entry)) {
    const raw = m[2] as string;
    const value = raw.startsWith('"') ? (JSON.parse(raw) as string) : raw;
    out.push(m[1] === 'IP Address' ? parseSan(value).value : value);
  }
  return out;
}
