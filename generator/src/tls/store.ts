// TLS material in the state dir: the auto mode (a private CA kept across restarts and a server
// certificate it issues and renews) and the provided mode (an operator's certificate and key).
// The only TLS module that touches the file system.

import { readFile } from 'node:fs/promises';
import type { Logger } from 'pino';
import { ConfigError, readFailure } from '../errors.js';
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

/**
 * The auto mode's material, wherever it is kept (the state dir's files, or a Kubernetes Secret):
 * PEM texts, undefined when absent.
 */
export interface AutoTlsMaterial {
  readonly caCertPem?: string | undefined;
  readonly caKeyPem?: string | undefined;
  /** The server certificate then its key, as HAProxy's `crt` loads it. */
  readonly serverPem?: string | undefined;
}

/** Where each piece of the material comes from, for error messages and logs. */
export interface AutoTlsPlaces {
  readonly caCert: string;
  readonly caKey: string;
  readonly serverPem: string;
}

export type AutoTlsPolicy = Pick<AutoTlsOptions, 'now' | 'renewFraction'> & {
  /** Canonical SANs (parseSans values). */
  readonly sans: readonly string[];
};

/** What must be made: nothing, a server certificate, or a CA and then a server certificate. Pure. */
export interface AutoTlsDecision {
  /** Why a new CA is needed ("missing", "expired …"), when it is. */
  readonly newCa?: string;
  /** The usable CA, when it is kept. */
  readonly ca?: CertificateAuthority;
  /** Why the server certificate must be issued, when it must. */
  readonly reissue?: string;
}

/**
 * The certificate decisions of the auto mode, shared by the state-dir store and the Secret store:
 * keep a CA whose certificate and key match and which has not expired (a certificate without its
 * key is refused: restoring the key is the operator's call; a key without a certificate is an
 * interrupted creation and starts over), and reissue the server certificate when it is missing,
 * damaged, not the CA's, for other names, or due for renewal. Throws a ConfigError naming the place.
 */
export function decideAutoTls(material: AutoTlsMaterial, places: AutoTlsPlaces, policy: AutoTlsPolicy): AutoTlsDecision {
  const now = policy.now ?? new Date();
  const { caCertPem: certPem, caKeyPem: keyPem } = material;
  let newCa = 'missing';
  if (certPem !== undefined && keyPem === undefined) {
    throw new ConfigError(
      `${places.caCert} exists but its key ${places.caKey} is missing: restore the key, or remove ${places.caCert} to create a new CA (clients must then trust the new one)`,
    );
  }
  if (certPem !== undefined && keyPem !== undefined) {
    const cert = parseCertificates(certPem, places.caCert)[0]!;
    const key = parsePrivateKey(keyPem, places.caKey);
    if (!cert.checkPrivateKey(key)) throw new ConfigError(`the key ${places.caKey} does not match the CA certificate ${places.caCert}`);
    const ca = { certPem, keyPem };
    if (new Date(cert.validTo).getTime() > now.getTime()) {
      const reissue =
        material.serverPem === undefined ? 'missing'
        : reissueReason({ serverPem: material.serverPem, caCertPem: certPem, sans: policy.sans, now, ...(policy.renewFraction === undefined ? {} : { renewFraction: policy.renewFraction }) });
      return reissue === undefined ? { ca } : { ca, reissue };
    }
    newCa = `expired ${new Date(cert.validTo).toISOString()}`;
  }
  return { newCa, reissue: 'new CA' };
}

export interface AutoTlsNext {
  /** The complete material to keep and serve. */
  readonly material: Required<{ [K in keyof AutoTlsMaterial]: string }>;
  /** True when anything in it was made by this call. */
  readonly changed: boolean;
  readonly caCreated: boolean;
  /** Why the server certificate was issued, when it was. */
  readonly reason?: string;
  readonly serialHex: string;
  readonly notAfter: Date;
}

/**
 * Applies decideAutoTls: creates the CA and issues the server certificate as decided. No I/O
 * (keys and certificates in memory); logs what it made, naming `places`.
 */
