// The Kubernetes source: Services labelled with pgroute's or xdatabase-proxy's labels, watched with
// client-node informers (one per namespace, or one cluster-wide), merged into complete views. With
// declared ownership (--kube-ownership declared) it also watches the Namespaces (every one, or each
// watched one alone) for the tenant ids their pgroute.io/tenants annotation declares, and accepts a
// claim only from the namespace that declares its id (kubernetes/ownership.ts).
//
// Each informer lists once and then watches from the list's resourceVersion; its cache survives
// every outage, so a view is never emptied because the apiserver went away. client-node 1.4's
// ListWatch re-lists by itself on 410 Gone, but on any other error it reports the error and stops:
// this source restarts it with backoff (from the last resourceVersion, so a short outage costs a
// watch, not a list). Each list has a deadline, and while a first list is awaited a warning
// repeats what is awaited (first-view.ts, shared with the Docker source): an unreachable API server is retried, never
// waited on in silence.

import { CoreV1Api, KubeConfig, ListWatch, type KubernetesObject, type V1Namespace, type V1Service, type V1ServiceList, type Watch } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { ConfigError, readFailure } from '../errors.js';
import { quote } from '../validate.js';
import { backoffDelay } from './backoff.js';
import { awaitFirstView, LIST_DEADLINE_MS, WAIT_LOG_MS, withDeadline } from './first-view.js';
import { namespaceInformer } from './kubernetes/namespaces.js';
import { OWNERSHIP_MODES, type OwnershipMode } from './kubernetes/ownership.js';
import { type AddressMode, FIRST_CLAIM, viewOfServices } from './kubernetes/service-claims.js';
import type { TargetPolicy } from './kubernetes/target-policy.js';
import { TimedWatch } from './kubernetes/timed-watch.js';
import type { SourceView, TenantSource } from './source.js';

export interface KubernetesSourceOptions {
  /** Default: loadFromDefault() ($KUBECONFIG, ~/.kube/config, else the in-cluster service account). */
  readonly kubeConfig?: KubeConfig;
  /** Namespaces to watch; empty: every namespace (needs cluster-wide list/watch on services). */
  readonly namespaces: readonly string[];
  /** An extra label selector, applied by the apiserver (e.g. `team=db`). */
  readonly labelSelector?: string;
  /** 'dns' (default): <svc>.<ns>.svc.<clusterDomain>; 'cluster-ip': the Service's virtual IP. */
  readonly address?: AddressMode;
  readonly clusterDomain?: string;
  /**
   * Who may claim a tenant id. 'first-claim' (default): the namespace of the oldest claim (no
   * memory: see ownership.ts for the takeover this allows). 'declared': the one namespace whose
   * Namespace annotation pgroute.io/tenants declares it (needs list + watch on namespaces).
   */
  readonly ownership?: OwnershipMode;
  /** Allowed ExternalName targets and ports (kubernetes/target-policy.ts); default: none, 5432-5439 and 6432. */
  readonly policy?: TargetPolicy;
  readonly log: Logger;
  /** Restart delays after an informer error (backoff.ts): doubling from initialMs up to maxMs, with jitter. */
  readonly backoff?: { readonly initialMs: number; readonly maxMs: number };
  /** Base watch timeout (each watch asks for [base, 2 * base)); client-go uses 300. */
  readonly watchTimeoutSeconds?: number;
  /** A list unanswered this long counts as failed and is retried (default 30 s). */
  readonly listDeadlineMs?: number;
  /** start() rejects when no first list arrived within this time (`plan`); default: it waits as long as it takes, warning every waitLogMs. */
  readonly firstViewTimeoutMs?: number;
  /** While a first list is awaited, a warning repeats this often (default 10 s). */
  readonly waitLogMs?: number;
}

const DEFAULT_BACKOFF = { initialMs: 500, maxMs: 30_000 };
/** An informer quiet this long after its last error starts its backoff again from the beginning. */
const BACKOFF_RESET_MS = 60_000;
const NAMESPACE = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

