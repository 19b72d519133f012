// TLS material in the state dir: the auto mode (a private CA kept across restarts and a server
// certificate it issues and renews) and the provided mode (an operator's certificate and key).
// The only TLS module that touches the file system.

import { readFile } from 'node:fs/promises';
import type { Logger } from 'pino';
import { ConfigError } from '../errors.js';
import { assembleServerPem, parseCertificates, parsePrivateKey, reissueReason } from './bundle.js';
import { createCa, describeCertificate, issueServerCertificate, type CertificateAuthority, type CertificateDescription } from './certificates.js';
import { joinPem } from './pem.js';
import { ensurePrivateDir, readIfExists, writePrivateFile } from './private-file.js';
import { parseSans } from './sans.js';
import { tlsPaths } from './paths.js';

export type TlsLog = Pick<Logger, 'info' | 'warn' | 'error'>;

export const DEFAULT_CA_VALIDITY_DAYS = 3650;
export const DEFAULT_SERVER_VALIDITY_DAYS = 90;
export const DEFAULT_CA_COMMON_NAME = 'pgroute local CA';

export interface AutoTlsOptions {
  readonly stateDir: string;
  /** DNS names and IP addresses clients connect to (`host=` in their connection string). */
  readonly sans: readonly string[];
  readonly log: TlsLog;
  /** The clock; defaults to now (tests inject it). */
  readonly now?: Date;
  readonly caValidityDays?: number;
  readonly serverValidityDays?: number;
  readonly caCommonName?: string;
  /** Renew when less than this fraction of the server certificate's lifetime is left (default 1/3). */
  readonly renewFraction?: number;
}

export interface AutoTlsResult {
  /** What HAProxy's `crt` must name (absolute when stateDir is). */
  readonly serverPemPath: string;
  /** The CA certificate clients trust (`sslrootcert`). */
  readonly caPem: string;
  /** True when server.pem was (re)issued by this call. */
  readonly renewed: boolean;
  /** Why it was (re)issued, when it was. */
  readonly reason?: string;
  readonly caCreated: boolean;
  readonly serialHex: string;
  readonly notAfter: Date;
}

const locks = new Map<string, Promise<unknown>>();

/**
 * Makes sure `<stateDir>/tls` holds a CA (created once, kept across restarts; replaced only once
 * expired) and a server certificate it issued for exactly `sans`, with more than the renewal
 * fraction of its lifetime left. Calls on one state dir are serialized within this process; run
 * one pgroute per state dir.
 */
export function ensureAutoTls(opts: AutoTlsOptions): Promise<AutoTlsResult> {
  const dir = tlsPaths(opts.stateDir).dir;
  const previous = locks.get(dir) ?? Promise.resolve();
  const run = previous.catch(() => undefined).then(() => ensureAutoTlsNow(opts));
  locks.set(dir, run);
  void run.finally(() => {
    if (locks.get(dir) === run) locks.delete(dir);
  }).catch(() => undefined);
  return run;
}

async function ensureAutoTlsNow(opts: AutoTlsOptions): Promise<AutoTlsResult> {
  const now = opts.now ?? new Date();
  const sans = parseSans(opts.sans).map((s) => s.value);
  const paths = tlsPaths(opts.stateDir);
  await ensurePrivateDir(paths.dir);

  const { ca, created: caCreated } = await loadOrCreateCa(opts, now);
  const current = await readIfExists(paths.serverPem);
  const reason =
    caCreated ? 'new CA'
    : current === undefined ? 'missing'
    : reissueReason({ serverPem: current, caCertPem: ca.certPem, sans, now, ...(opts.renewFraction === undefined ? {} : { renewFraction: opts.renewFraction }) });

  if (reason === undefined) {
    const info = describeCertificate(current!);
    return { serverPemPath: paths.serverPem, caPem: ca.certPem, renewed: false, caCreated, serialHex: info.serialHex, notAfter: info.notAfter };
  }
  const server = await issueServerCertificate({
    ca,
    sans,
    commonName: serverCommonName(sans),
    validityDays: opts.serverValidityDays ?? DEFAULT_SERVER_VALIDITY_DAYS,
    now,
  });
  await writePrivateFile(paths.serverPem, joinPem([server.certPem, server.keyPem]));
  opts.log.info({ file: paths.serverPem, reason, serial: server.serialHex, sans, notAfter: server.notAfter.toISOString() }, 'issued the TLS server certificate');
  return { serverPemPath: paths.serverPem, caPem: ca.certPem, renewed: true, reason, caCreated, serialHex: server.serialHex, notAfter: server.notAfter };
}

