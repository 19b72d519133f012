// The auto mode with its CA and server certificate kept in one Kubernetes Secret, so every replica
// serves the same certificate from the same CA. The Secret is the source of truth; the state dir
// gets a copy in the files HAProxy and `pgroute cert` read (writeAutoTlsFiles, as ensureAutoTls).
//
// The Secret (type Opaque, or kubernetes.io/tls when someone created it so; other keys are kept):
//   ca.crt   the CA certificate (what clients trust)
//   ca.key   the CA's private key (PKCS#8)
//   tls.crt  the server certificate
//   tls.key  its private key (PKCS#8)
// A missing Secret, or one with none of these keys (a Secret pre-created empty so that RBAC needs
// no `create`), is "absent": this makes the CA and certificate and CREATEs it (or REPLACEs the empty
// one). Every write is optimistic: a REPLACE carries the resourceVersion that was read, and a
// 409 Conflict (or AlreadyExists) means another replica wrote first: read again and use theirs.
// Effects: readNamespacedSecret, createNamespacedSecret, replaceNamespacedSecret; the decisions are
// decideAutoTls / nextAutoTls from store.ts, shared with the state-dir mode.

import { CoreV1Api, type KubeConfig, type V1Secret } from '@kubernetes/client-node';
import { ConfigError } from '../errors.js';
import { defaultKubeConfig } from '../sources/kubernetes.js';
import { tlsPaths } from './paths.js';
import type { SecretRef } from './secret-ref.js';
import { certificateBlocks, joinPem, privateKeyBlocks } from './pem.js';
import { nextAutoTls, serializedOnStateDir, writeAutoTlsFiles, type AutoTlsMaterial, type AutoTlsNext, type AutoTlsOptions, type AutoTlsPlaces, type AutoTlsResult } from './store.js';

/** The Secret's keys. */
export const SECRET_KEYS = { caCert: 'ca.crt', caKey: 'ca.key', cert: 'tls.crt', key: 'tls.key' } as const;

/** The three CoreV1Api calls this store makes (RBAC: get, create, update on secrets). */
export type SecretApi = Pick<CoreV1Api, 'readNamespacedSecret' | 'createNamespacedSecret' | 'replaceNamespacedSecret'>;

export { parseSecretRef, type SecretRef } from './secret-ref.js';

/** A CoreV1Api client from `kubeConfig`, default loadFromDefault() (in a pod: its service account). */
export function secretApi(kubeConfig?: KubeConfig): SecretApi {
  const kc = kubeConfig ?? defaultKubeConfig();
  return kc.makeApiClient(CoreV1Api);
}

export interface SecretTlsOptions extends AutoTlsOptions {
  readonly secret: SecretRef;
  readonly api: SecretApi;
  /** Conflicts (409) tolerated in one call before giving up (default 4). */
  readonly maxConflicts?: number;
}

export interface SecretTlsResult extends AutoTlsResult {
  readonly secret: SecretRef & {
    /** The resourceVersion of the Secret now served. */
    readonly resourceVersion: string;
    /** read: used as it was; created / replaced: this call wrote it. */
    readonly action: 'read' | 'created' | 'replaced';
  };
  /** 409s met (another replica wrote first) before this result. */
  readonly conflicts: number;
}

export class SecretStoreError extends Error {
  override readonly name = 'SecretStoreError';
  constructor(message: string, readonly status: number | undefined, options?: ErrorOptions) {
    super(message, options);
  }
}

// ---- pure --------------------------------------------------------------------------------------

export function secretPlaces(ref: SecretRef): AutoTlsPlaces {
  const where = `Secret ${ref.namespace}/${ref.name}`;
  return { caCert: `${where} key ${SECRET_KEYS.caCert}`, caKey: `${where} key ${SECRET_KEYS.caKey}`, serverPem: `${where} keys ${SECRET_KEYS.cert}/${SECRET_KEYS.key}` };
}

/**
 * The material a Secret holds: undefined (absent) for no Secret or one without any of the four
 * keys. A Secret with a certificate but neither CA key is someone else's (cert-manager's, say):
 * refused rather than overwritten. Throws a ConfigError.
 */
export function materialOfSecret(secret: V1Secret | undefined, ref: SecretRef): AutoTlsMaterial | undefined {
  const data = secret?.data ?? {};
  const text = (key: string): string | undefined => {
    const b64 = data[key];
    if (b64 === undefined || b64 === '') return undefined;
    const t = Buffer.from(b64, 'base64').toString('utf8');
    return t.trim() === '' ? undefined : t;
  };
  const caCertPem = text(SECRET_KEYS.caCert);
  const caKeyPem = text(SECRET_KEYS.caKey);
  const cert = text(SECRET_KEYS.cert);
  const key = text(SECRET_KEYS.key);
  if (caCertPem === undefined && caKeyPem === undefined) {
    if (cert === undefined && key === undefined) return undefined;
    throw new ConfigError(
      `Secret ${ref.namespace}/${ref.name} holds a certificate (${SECRET_KEYS.cert}/${SECRET_KEYS.key}) but no CA (${SECRET_KEYS.caCert}, ${SECRET_KEYS.caKey}): it was not made by --tls auto; serve it with --tls-cert/--tls-key from a Secret volume, or name another Secret`,
    );
  }
  return { caCertPem, caKeyPem, serverPem: cert !== undefined && key !== undefined ? joinPem([cert, key]) : undefined };
}

