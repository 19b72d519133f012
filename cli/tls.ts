// TLS for the public port: the certificate HAProxy serves (made here with --tls auto, or given with
// --tls-cert/--tls-key) and, in auto mode, its renewal and hot swap through the runtime API.

import { readFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import type { Logger } from 'pino';
import { ConfigError } from '../generator/src/errors.js';
import { statePaths, type Settings } from '../generator/src/settings.js';
import { swapCertificate, watchRenewal, type RenewalWatch } from '../generator/src/tls/hot-swap.js';
import { ensureAutoTls, useProvidedTls } from '../generator/src/tls/store.js';

export interface TlsFlags {
  tls: 'off' | 'auto';
  tlsCert?: string;
  tlsKey?: string;
  tlsSan?: string[] | string;
  tlsMinVersion: 'TLSv1.2' | 'TLSv1.3';
}

export function sansOf(flags: TlsFlags): string[] {
  const given = typeof flags.tlsSan === 'string' ? flags.tlsSan.split(/[\s,]+/) : (flags.tlsSan ?? []);
  const sans = given.filter(Boolean);
  return sans.length > 0 ? sans : ['localhost', '127.0.0.1', '::1', hostname()];
}

/** Makes sure the certificate exists and returns settings that serve it; unchanged when TLS is off. */
export async function prepareTls(flags: TlsFlags, settings: Settings, log: Logger): Promise<Settings> {
  if (flags.tlsCert !== undefined) {
    const r = await useProvidedTls({ stateDir: settings.stateDir, certPath: flags.tlsCert, ...(flags.tlsKey ? { keyPath: flags.tlsKey } : {}), log });
    log.info({ subject: r.certificate.subject, notAfter: r.certificate.notAfter }, 'TLS: serving the given certificate');
    return { ...settings, tls: { crtPath: r.serverPemPath, minVersion: flags.tlsMinVersion } };
  }
  if (flags.tlsKey !== undefined) throw new ConfigError('--tls-key needs --tls-cert');
  if (flags.tls === 'off') return settings;
  const r = await ensureAutoTls({ stateDir: settings.stateDir, sans: sansOf(flags), log });
  log.info({ serial: r.serialHex, notAfter: r.notAfter, caCreated: r.caCreated }, 'TLS: serving pgroute\'s own certificate (pgroute cert ca prints the CA for clients)');
  return { ...settings, tls: { crtPath: r.serverPemPath, minVersion: flags.tlsMinVersion } };
}

/** In auto mode, renews the server certificate before it expires and swaps it in without a reload. */
export function startRenewal(flags: TlsFlags, settings: Settings, log: Logger, intervalMs = 6 * 3_600_000): RenewalWatch | undefined {
  if (flags.tls !== 'auto' || flags.tlsCert !== undefined) return undefined;
  const adminSocket = statePaths(settings.stateDir).adminSocket;
  return watchRenewal({
    intervalMs,
    ensure: () => ensureAutoTls({ stateDir: settings.stateDir, sans: sansOf(flags), log }),
    swap: async (r) => swapCertificate(adminSocket, r.serverPemPath, await readFile(r.serverPemPath, 'utf8')),
    log,
  });
}