type Resource = 'services' | 'namespaces';

/** One informer and its restart state. */
interface Watched {
  readonly resource: Resource;
  /** services: the namespace watched; namespaces: the one Namespace watched; undefined: all. */
  readonly namespace: string | undefined;
  readonly informer: ListWatch<KubernetesObject>;
  /** True once its first list succeeded: until every informer is synced no view is pushed. */
  synced: boolean;
  attempt: number;
  lastErrorAt: number;
  /** The last failure, for the "still waiting" warning. */
  lastError: string | undefined;
  restart: NodeJS.Timeout | undefined;
}

/** What to check while the API server does not answer (first-view.ts). */
export const KUBE_CHECK = 'check that the Kubernetes API server is reachable from here and the credentials';

export class KubernetesSource implements TenantSource {
  readonly name = 'kubernetes';
  private readonly options: KubernetesSourceOptions;
  private readonly log: Logger;
  private watched: Watched[] = [];
  private onView: ((view: SourceView) => void) | undefined;
  private emitSoon: NodeJS.Immediate | undefined;
  private started = false;
  private stopped = false;
  private first: { resolve: () => void; reject: (err: Error) => void } | undefined;

  constructor(options: KubernetesSourceOptions) {
    for (const ns of options.namespaces) {
      if (!NAMESPACE.test(ns)) throw new ConfigError(`kubernetes namespace ${JSON.stringify(ns)} is not a valid namespace name (lowercase letters, digits and '-', at most 63)`);
    }
    if (options.ownership !== undefined && !OWNERSHIP_MODES.includes(options.ownership)) {
      throw new ConfigError(`kubernetes ownership ${JSON.stringify(options.ownership)} is not one of ${OWNERSHIP_MODES.join(', ')}`);
    }
    this.options = options;
    this.log = options.log.child({ source: 'kubernetes' });
  }

  async start(onView: (view: SourceView) => void): Promise<void> {
    if (this.started) throw new Error('the kubernetes source was already started');
    this.started = true;
    this.onView = onView;
    const kc = this.options.kubeConfig ?? defaultKubeConfig();
    const api = kc.makeApiClient(CoreV1Api);
    const selector = this.options.labelSelector;
    const scopes = this.options.namespaces.length === 0 ? [undefined] : [...new Set(this.options.namespaces)].sort();
    const declared = this.options.ownership === 'declared';
    const firstView = new Promise<void>((resolve, reject) => (this.first = { resolve, reject }));
    const server = kc.getCurrentCluster()?.server ?? 'the configured API server';
    const deadlineMs = this.options.listDeadlineMs ?? LIST_DEADLINE_MS;
    const bounded = (resource: Resource, namespace: string | undefined) => <T>(p: Promise<T>): Promise<T> =>
      withDeadline(p, deadlineMs, `listing kubernetes ${resource} in ${namespace ?? '*'} from ${server}`);
    for (const namespace of scopes) {
      this.add('services', namespace, kc, (watch, listed) => serviceInformer(api, watch, namespace, selector, listed, bounded('services', namespace)));
      // The Namespace objects whose annotations declare who may claim what: the same scopes.
      if (declared) this.add('namespaces', namespace, kc, (watch, listed) => namespaceInformer(api, watch, namespace, listed, bounded('namespaces', namespace)));
    }
    for (const w of this.watched) this.run(w);
    this.log.info({ namespaces: scopes.map((ns) => ns ?? '*'), labelSelector: selector, ownership: this.options.ownership ?? 'first-claim', server }, declared ? 'watching kubernetes services and namespaces' : 'watching kubernetes services');
    await awaitFirstView(firstView, {
      log: this.log,
      intervalMs: this.options.waitLogMs ?? WAIT_LOG_MS,
      waiting: () => {
        const pending = this.watched.filter((w) => !w.synced);
        if (pending.length === 0) return undefined;
        const lastError = pending.find((w) => w.lastError !== undefined)?.lastError;
        return { what: `the first list of kubernetes ${pending.map((w) => `${w.resource} in ${scopeName(w)}`).join(', ')} from ${server}`, ...(lastError === undefined ? {} : { lastError }) };
      },
      check: KUBE_CHECK,
      ...(this.options.firstViewTimeoutMs === undefined ? {} : { giveUpMs: this.options.firstViewTimeoutMs }),
      stop: () => this.stop(),
    });
  }