/** The Secret to write: `read` (metadata with its resourceVersion, type, other keys) with the material. */
export function secretWithMaterial(read: V1Secret | undefined, ref: SecretRef, material: AutoTlsNext['material']): V1Secret {
  const b64 = (text: string): string => Buffer.from(text, 'utf8').toString('base64');
  const data = {
    [SECRET_KEYS.caCert]: b64(material.caCertPem),
    [SECRET_KEYS.caKey]: b64(material.caKeyPem),
    [SECRET_KEYS.cert]: b64(joinPem(certificateBlocks(material.serverPem))),
    [SECRET_KEYS.key]: b64(joinPem(privateKeyBlocks(material.serverPem).map((b) => b.text))),
  };
  if (read === undefined) {
    return {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: ref.name, namespace: ref.namespace, labels: { 'app.kubernetes.io/name': 'pgroute', 'app.kubernetes.io/component': 'tls' } },
      type: 'Opaque',
      data,
    };
  }
  return { ...read, apiVersion: 'v1', kind: 'Secret', data: { ...(read.data ?? {}), ...data } };
}

// ---- effects -----------------------------------------------------------------------------------

/**
 * Makes sure the Secret holds a CA and a server certificate for exactly `sans` with enough life
 * left (the decisions of ensureAutoTls), then writes them to `<stateDir>/tls` as ensureAutoTls
 * does. `renewed` is true when server.pem in the state dir changed (issued here, or taken from
 * a Secret another replica renewed): what HAProxy must be given. Calls on one state dir are
 * serialized within this process (shared with ensureAutoTls).
 */
export function ensureSecretTls(opts: SecretTlsOptions): Promise<SecretTlsResult> {
  return serializedOnStateDir(opts.stateDir, () => ensureSecretTlsNow(opts));
}

async function ensureSecretTlsNow(opts: SecretTlsOptions): Promise<SecretTlsResult> {
  const { secret: ref, api } = opts;
  const places = secretPlaces(ref);
  const maxConflicts = opts.maxConflicts ?? 4;
  let conflicts = 0;
  for (;;) {
    const read = await readSecret(api, ref);
    const next = await nextAutoTls(materialOfSecret(read, ref) ?? {}, places, opts);
    let stored = read;
    let action: SecretTlsResult['secret']['action'] = 'read';
    if (next.changed) {
      const body = secretWithMaterial(read, ref, next.material);
      try {
        if (read === undefined) {
          stored = await api.createNamespacedSecret({ namespace: ref.namespace, body });
          action = 'created';
        } else {
          stored = await api.replaceNamespacedSecret({ namespace: ref.namespace, name: ref.name, body });
          action = 'replaced';
        }
      } catch (err) {
        if (statusOf(err) === 409 && conflicts < maxConflicts) {
          conflicts++;
          opts.log.info({ secret: `${ref.namespace}/${ref.name}`, conflicts }, 'another replica wrote the TLS Secret first; reading it again to use theirs');
          continue;
        }
        throw failure(err, read === undefined ? 'create' : 'update', ref);
      }
    }
    const serverChanged = await writeAutoTlsFiles(opts.stateDir, next.material);
    const resourceVersion = stored?.metadata?.resourceVersion ?? '';
    if (action !== 'read') opts.log.info({ secret: `${ref.namespace}/${ref.name}`, action, resourceVersion }, 'stored the TLS CA and certificate in the Secret');
    const reason = next.reason ?? (serverChanged ? `taken from Secret ${ref.namespace}/${ref.name}` : undefined);
    return {
      serverPemPath: tlsPaths(opts.stateDir).serverPem,
      caPem: next.material.caCertPem,
      renewed: serverChanged,
      ...(reason === undefined ? {} : { reason }),
      caCreated: next.caCreated,
      serialHex: next.serialHex,
      notAfter: next.notAfter,
      secret: { ...ref, resourceVersion, action },
      conflicts,
    };
  }
}

async function readSecret(api: SecretApi, ref: SecretRef): Promise<V1Secret | undefined> {
  try {
    return await api.readNamespacedSecret({ namespace: ref.namespace, name: ref.name });
  } catch (err) {
    if (statusOf(err) === 404) return undefined;
    throw failure(err, 'get', ref);
  }
}

/** The HTTP status of a client-node ApiException. */
function statusOf(err: unknown): number | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'number' ? code : undefined;
}

function failure(err: unknown, verb: 'get' | 'create' | 'update', ref: SecretRef): SecretStoreError {
  const status = statusOf(err);
  const hint =
    status === 401 || status === 403
      ? `; pgroute's service account needs get and update on Secret ${ref.name} in namespace ${ref.namespace} (and create on secrets there, unless the Secret exists)`
      : '';
  return new SecretStoreError(`cannot ${verb} the TLS Secret ${ref.namespace}/${ref.name}: ${describe(err)}${hint}`, status, { cause: err });
}

/** The apiserver's Status message when there is one, else the error's first line. */
function describe(err: unknown): string {
  const e = err as { code?: unknown; body?: unknown; message?: unknown } | null;
  let body = e?.body;
  if (typeof body === 'string') {
    try {
      body = JSON.parse(body) as unknown;
    } catch {
      // not JSON
    }
  }
  const message = (body as { message?: unknown } | null | undefined)?.message;
  const status = typeof e?.code === 'number' ? `HTTP ${e.code}: ` : '';
  if (typeof message === 'string') return `${status}${message}`;
  return `${status}${String(e?.message ?? err).split('\n')[0]}`;
}