export async function nextAutoTls(material: AutoTlsMaterial, places: AutoTlsPlaces, opts: Omit<AutoTlsOptions, 'stateDir'>): Promise<AutoTlsNext> {
  const now = opts.now ?? new Date();
  const sans = parseSans(opts.sans).map((s) => s.value);
  const decision = decideAutoTls(material, places, { sans, now, ...(opts.renewFraction === undefined ? {} : { renewFraction: opts.renewFraction }) });
  if (decision.reissue === undefined) {
    const info = describeCertificate(material.serverPem!);
    return { material: { caCertPem: decision.ca!.certPem, caKeyPem: decision.ca!.keyPem, serverPem: material.serverPem! }, changed: false, caCreated: false, serialHex: info.serialHex, notAfter: info.notAfter };
  }
  let ca = decision.ca;
  if (ca === undefined) {
    if (decision.newCa !== 'missing') opts.log.warn({ file: places.caCert, expired: decision.newCa }, 'the TLS CA expired; creating a new one (clients must trust the new ca.crt)');
    const made = await createCa({
      commonName: opts.caCommonName ?? DEFAULT_CA_COMMON_NAME,
      validityDays: opts.caValidityDays ?? DEFAULT_CA_VALIDITY_DAYS,
      now,
    });
    opts.log.info({ file: places.caCert, serial: made.serialHex, notAfter: made.notAfter.toISOString() }, 'created the TLS CA');
    ca = { certPem: made.certPem, keyPem: made.keyPem };
  }
  const server = await issueServerCertificate({
    ca,
    sans,
    commonName: serverCommonName(sans),
    validityDays: opts.serverValidityDays ?? DEFAULT_SERVER_VALIDITY_DAYS,
    now,
  });
  const reason = decision.reissue;
  opts.log.info({ file: places.serverPem, reason, serial: server.serialHex, sans, notAfter: server.notAfter.toISOString() }, 'issued the TLS server certificate');
  return {
    material: { caCertPem: ca.certPem, caKeyPem: ca.keyPem, serverPem: joinPem([server.certPem, server.keyPem]) },
    changed: true,
    caCreated: decision.ca === undefined,
    reason,
    serialHex: server.serialHex,
    notAfter: server.notAfter,
  };
}

/** The auto mode's files in `<stateDir>/tls`, as undefined when absent. */
export async function readAutoTlsFiles(stateDir: string): Promise<AutoTlsMaterial> {
  const paths = tlsPaths(stateDir);
  const [caCertPem, caKeyPem, serverPem] = await Promise.all([readIfExists(paths.caCert), readIfExists(paths.caKey), readIfExists(paths.serverPem)]);
  return { caCertPem, caKeyPem, serverPem };
}

/**
 * Writes the material where HAProxy and `pgroute cert` read it: a 0700 directory, ca.key and
 * server.pem 0600, ca.crt 0644; the key first, so an interruption never leaves a CA certificate
 * without its key. Each file atomically, and only when its content differs. Returns whether
 * server.pem changed (what HAProxy must be given).
 */
export async function writeAutoTlsFiles(stateDir: string, material: AutoTlsNext['material']): Promise<boolean> {
  const paths = tlsPaths(stateDir);
  await ensurePrivateDir(paths.dir);
  await writePrivateFile(paths.caKey, material.caKeyPem, 0o600);
  await writePrivateFile(paths.caCert, material.caCertPem, 0o644);
  return writePrivateFile(paths.serverPem, material.serverPem, 0o600);
}

const locks = new Map<string, Promise<unknown>>();

/** Runs `fn` after every earlier call for the same state dir has finished (within this process). */
export function serializedOnStateDir<T>(stateDir: string, fn: () => Promise<T>): Promise<T> {
  const dir = tlsPaths(stateDir).dir;
  const previous = locks.get(dir) ?? Promise.resolve();
  const run = previous.catch(() => undefined).then(fn);
  locks.set(dir, run);
  void run.finally(() => {
    if (locks.get(dir) === run) locks.delete(dir);
  }).catch(() => undefined);
  return run;
}

/**
 * Makes sure `<stateDir>/tls` holds a CA (created once, kept across restarts; replaced only once
 * expired) and a server certificate it issued for exactly `sans`, with more than the renewal
 * fraction of its lifetime left. Calls on one state dir are serialized within this process; run
 * one pgroute per state dir.
 */
export function ensureAutoTls(opts: AutoTlsOptions): Promise<AutoTlsResult> {
  return serializedOnStateDir(opts.stateDir, () => ensureAutoTlsNow(opts));
}

async function ensureAutoTlsNow(opts: AutoTlsOptions): Promise<AutoTlsResult> {
  const paths = tlsPaths(opts.stateDir);
  await ensurePrivateDir(paths.dir);
  const next = await nextAutoTls(await readAutoTlsFiles(opts.stateDir), paths, opts);
  if (next.changed) await writeAutoTlsFiles(opts.stateDir, next.material);
  return {
    serverPemPath: paths.serverPem,
    caPem: next.material.caCertPem,
    renewed: next.changed,
    ...(next.reason === undefined ? {} : { reason: next.reason }),
    caCreated: next.caCreated,
    serialHex: next.serialHex,
    notAfter: next.notAfter,
  };
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
    throw new ConfigError(`cannot read the TLS ${what} file ${path}: ${readFailure(err)}`);
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
