// TLS for the public port: the certificate HAProxy serves (made here with --tls auto, or given with
// --tls-cert/--tls-key) and, in auto mode, its renewal and hot swap through the runtime API. With
// --tls-secret the auto mode's CA and certificate live in a Kubernetes Secret all replicas share.

import { readFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import type { KubeConfig } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import {
  ConfigError,
  loadCertificateStore as certificateStore,
  loadSecretStore as secretStore,
  parseSecretRef,
  statePaths,
  parseSan,
  swapCertificate,
  watchRenewal,
  type AutoTlsResult,
  type RenewalWatch,
  type SecretApi,
  type Settings,
} from '../generator/src/index.js';
import { flagLabel, parseDurationMs } from './flag-values.js';

// The X.509 library and the Kubernetes client are loaded only when TLS (or the Secret) is used
// (through the index's loaders): together they are most of the CLI's start-up time, and most runs
// need neither.

export interface TlsFlags {
  tls: 'off' | 'auto';
  tlsCert?: string;
  tlsKey?: string;
  tlsSan?: string[] | string;
  tlsMinVersion: 'TLSv1.2' | 'TLSv1.3';
  /** `<namespace>/<name>`: the auto mode keeps its CA and certificate in this Kubernetes Secret. */
  tlsSecret?: string;
  /** How often a provided --tls-cert/--tls-key is read again (default 30s). */
  tlsWatchInterval?: string;
}

/** Test seams. */
export interface TlsDeps {
  /** Default: loadFromDefault() (in a pod: its service account). */
  readonly kubeConfig?: KubeConfig;
}

/**
 * The auto mode's one check-and-write, used at start and by every renewal check: with
 * --tls-secret the Secret is the source of truth (ensureSecretTls), else the state dir
 * (ensureAutoTls). Both write the same files in the state dir.
 */
export function autoTls(flags: TlsFlags, stateDir: string, log: Logger, deps: TlsDeps = {}): () => Promise<AutoTlsResult> {
  if (flags.tlsSecret === undefined || flags.tlsSecret === '') return async () => (await certificateStore()).ensureAutoTls({ stateDir, sans: sansOf(flags), log });
  const secret = parseSecretRef(flags.tlsSecret);
  const given = sansGiven(flags).length > 0;
  if (!given) {
    throw new ConfigError("--tls-secret needs --tls-san: every replica serves the Secret's one certificate, so all must ask for the same names (the default names include each host's own name)");
  }
  let api: SecretApi | undefined;
  return async () => {
    const { ensureSecretTls, secretApi } = await secretStore();
    api ??= secretApi(deps.kubeConfig);
    return ensureSecretTls({ stateDir, sans: sansOf(flags), log, secret, api });
  };
}

/** How often provided files are read again: checked whichever mode is on (a typo is refused before it is used). */
function watchIntervalMs(flags: TlsFlags): number {
  return parseDurationMs(flagLabel('--tls-watch-interval', 'PGROUTE_TLS_WATCH_INTERVAL'), flags.tlsWatchInterval ?? '30s', 100);
}

/** Every --tls-san a certificate can hold, or one line naming the flag and the value. */
function checkSans(flags: TlsFlags): void {
  for (const san of sansGiven(flags)) {
    try {
      parseSan(san);
    } catch (err) {
      throw new ConfigError(`${flagLabel('--tls-san', 'PGROUTE_TLS_SANS')}: ${(err as Error).message}`);
    }
  }
}

/** --tls-san as given: repeated, comma- or space-separated, or PGROUTE_TLS_SANS; the same reading for each. */
function sansGiven(flags: TlsFlags): string[] {
  const raw = typeof flags.tlsSan === 'string' ? [flags.tlsSan] : (flags.tlsSan ?? []);
  return raw.flatMap((s) => s.split(/[\s,]+/)).filter(Boolean);
}

export function sansOf(flags: TlsFlags): string[] {
  const sans = sansGiven(flags);
  return sans.length > 0 ? sans : ['localhost', '127.0.0.1', '::1', hostname()];
}

/**
 * The TLS flags and variables checked without touching a file: every value, whichever mode is on,
 * and the two modes' flags never together (one of them would be dropped without a word). prepareTls
 * starts with it; `plan`, which prepares nothing, runs it alone.
 */
export function checkTlsFlags(flags: TlsFlags): void {
  watchIntervalMs(flags);
  checkSans(flags);
  const secretGiven = flags.tlsSecret !== undefined && flags.tlsSecret !== '';
  if (secretGiven) parseSecretRef(flags.tlsSecret as string);
  if (secretGiven && flags.tlsCert !== undefined) throw new ConfigError('--tls-secret keeps the auto mode\'s certificate; it cannot go with --tls-cert');
  if (flags.tlsCert !== undefined && flags.tlsCert !== '' && flags.tls === 'auto') throw new ConfigError("--tls auto (PGROUTE_TLS) makes pgroute's own certificate; it cannot go with --tls-cert, which serves yours: give one of them");
  const sansWithout = (what: string): ConfigError => new ConfigError(`--tls-san (PGROUTE_TLS_SANS) names the auto mode's certificate: it needs --tls auto${what}`);
  const sans = sansGiven(flags).length > 0;
  if (flags.tlsCert !== undefined) {
    if (sans) throw sansWithout(', and cannot go with --tls-cert (the names are those of your certificate)');
    return;
  }
  if (flags.tlsKey !== undefined) throw new ConfigError('--tls-key needs --tls-cert');
  if (flags.tls === 'off') {
    if (secretGiven) throw new ConfigError('--tls-secret needs --tls auto');
    if (sans) throw sansWithout('');
  }
}

/**
 * Makes sure the certificate exists and returns settings that serve it; unchanged when TLS is off.
 * It checks the flags itself; the commands check them first too, before the state dir is made.
 */
export async function prepareTls(flags: TlsFlags, settings: Settings, log: Logger, deps: TlsDeps = {}): Promise<Settings> {
  checkTlsFlags(flags);
  if (flags.tlsCert !== undefined) {
    const r = await (await certificateStore()).useProvidedTls({ stateDir: settings.stateDir, certPath: flags.tlsCert, ...(flags.tlsKey ? { keyPath: flags.tlsKey } : {}), log });
    log.info({ subject: r.certificate.subject, notAfter: r.certificate.notAfter }, 'TLS: serving the given certificate');
    return { ...settings, tls: { crtPath: r.serverPemPath, minVersion: flags.tlsMinVersion } };
  }
  if (flags.tls === 'off') return settings;
  const secretGiven = flags.tlsSecret !== undefined && flags.tlsSecret !== '';
  const r = await autoTls(flags, settings.stateDir, log, deps)();
  log.info({ serial: r.serialHex, notAfter: r.notAfter, caCreated: r.caCreated, ...(secretGiven ? { secret: flags.tlsSecret } : {}) }, 'TLS: serving pgroute\'s own certificate (pgroute cert ca prints the CA for clients)');
  return { ...settings, tls: { crtPath: r.serverPemPath, minVersion: flags.tlsMinVersion } };
}

/**
 * Keeps HAProxy's certificate current without a reload. Auto mode: renews it before it expires.
 * Provided files (--tls-cert/--tls-key): reads them again every --tls-watch-interval, and swaps in
 * a changed pair once it parses and the key matches (a half-written rotation is refused, logged and
 * tried again; the served certificate stays until then).
 */
export function startRenewal(flags: TlsFlags, settings: Settings, log: Logger, intervalMs = 6 * 3_600_000, deps: TlsDeps = {}): RenewalWatch | undefined {
  const adminSocket = statePaths(settings.stateDir).adminSocket;
  const swap = async (r: { serverPemPath: string }): Promise<void> => swapCertificate(adminSocket, r.serverPemPath, await readFile(r.serverPemPath, 'utf8'));
  if (flags.tlsCert !== undefined) {
    const certPath = flags.tlsCert;
    const keyPath = flags.tlsKey;
    return watchRenewal({
      intervalMs: watchIntervalMs(flags),
      ensure: async () => {
        const r = await (await certificateStore()).useProvidedTls({ stateDir: settings.stateDir, certPath, ...(keyPath ? { keyPath } : {}), log });
        if (r.changed) log.info({ file: certPath, subject: r.certificate.subject, notAfter: r.certificate.notAfter }, 'TLS: the given certificate changed');
        return { ...r, renewed: r.changed };
      },
      swap,
      log,
    });
  }
  if (flags.tls !== 'auto') return undefined;
  return watchRenewal({ intervalMs, ensure: autoTls(flags, settings.stateDir, log, deps), swap, log });
}
