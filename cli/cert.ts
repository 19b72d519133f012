// `pgroute cert`: what a client needs to trust the public port (the CA), and what the port serves.

import { Option, type Command } from 'commander';
import { resolve } from 'node:path';
import type { Logger } from 'pino';
import { ConfigError, loadCertificates as certificates, loadCertificateStore as certificateStore, tlsPaths, type CertificateDescription } from '../generator/src/index.js';

// The certificate modules are loaded when a cert command runs, not when the CLI starts: the X.509
// library is slow to load.

const DAY_MS = 86_400_000;

interface StateDirFlags {
  stateDir: string;
}

function stateDirOption(): Option {
  return new Option('--state-dir <dir>', 'where rendered files, sockets and tls/ live').default('.pgroute').env('PGROUTE_STATE_DIR');
}

export function registerCertCommands(program: Command, log: Logger): Command {
  const cert = program.command('cert').description('the TLS certificates of the public port');

  cert
    .command('ca')
    .description('print the CA certificate (PEM) clients trust, e.g. psql "sslmode=verify-full sslrootcert=ca.pem"')
    .addOption(stateDirOption())
    .action(async (flags: StateDirFlags) => {
      process.stdout.write(await caCertificateText(flags.stateDir));
      if (process.stderr.isTTY) {
        process.stderr.write('# save it as ca.pem, then: psql "host=<name in the certificate> sslmode=verify-full sslrootcert=ca.pem ..."\n');
      }
    });

  cert
    .command('show')
    .description('show the server certificate the public port serves: subject, issuer, names, serial, validity')
    .addOption(stateDirOption())
    .option('--json', 'print JSON', false)
    .action(async (flags: StateDirFlags & { json: boolean }) => {
      const now = new Date();
      const { path, info } = await serverCertificate(flags.stateDir);
      if (info.notAfter.getTime() <= now.getTime()) log.warn({ file: path, notAfter: info.notAfter.toISOString() }, 'the TLS server certificate has expired');
      process.stdout.write(flags.json ? `${JSON.stringify(certificateJson(path, info, now), null, 2)}\n` : formatCertificate(path, info, now));
    });

  return cert;
}

/** The auto mode's CA certificate (PEM), or a ConfigError saying there is none. */
export async function caCertificateText(stateDir: string): Promise<string> {
  const pem = await (await certificateStore()).readCaCertificate(resolve(stateDir));
  if (pem === undefined) {
    throw new ConfigError(`no CA certificate at ${tlsPaths(resolve(stateDir)).caCert}: pgroute creates it when it serves TLS with its own CA (or check --state-dir)`);
  }
  return pem;
}

export async function serverCertificate(stateDir: string): Promise<{ path: string; info: CertificateDescription }> {
  const path = tlsPaths(resolve(stateDir)).serverPem;
  const pem = await (await certificateStore()).readServerPem(resolve(stateDir));
  const { describeCertificate } = await certificates();
  if (pem === undefined) throw new ConfigError(`no TLS server certificate at ${path} (is TLS enabled? check --state-dir)`);
  try {
    return { path, info: describeCertificate(pem) };
  } catch (err) {
    throw new ConfigError(`${path}: ${(err as Error).message}`);
  }
}

/** Whole days left (negative once expired). */
export function daysLeft(notAfter: Date, now: Date): number {
  return Math.floor((notAfter.getTime() - now.getTime()) / DAY_MS);
}

export function certificateJson(path: string, info: CertificateDescription, now: Date): Record<string, unknown> {
  return {
    file: path,
    subject: info.subject,
    issuer: info.issuer,
    sans: info.sans,
    serial: info.serialHex,
    notBefore: info.notBefore.toISOString(),
    notAfter: info.notAfter.toISOString(),
    daysLeft: daysLeft(info.notAfter, now),
    fingerprintSha256: info.fingerprintSha256,
  };
}

export function formatCertificate(path: string, info: CertificateDescription, now: Date): string {
  const left = daysLeft(info.notAfter, now);
  const status = left < 0 ? `expired ${-left} day${-left === 1 ? '' : 's'} ago` : `${left} day${left === 1 ? '' : 's'} left`;
  const rows: [string, string][] = [
    ['file', path],
    ['subject', info.subject],
    ['issuer', info.issuer],
    ['names', info.sans.join(', ') || '(none)'],
    ['serial', info.serialHex],
    ['not before', info.notBefore.toISOString()],
    ['not after', `${info.notAfter.toISOString()} (${status})`],
    ['sha256', info.fingerprintSha256],
  ];
  return rows.map(([k, v]) => `${k.padEnd(11)} ${v}\n`).join('');
}