async function loadOrCreateCa(opts: AutoTlsOptions, now: Date): Promise<{ ca: CertificateAuthority; created: boolean }> {
  const paths = tlsPaths(opts.stateDir);
  const [certPem, keyPem] = await Promise.all([readIfExists(paths.caCert), readIfExists(paths.caKey)]);
  if (certPem !== undefined && keyPem === undefined) {
    throw new ConfigError(
      `${paths.caCert} exists but its key ${paths.caKey} is missing: restore the key, or remove ${paths.caCert} to create a new CA (clients must then trust the new one)`,
    );
  }
  if (certPem !== undefined && keyPem !== undefined) {
    const cert = parseCertificates(certPem, paths.caCert)[0]!;
    const key = parsePrivateKey(keyPem, paths.caKey);
    if (!cert.checkPrivateKey(key)) throw new ConfigError(`the key ${paths.caKey} does not match the CA certificate ${paths.caCert}`);
    if (new Date(cert.validTo).getTime() > now.getTime()) return { ca: { certPem, keyPem }, created: false };
    opts.log.warn({ file: paths.caCert, expired: new Date(cert.validTo).toISOString() }, 'the TLS CA expired; creating a new one (clients must trust the new ca.crt)');
  }
  // A key without a certificate is an interrupted creation (the key is written first): start over.
  const ca = await createCa({
    commonName: opts.caCommonName ?? DEFAULT_CA_COMMON_NAME,
    validityDays: opts.caValidityDays ?? DEFAULT_CA_VALIDITY_DAYS,
    now,
  });
  await writePrivateFile(paths.caKey, ca.keyPem, 0o600);
  await writePrivateFile(paths.caCert, ca.certPem, 0o644);
  opts.log.info({ file: paths.caCert, serial: ca.serialHex, notAfter: ca.notAfter.toISOString() }, 'created the TLS CA');
  return { ca: { certPem: ca.certPem, keyPem: ca.keyPem }, created: true };
}

/** The first DNS name (or IP) when it fits the 64-character CN limit; clients check the SANs anyway. */
function serverCommonName(sans: readonly string[]): string {
  const first = sans[0];
  return first !== undefined && first.length <= 64 ? first : 'pgroute';
}

export interface ProvidedTlsOptions {
  readonly stateDir: string;
  /** PEM: the server certificate, optionally followed by its chain (and its key). */
  readonly certPath: string;
  /** PEM private key; defaults to certPath (a combined file). */
  readonly keyPath?: string;
  readonly log?: TlsLog;
  readonly now?: Date;
}

export interface ProvidedTlsResult {
  readonly serverPemPath: string;
  /** True when server.pem changed. */
  readonly changed: boolean;
  readonly certificate: CertificateDescription;
}

/**
 * Checks an operator's certificate and key (they parse, and the key is the certificate's) and
 * writes them as the server.pem HAProxy loads: the matching certificate first, the chain, the key.
 * Errors are ConfigErrors naming the file.
 */
export async function useProvidedTls(opts: ProvidedTlsOptions): Promise<ProvidedTlsResult> {
  const keyPath = opts.keyPath ?? opts.certPath;
  const certText = await readOperatorFile(opts.certPath, 'certificate');
  const keyText = keyPath === opts.certPath ? certText : await readOperatorFile(keyPath, 'private key');
  const certs = parseCertificates(certText, opts.certPath);
  const key = parsePrivateKey(keyText, keyPath);
  const bundle = assembleServerPem(certs, key, opts.certPath, keyPath);
  const paths = tlsPaths(opts.stateDir);
  await ensurePrivateDir(paths.dir);
  const changed = await writePrivateFile(paths.serverPem, bundle.pem);
  const certificate = describeCertificate(bundle.pem);
  const now = opts.now ?? new Date();
  if (certificate.notAfter.getTime() <= now.getTime()) {
    opts.log?.warn({ file: opts.certPath, notAfter: certificate.notAfter.toISOString() }, 'the TLS certificate has expired; clients will refuse it');
  } else if (certificate.notBefore.getTime() > now.getTime()) {
    opts.log?.warn({ file: opts.certPath, notBefore: certificate.notBefore.toISOString() }, 'the TLS certificate is not valid yet');
  }
  return { serverPemPath: paths.serverPem, changed, certificate };
}

async function readOperatorFile(path: string, what: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    throw new ConfigError(`cannot read the TLS ${what} file ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

/** The CA certificate of the auto mode, or undefined when there is none yet. */
export async function readCaCertificate(stateDir: string): Promise<string | undefined> {
  return readIfExists(tlsPaths(stateDir).caCert);
}

/** The server.pem HAProxy loads, or undefined when there is none yet. */
export async function readServerPem(stateDir: string): Promise<string | undefined> {
  return readIfExists(tlsPaths(stateDir).serverPem);
}