  /** Makes one informer (not started yet) whose list marks it synced and schedules a view. */
  private add(resource: Resource, namespace: string | undefined, kc: KubeConfig, make: (watch: Watch, listed: () => void) => ListWatch<V1Service> | ListWatch<V1Namespace>): void {
    const listed = (): void => {
      // ListWatch would go on to open a watch even though it was stopped meanwhile.
      if (this.stopped) throw new Error('the kubernetes source was stopped during a list');
      // Only called once the informer runs, after `watched` below is set.
      watched.synced = true;
      watched.attempt = 0;
      this.schedule();
    };
    const watch = new TimedWatch(kc, { timeoutSeconds: this.options.watchTimeoutSeconds ?? 300, stopped: () => this.stopped });
    const informer: ListWatch<KubernetesObject> = make(watch, listed);
    const watched: Watched = { resource, namespace, informer, synced: false, attempt: 0, lastErrorAt: 0, lastError: undefined, restart: undefined };
    const changed = (): void => {
      watched.attempt = 0;
      this.schedule();
    };
    informer.on('add', changed);
    informer.on('update', changed);
    informer.on('delete', changed);
    informer.on('error', (err: unknown) => this.failed(watched, err));
    informer.on('connect', () => this.log.debug({ resource, namespace: scopeName(watched) }, `listing/watching ${resource}`));
    this.watched.push(watched);
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    clearImmediate(this.emitSoon);
    for (const w of this.watched) clearTimeout(w.restart);
    // The abort this causes reaches the informers' error callbacks, which ignore it now.
    await Promise.all(this.watched.map((w) => w.informer.stop()));
    this.first?.reject(new Error('the kubernetes source was stopped before it saw every watched namespace'));
    this.first = undefined;
  }

  private run(w: Watched): void {
    if (this.stopped) return;
    w.informer.start().catch((err: unknown) => this.failed(w, err));
  }

  /** An informer reported an error and stopped: log it and start it again after a backoff. */
  private failed(w: Watched, err: unknown): void {
    if (this.stopped || w.restart !== undefined) return;
    const now = Date.now();
    if (now - w.lastErrorAt > BACKOFF_RESET_MS) w.attempt = 0;
    w.lastErrorAt = now;
    const delay = backoffDelay(++w.attempt, this.options.backoff ?? DEFAULT_BACKOFF);
    const status = statusOf(err);
    const hint = status === 401 || status === 403 ? `; check the credentials and that they may list and watch ${accessOf(w)}` : '';
    w.lastError = describe(err);
    // Before its first list there is no view to keep: say what the wait means instead.
    const meanwhile = w.synced ? 'the last view stays in force' : 'nothing from this source is applied and /readyz answers 503 until a first list succeeds';
    this.log.warn(
      { resource: w.resource, namespace: scopeName(w), status, err: w.lastError, retryInMs: delay, keptView: w.synced },
      `listing/watching kubernetes ${w.resource} failed${hint}; retrying (${meanwhile})`,
    );
    w.restart = setTimeout(() => {
      w.restart = undefined;
      this.run(w);
    }, delay);
  }

  /**
   * The changes of one turn of the event loop make one view (an informer's list delivers every
   * object at once); no waiting beyond that: the pipeline compares and throttles.
   */
  private schedule(): void {
    if (this.stopped || this.emitSoon !== undefined) return;
    this.emitSoon = setImmediate(() => {
      this.emitSoon = undefined;
      this.emit();
    });
  }

