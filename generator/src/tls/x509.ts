// The one place that loads @peculiar/x509: it needs reflect-metadata first and a WebCrypto
// provider. Every TLS module imports `x509` from here, never from the package directly.

import 'reflect-metadata';
import { webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';

/** Node's WebCrypto; the provider x509 signs and hashes with. */
export const crypto = webcrypto;

x509.cryptoProvider.set(crypto);

export { x509 };
