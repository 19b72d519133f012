// Reading certificate/key bundles and deciding whether a server certificate is still good. Pure:
// texts in, verdicts out; file names only appear in error messages.

import { X509Certificate, createPrivateKey, type KeyObject } from 'node:crypto';
import { ConfigError } from '../errors.js';
import { describeCertificate, needsRenewal } from './certificates.js';
import { certificateBlocks, joinPem, privateKeyBlocks } from './pem.js';
import { sameSans } from './sans.js';

/** Every certificate of a PEM text, in order. Throws a ConfigError naming `file`. */
export function parseCertificates(text: string, file: string): X509Certificate[] {
  const blocks = certificateBlocks(text);
  if (blocks.length === 0) throw new ConfigError(`${file} holds no PEM certificate (a "-----BEGIN CERTIFICATE-----" block)`);
  return blocks.map((block, i) => {
    try {
      return new X509Certificate(block);
    } catch (err) {
      throw new ConfigError(`${file}: certificate #${i + 1} cannot be parsed: ${(err as Error).message}`);
    }
  });
}

/** The one private key of a PEM text (PKCS#8, PKCS#1 or SEC1). Throws a ConfigError naming `file`. */
export function parsePrivateKey(text: string, file: string): KeyObject {
  const blocks = privateKeyBlocks(text);
  if (blocks.length === 0) throw new ConfigError(`${file} holds no PEM private key (a "-----BEGIN PRIVATE KEY-----" block)`);
  if (blocks.length > 1) throw new ConfigError(`${file} holds ${blocks.length} private keys; expected one`);
  const block = blocks[0]!;
  if (block.label === 'ENCRYPTED PRIVATE KEY' || /Proc-Type: 4,ENCRYPTED/.test(block.text)) {
    throw new ConfigError(`${file}: the private key is encrypted; HAProxy cannot ask for its passphrase (decrypt it: openssl pkey -in ${file} -out <new file>)`);
  }
  try {
    return createPrivateKey(block.text);
  } catch (err) {
    throw new ConfigError(`${file}: the private key cannot be parsed: ${(err as Error).message}`);
  }
}

export interface ServerBundle {
  /** Leaf certificate, then the rest of the chain, then the key (PKCS#8): what HAProxy's `crt` loads. */
  readonly pem: string;
  readonly leaf: X509Certificate;
}

/**
 * Puts the certificate that matches `key` first (HAProxy takes the first certificate as the
 * server's), the other certificates after it as the chain, and the key last.
 */
export function assembleServerPem(certs: readonly X509Certificate[], key: KeyObject, certFile: string, keyFile: string): ServerBundle {
  const leaf = certs.find((c) => c.checkPrivateKey(key));
  if (leaf === undefined) {
    const first = certs[0];
    const subject = first === undefined ? '' : ` (${first.subject.split('\n').join(', ')})`;
    throw new ConfigError(
      `the private key in ${keyFile} does not match the certificate in ${certFile}${subject}: its public key is not the certificate's`,
    );
  }
  const chain = certs.filter((c) => c !== leaf);
  const keyPem = key.export({ type: 'pkcs8', format: 'pem' }) as string;
  return { pem: joinPem([leaf.toString(), ...chain.map((c) => c.toString()), keyPem]), leaf };
}

export interface ReissueCheck {
  /** The current server.pem text. */
  readonly serverPem: string;
  readonly caCertPem: string;
  readonly sans: readonly string[];
  readonly now: Date;
  readonly renewFraction?: number;
}

/** Why the server certificate must be issued again, or undefined when it is fine as it is. */
export function reissueReason(check: ReissueCheck): string | undefined {
  let leaf: X509Certificate;
  let key: KeyObject;
  try {
    leaf = parseCertificates(check.serverPem, 'server.pem')[0]!;
    key = parsePrivateKey(check.serverPem, 'server.pem');
  } catch (err) {
    return `unreadable (${(err as Error).message})`;
  }
  if (!leaf.checkPrivateKey(key)) return 'its key does not match its certificate';
  const ca = new X509Certificate(check.caCertPem);
  if (!leaf.checkIssued(ca) || !leaf.verify(ca.publicKey)) return 'not issued by the current CA';
  const info = describeCertificate(check.serverPem);
  if (!sameSans(info.sans, check.sans)) return `names changed (${info.sans.join(', ')} → ${check.sans.join(', ')})`;
  if (needsRenewal(info.notBefore, info.notAfter, check.now, check.renewFraction)) return `renewal due (expires ${info.notAfter.toISOString()})`;
  return undefined;
}
