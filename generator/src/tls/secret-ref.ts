// `<namespace>/<name>` of the Kubernetes Secret that --tls-secret names. Apart from the Secret
// store so that checking the flag does not load the Kubernetes client.

import { ConfigError } from '../errors.js';
import { quote } from '../validate.js';

export interface SecretRef {
  readonly namespace: string;
  readonly name: string;
}

const NAMESPACE = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/** Parses `<namespace>/<name>` (--tls-secret). Throws a ConfigError. */
export function parseSecretRef(text: string): SecretRef {
  const parts = text.trim().split('/');
  const [namespace, name] = parts;
  if (parts.length !== 2 || namespace === undefined || name === undefined || !NAMESPACE.test(namespace) || !SUBDOMAIN.test(name) || name.length > 253) {
    throw new ConfigError(`--tls-secret (PGROUTE_TLS_SECRET) must be <namespace>/<name> of a Kubernetes Secret (lowercase letters, digits, '-' and '.'), got ${quote(text)}`);
  }
  return { namespace, name };
}

