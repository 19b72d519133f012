// The access switch kept durable in one Kubernetes ConfigMap in pgroute's namespace, so that it
// survives a restart of every pod (their state dirs are emptyDirs). The ConfigMap holds the whole
// versioned access document under the key `access.json`, the same text as <state-dir>/access.json
// (every tenant's state and version, whatever the states are), and is merged by version like the
// replicated table: newer wins entry by entry, so writers that race converge.
//
// Effects: readNamespacedConfigMap and replaceNamespacedConfigMap (RBAC: get + update on that one
// name through resourceNames). The ConfigMap is created by the manifests (kubernetes/base), without
// a `data` field so that a re-apply never resets what pgroute wrote; pgroute never creates it.
// Every write carries the resourceVersion it read: a 409 Conflict means another replica wrote
// first; read again, merge, retry.

import { CoreV1Api, type KubeConfig, type V1ConfigMap } from '@kubernetes/client-node';
import { accessFile, parseAccess, type AccessEntry } from '../access.js';
import { defaultKubeConfig } from '../sources/kubernetes.js';
import { mergeAccess } from './access-version.js';

/** The ConfigMap's key holding the access document. */
export const ACCESS_CONFIGMAP_KEY = 'access.json';

export interface ConfigMapRef {
  readonly namespace: string;
  readonly name: string;
}

/** The two CoreV1Api calls this store makes (RBAC: get, update on configmaps). */
export type ConfigMapApi = Pick<CoreV1Api, 'readNamespacedConfigMap' | 'replaceNamespacedConfigMap'>;

export function configMapApi(kubeConfig?: KubeConfig): ConfigMapApi {
  return (kubeConfig ?? defaultKubeConfig()).makeApiClient(CoreV1Api);
}

/** What a durable store of the switches does; the ConfigMap is one. */
export interface AccessStore {
  /** Where it writes, for log lines and the command's answer ("ConfigMap pgroute/pgroute-access"). */
  readonly where: string;
  /** The entries it holds now. */
  read(): Promise<Readonly<Record<string, AccessEntry>>>;
  /** Merges `entries` in by version; writes only when one of them is newer than what it holds. */
  save(entries: Readonly<Record<string, AccessEntry>>): Promise<StoreWrite>;
}

export interface StoreWrite {
  /** Tenants whose entry this call wrote (newer than the stored one, or missing there). */
  readonly written: readonly string[];
  /** 409s met before it succeeded. */
  readonly conflicts: number;
}

export class AccessStoreError extends Error {
  override readonly name = 'AccessStoreError';
  constructor(message: string, readonly status: number | undefined, options?: ErrorOptions) {
    super(message, options);
  }
}

/** The document a ConfigMap holds (none, or no key: no switch; text that is not JSON: refused). */
export function entriesOfConfigMap(cm: V1ConfigMap, ref: ConfigMapRef): Readonly<Record<string, AccessEntry>> {
  const text = cm.data?.[ACCESS_CONFIGMAP_KEY];
  if (text === undefined || text.trim() === '') return {};
  try {
    return parseAccess(text).entries;
  } catch (err) {
    throw new AccessStoreError(`ConfigMap ${ref.namespace}/${ref.name} key ${ACCESS_CONFIGMAP_KEY} is not an access document (${(err as Error).message}); fix or empty that key`, undefined);
  }
}

/** The ConfigMap's text for these entries: access.json's format, one text per content. */
export function configMapText(entries: Readonly<Record<string, AccessEntry>>): string {
  const f = accessFile(entries);
  return `${JSON.stringify({ disabled: f.disabled, entries: f.entries }, null, 2)}\n`;
}

export class ConfigMapAccessStore implements AccessStore {
  readonly where: string;

  constructor(
    readonly ref: ConfigMapRef,
    private readonly api: ConfigMapApi,
    private readonly maxConflicts = 8,
  ) {
    this.where = `ConfigMap ${ref.namespace}/${ref.name}`;
  }

  async read(): Promise<Readonly<Record<string, AccessEntry>>> {
    return entriesOfConfigMap(await this.#get(), this.ref);
  }

  async save(entries: Readonly<Record<string, AccessEntry>>): Promise<StoreWrite> {
    for (let conflicts = 0; ; conflicts++) {
      const cm = await this.#get();
      // learned = the given entries newer than the stored ones: what must be written.
      const m = mergeAccess(entriesOfConfigMap(cm, this.ref), entries);
      if (m.learned.length === 0) return { written: [], conflicts };
      const body: V1ConfigMap = { ...cm, data: { ...cm.data, [ACCESS_CONFIGMAP_KEY]: configMapText(m.merged) } };
      try {
        await this.api.replaceNamespacedConfigMap({ namespace: this.ref.namespace, name: this.ref.name, body });
        return { written: m.learned, conflicts };
      } catch (err) {
        if (statusOf(err) === 409 && conflicts < this.maxConflicts) continue;
        throw this.#failure('update', err);
      }
    }
  }

  async #get(): Promise<V1ConfigMap> {
    try {
      return await this.api.readNamespacedConfigMap({ namespace: this.ref.namespace, name: this.ref.name });
    } catch (err) {
      throw this.#failure('get', err);
    }
  }

  #failure(verb: 'get' | 'update', err: unknown): AccessStoreError {
    const status = statusOf(err);
    const hint =
      status === 404
        ? `; create it (kubectl apply -k kubernetes/base creates it empty) or fix --access-configmap`
        : status === 401 || status === 403
          ? `; check that the service account may get and update configmaps "${this.ref.name}" in ${this.ref.namespace} (kubernetes/base/rbac.yaml)`
          : status === 409
            ? `: ${this.maxConflicts} conflicts in a row (other replicas kept writing); retried later`
            : '';
    const first = err instanceof Error ? err.message.split('\n')[0] : String(err);
    return new AccessStoreError(`cannot ${verb} ${this.where} (${status ?? first})${hint}`, status, { cause: err });
  }
}

function statusOf(err: unknown): number | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'number' ? code : undefined;
}

/** `[<namespace>/]<name>`, the namespace defaulting to `namespace` (the pod's). */
export function parseConfigMapRef(value: string, defaultNamespace: string | undefined): ConfigMapRef | string {
  const dns = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
  const parts = value.split('/');
  const [namespace, name] = parts.length === 2 ? [parts[0], parts[1]] : [defaultNamespace, parts[0]];
  if (parts.length > 2 || name === undefined || !/^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/.test(name)) return `must be [<namespace>/]<name> with a ConfigMap name (lowercase letters, digits, '-', '.'), got ${JSON.stringify(value)}`;
  if (namespace === undefined) return 'names no namespace, and this is not a pod (no service account namespace file): give <namespace>/<name>';
  if (!dns.test(namespace)) return `names the namespace ${JSON.stringify(namespace)}, which is not a namespace name`;
  return { namespace, name };
}
