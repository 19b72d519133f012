// Follows the EndpointSlices of pgroute's own Service in pgroute's namespace (list + watch, the
// one kind and namespace kubernetes/base/rbac.yaml grants for it) and reports the replicas they
// name (endpoint-slices.ts) whenever they change. Like the tenant source's informers, the cache
// survives an outage (the last list stays in force) and a failed informer restarts with backoff.

import { DiscoveryV1Api, KubeConfig, ListWatch, type V1EndpointSlice, type V1EndpointSliceList } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { deepEqual } from '../equal.js';
import { defaultKubeConfig } from '../sources/kubernetes.js';
import { backoffDelay } from '../sources/backoff.js';
import { LIST_DEADLINE_MS, WAIT_LOG_MS, warnWhileWaiting, withDeadline, type FirstListWait } from '../sources/first-view.js';
import { KUBE_CHECK } from '../sources/kubernetes.js';
import { TimedWatch } from '../sources/kubernetes/timed-watch.js';
import { peersOfSlices, replicasOfSlices, shortenedPods } from './endpoint-slices.js';
import type { Replicas } from './peers.js';

export interface KubernetesPeersOptions {
  /** Default: loadFromDefault() ($KUBECONFIG, ~/.kube/config, else the in-cluster service account). */
  readonly kubeConfig?: KubeConfig;
  /** pgroute's namespace (in a pod: the service account's namespace file). */
  readonly namespace: string;
  /** pgroute's Service, whose EndpointSlices name the replicas. */
  readonly service: string;
  /** The peers port every replica listens on. */
  readonly port: number;
  /** This replica's name: its pod's name. */
  readonly self: string;
  readonly log: Logger;
  readonly backoff?: { readonly initialMs: number; readonly maxMs: number };
  readonly watchTimeoutSeconds?: number;
}

export class KubernetesPeers {
  readonly #o: KubernetesPeersOptions;
  #informer: ListWatch<V1EndpointSlice> | undefined;
  #last: Replicas | undefined;
  #stopped = false;
  #attempt = 0;
  #restart: NodeJS.Timeout | undefined;
  #soon: NodeJS.Immediate | undefined;
  #lastError: string | undefined;
  #wait: FirstListWait | undefined;
  readonly #warned = new Set<string>();

  constructor(opts: KubernetesPeersOptions) {
    this.#o = opts;
  }

  /** Starts following; resolves with the replicas of the first list, then reports every change. */
  start(onChange: (replicas: Replicas) => void): Promise<Replicas> {
    const { namespace, service, log } = this.#o;
    const kubeConfig = this.#o.kubeConfig ?? defaultKubeConfig();
    const api = kubeConfig.makeApiClient(DiscoveryV1Api);
    const selector = `kubernetes.io/service-name=${service}`;
    let first: ((replicas: Replicas) => void) | undefined;
    const firstList = new Promise<Replicas>((resolve) => (first = resolve));
    const emit = (): void => {
      this.#soon = undefined;
      if (this.#stopped || this.#informer === undefined) return;
      const slices = this.#informer.list();
      for (const s of shortenedPods(slices)) {
        if (this.#warned.has(s.pod)) continue;
        this.#warned.add(s.pod);
        log.warn({ pod: s.pod, peer: s.peer }, "a pod name is longer than HAProxy's 63-character peer name: its peer name is derived from it (the pod derives the same for itself)");
      }
      const replicas = replicasOfSlices(this.#o.self, peersOfSlices(slices, this.#o.port), this.#o.port);
      if (this.#last !== undefined && deepEqual(replicas, this.#last)) return;
      const initial = this.#last === undefined;
      this.#last = replicas;
      log.info({ namespace, service, self: replicas.self, peers: replicas.peers.map((p) => `${p.name}=${p.host}:${p.port}`) }, 'replicas from the kubernetes endpointslices');
      if (initial) {
        this.#wait?.done();
        first?.(replicas);
      }
      else onChange(replicas);
    };
    // The changes of one turn of the event loop (a list delivers every slice at once) make one list.
    const schedule = (): void => {
      this.#attempt = 0;
      this.#soon ??= setImmediate(emit);
    };
    const server = kubeConfig.getCurrentCluster()?.server ?? 'the configured API server';
    const list = async (): Promise<V1EndpointSliceList> => {
      const result = await withDeadline(api.listNamespacedEndpointSlice({ namespace, labelSelector: selector }), LIST_DEADLINE_MS, `listing the endpointslices of ${namespace}/${service} from ${server}`);
      if (this.#stopped) throw new Error('the kubernetes peers watch was stopped during a list');
      schedule();
      return result;
    };
    const watch = new TimedWatch(kubeConfig, { timeoutSeconds: this.#o.watchTimeoutSeconds ?? 300, stopped: () => this.#stopped });
    const informer = new ListWatch<V1EndpointSlice>(`/apis/discovery.k8s.io/v1/namespaces/${namespace}/endpointslices`, watch, list, false, selector);
    for (const event of ['add', 'update', 'delete'] as const) informer.on(event, schedule);
    informer.on('error', (err: unknown) => this.#failed(err));
    this.#informer = informer;
    this.#run();
    log.info({ namespace, service, server }, 'watching the kubernetes endpointslices of pgroute\'s service for replicas');
    this.#wait = warnWhileWaiting(log, WAIT_LOG_MS, () =>
      this.#last === undefined ? { what: `the first list of the endpointslices of ${namespace}/${service} (the replicas) from ${server}`, ...(this.#lastError === undefined ? {} : { lastError: this.#lastError }) } : undefined,
      KUBE_CHECK,
    );
    return firstList;
  }

  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    clearTimeout(this.#restart);
    this.#wait?.done();
    if (this.#soon !== undefined) clearImmediate(this.#soon);
    await this.#informer?.stop();
  }

  #run(): void {
    if (this.#stopped) return;
    this.#informer?.start().catch((err: unknown) => this.#failed(err));
  }

  #failed(err: unknown): void {
    if (this.#stopped || this.#restart !== undefined) return;
    const delay = backoffDelay(++this.#attempt, this.#o.backoff ?? { initialMs: 500, maxMs: 30_000 });
    const status = (err as { code?: unknown; statusCode?: unknown } | null)?.statusCode ?? (err as { code?: unknown } | null)?.code;
    const hint = status === 401 || status === 403 ? `; check that the service account may list and watch endpointslices (discovery.k8s.io) in ${this.#o.namespace}` : '';
    this.#lastError = err instanceof Error ? err.message.split('\n')[0] : String(err);
    const meanwhile = this.#last === undefined ? 'pgroute waits for this first list before it starts, and /readyz answers 503' : 'the last peer list stays in force';
    this.#o.log.warn({ status, err: this.#lastError, retryInMs: delay }, `listing/watching the endpointslices of ${this.#o.namespace}/${this.#o.service} failed${hint}; retrying (${meanwhile})`);
    this.#restart = setTimeout(() => {
      this.#restart = undefined;
      this.#run();
    }, delay);
  }
}
