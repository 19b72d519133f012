// Where TLS material lives in the state dir. Pure.

import { join } from 'node:path';

export interface TlsPaths {
  /** `<stateDir>/tls`, mode 0700. */
  readonly dir: string;
  /** The private CA's certificate (auto mode): what clients trust (`sslrootcert`). */
  readonly caCert: string;
  /** The private CA's key, PKCS#8 PEM, mode 0600. */
  readonly caKey: string;
  /** Server certificate chain then its key, the file HAProxy's `crt` loads; mode 0600. */
  readonly serverPem: string;
}

export function tlsPaths(stateDir: string): TlsPaths {
  const dir = join(stateDir, 'tls');
  return {
    dir,
    caCert: join(dir, 'ca.crt'),
    caKey: join(dir, 'ca.key'),
    serverPem: join(dir, 'server.pem'),
  };
}
