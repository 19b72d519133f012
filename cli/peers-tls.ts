// --peers-tls-cert and --peers-tls-ca: mutual TLS between the replicas' HAProxy peers listeners
// (docs/replicas.md). Both or neither; each a readable PEM file of the right kind, checked here so
// that a mistake is one line naming the flag, not HAProxy's configuration check.

import { readFileSync } from 'node:fs';
import { quoteValue } from '../agent/src/index.js';
import { certificateBlocks, ConfigError, privateKeyBlocks, type Settings } from '../generator/src/index.js';
import { parseConfigFilePath, refuse } from './flag-values.js';

export interface PeersTlsFlags {
  peersTlsCert?: string;
  peersTlsCa?: string;
}

/** What each file must hold. HAProxy loads no encrypted key (it would ask for a pass phrase). */
const KINDS = {
  cert: {
    rule: 'a readable PEM file holding the certificate (chain first) and its unencrypted private key, or the key alone in <file>.key beside it',
    holds: (text: string, path: string) => certificateBlocks(text).length > 0 && (hasKey(text) || hasKey(readOr(`${path}.key`))),
  },
  ca: {
    rule: "a readable PEM file holding the CA certificate(s) that signed every replica's --peers-tls-cert",
    holds: (text: string) => certificateBlocks(text).length > 0,
  },
} as const;

function hasKey(text: string): boolean {
  return privateKeyBlocks(text).some((k) => k.label !== 'ENCRYPTED PRIVATE KEY');
}

/** HAProxy's own convention (ssl-load-extra-files, on by default): a certificate file without a key
 * takes it from <file>.key, as a Kubernetes Secret's tls.crt and tls.key are mounted side by side. */
function readOr(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

function pemFile(label: string, value: string, kind: keyof typeof KINDS): string {
  const path = parseConfigFilePath(label, value);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError(`${label} must be ${KINDS[kind].rule}, got ${quoteValue(value, 80)} (${(err as NodeJS.ErrnoException).code ?? 'unreadable'})`);
  }
  if (!KINDS[kind].holds(text, path)) refuse(label, KINDS[kind].rule, value);
  return path;
}

export function peersTlsFromFlags(f: PeersTlsFlags, label: (flag: string) => string): Settings['peersTls'] {
  if (f.peersTlsCert === undefined && f.peersTlsCa === undefined) return undefined;
  if (f.peersTlsCert === undefined || f.peersTlsCa === undefined) {
    throw new ConfigError(`${label('--peers-tls-cert')} and ${label('--peers-tls-ca')} go together: each replica presents its certificate and accepts only peers the CA signed`);
  }
  return { cert: pemFile(label('--peers-tls-cert'), f.peersTlsCert, 'cert'), ca: pemFile(label('--peers-tls-ca'), f.peersTlsCa, 'ca') };
}