  private emit(): void {
    if (this.stopped || !this.watched.every((w) => w.synced)) return;
    const of = (resource: Resource): KubernetesObject[] => this.watched.filter((w) => w.resource === resource).flatMap((w) => w.informer.list());
    const ownership = this.options.ownership === 'declared' ? { mode: 'declared' as const, namespaces: of('namespaces') } : FIRST_CLAIM;
    const view = viewOfServices(of('services'), { address: this.options.address ?? 'dns', clusterDomain: this.options.clusterDomain ?? 'cluster.local', ...(this.options.policy ? { policy: this.options.policy } : {}) }, ownership);
    this.log.debug({ tenants: view.snapshot.tenants.length, refused: view.snapshot.refused.length }, 'kubernetes view');
    try {
      this.onView?.(view);
    } catch (err) {
      this.log.error({ err }, 'the consumer of the kubernetes view failed');
    }
    this.first?.resolve();
    this.first = undefined;
  }
}

/** $KUBECONFIG, ~/.kube/config, else the in-cluster service account (also used by the TLS Secret store). */
export function defaultKubeConfig(): KubeConfig {
  const kc = new KubeConfig();
  // A KUBECONFIG naming no file, a file that is no kubeconfig, or one whose current context names
  // no cluster (the client's own words: "No active cluster!"): one line naming the variable.
  const file = process.env.KUBECONFIG;
  const refuse = (why: string): never => {
    throw new ConfigError(`${file ? `KUBECONFIG ${quote(file)}` : 'the kubeconfig ~/.kube/config'} cannot be loaded: ${why}; point KUBECONFIG at a kubeconfig file, or run in a pod with a service account`);
  };
  try {
    kc.loadFromDefault();
  } catch (err) {
    refuse((err as NodeJS.ErrnoException).code !== undefined ? readFailure(err) : quote(String((err as Error).message)));
  }
  if (kc.getCurrentCluster() === null) {
    // Typed string, but undefined when the file sets no current-context.
    const context = kc.getCurrentContext() as string | undefined;
    refuse(context ? `its current context (${quote(context)}) names no cluster it defines` : 'it sets no current-context');
  }
  return kc;
}

/** A ListWatch of the Services of one namespace, or of every namespace. */
function serviceInformer(
  api: CoreV1Api,
  watch: Watch,
  namespace: string | undefined,
  selector: string | undefined,
  listed: () => void,
  bounded: <T>(p: Promise<T>) => Promise<T>,
): ListWatch<V1Service> {
  const path = namespace === undefined ? '/api/v1/services' : `/api/v1/namespaces/${namespace}/services`;
  const list = async (): Promise<V1ServiceList> => {
    const result = await bounded(
      namespace === undefined
        ? api.listServiceForAllNamespaces(selector === undefined ? {} : { labelSelector: selector })
        : api.listNamespacedService(selector === undefined ? { namespace } : { namespace, labelSelector: selector }),
    );
    listed();
    return result;
  };
  return new ListWatch<V1Service>(path, watch, list, false, selector);
}

function scopeName(w: Watched): string {
  return w.namespace ?? '*';
}

/** What an informer needs RBAC for, in words for a 401/403 hint. */
function accessOf(w: Watched): string {
  if (w.resource === 'services') return 'services' + (w.namespace === undefined ? ' in every namespace' : ` in ${w.namespace}`);
  return w.namespace === undefined ? 'namespaces (a ClusterRole; needed by --kube-ownership declared)' : `the namespace ${w.namespace} (a ClusterRole rule with resourceNames: [${w.namespace}]; needed by --kube-ownership declared)`;
}

/** The HTTP status in an error from client-node: ApiException.code (list), statusCode (watch). */
function statusOf(err: unknown): number | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  const e = err as { statusCode?: unknown; code?: unknown };
  if (typeof e.statusCode === 'number') return e.statusCode;
  if (typeof e.code === 'number') return e.code;
  return undefined;
}

function describe(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const code = (err as { code?: unknown }).code;
  // ApiException messages carry the whole response (headers too): the first line says enough.
  const message = err.message.split('\n')[0] ?? '';
  return typeof code === 'string' && !message.includes(code) ? `${code}: ${message}` : message;
}
