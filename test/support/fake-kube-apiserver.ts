/**
 * A Kubernetes API server for Services, Namespaces and EndpointSlices, small enough to read and faithful where
 * informers care: list and watch with label and field selectors and resourceVersion semantics, so
 * the real @kubernetes/client-node can be tested on a machine where no API server can run.
 *
 * What it does as the real apiserver does, for both resources (one machinery, one history):
 * - One global, monotonically increasing resourceVersion (etcd's revision), a decimal string on the
 *   wire. Every create, update and delete takes the next one; a DELETED event carries the object as
 *   it was, with the deletion's resourceVersion.
 * - GET /api/v1/services and /api/v1/namespaces/{ns}/services: a ServiceList; GET /api/v1/namespaces:
 *   a NamespaceList. metadata.resourceVersion is the current revision; items in etcd key order
 *   (namespace, name; Namespaces by name). GET /api/v1/namespaces/{ns}/services/{name} and
 *   /api/v1/namespaces/{name}: the one object, or 404 NotFound.
 * - `?watch=true&resourceVersion=N` on a collection: HTTP 200 at once, then newline-delimited JSON
 *   events for every change of that resource after N, replayed from the retained history and then
 *   live. Without a resourceVersion (or with "0") it starts with synthetic ADDED events for what
 *   exists now.
 * - N older than the retained history (see compactHistory) -> one ERROR event whose object is a
 *   Status with code 410, reason Expired ("too old resource version"), then the stream ends. That is
 *   what the watch cache sends; the client must list again.
 * - labelSelector (`k`, `!k`, `k=v`, `k==v`, `k!=v`, `k in (a,b)`, `k notin (a,b)`, comma = AND) and
 *   fieldSelector (Services: metadata.name, metadata.namespace; Namespaces: metadata.name,
 *   status.phase) on list and watch; another field is 400 BadRequest. On a watch, an update that
 *   moves an object into the selection is ADDED and one that moves it out is DELETED. So a list or
 *   watch of /api/v1/namespaces?fieldSelector=metadata.name=x follows the Namespace x alone (what
 *   RBAC `resourceNames` can authorize for list and watch).
 * - allowWatchBookmarks=true -> periodic BOOKMARK events carrying only the current resourceVersion.
 * - timeoutSeconds ends the watch (cleanly) after that many seconds.
 * - Errors are Status objects with the real reasons (BadRequest, NotFound, MethodNotAllowed, ...).
 * - Namespaces: created Active with spec.finalizers [kubernetes] and the label
 *   kubernetes.io/metadata.name=<name> (set on every write, as the apiserver does). An update that
 *   changes nothing keeps the resourceVersion and sends no event. Deleting one is a MODIFIED event
 *   (deletionTimestamp, phase Terminating), the deletion of its Services, then DELETED.
 *
 * Secrets, one at a time over HTTP (what a client that keeps state in one Secret calls):
 * - GET /api/v1/namespaces/{ns}/secrets/{name}: 200 with the Secret (data base64), or 404 NotFound.
 * - POST /api/v1/namespaces/{ns}/secrets (the collection; POST on a name is 405): 201 Created with
 *   the stored object (uid, creationTimestamp and the next resourceVersion set by the server, type
 *   defaulted to Opaque, stringData merged into data); 409 AlreadyExists when the name is taken;
 *   a resourceVersion in the body is refused (500, "resourceVersion should not be set on objects
 *   to be created"), as etcd3's store does.
 * - PUT /api/v1/namespaces/{ns}/secrets/{name}: 200 with the stored object. A body resourceVersion
 *   other than the current one -> 409 Conflict ("the object has been modified"); none -> an
 *   unconditional update (Secrets allow it); a missing Secret -> 404 (no create on update); a
 *   name or namespace other than the URL's -> 400. An update that changes nothing keeps the
 *   resourceVersion (etcd writes nothing). uid and creationTimestamp are kept.
 * - Validation as the apiserver's (422 Invalid): data keys match [-._a-zA-Z0-9]+, at most 1 MiB
 *   of data, kubernetes.io/tls needs tls.crt and tls.key, type is immutable, and so is the data of
 *   an `immutable: true` Secret. Data that is not base64 -> 400 (the JSON decoder refuses it).
 * Secret writes take the global resourceVersion but are not sent to Service or Namespace watches.
 *
 * ConfigMaps, one at a time over HTTP (what a client that keeps state in one ConfigMap calls):
 * GET and PUT of /api/v1/namespaces/{ns}/configmaps/{name}, as for Secrets: 404 NotFound, 409
 * Conflict on a stale body resourceVersion (none: unconditional), no create on update, a no-op
 * update keeps the resourceVersion, data values are strings with keys [-._a-zA-Z0-9]+ and at most
 * 1 MiB in all (422 Invalid). Created by a test (createConfigMap, as `kubectl apply` would);
 * POST, list, watch, patch and delete are 405.
 *
 * EndpointSlices (discovery.k8s.io/v1): list and watch of /apis/discovery.k8s.io/v1/endpointslices
 * and /apis/discovery.k8s.io/v1/namespaces/{ns}/endpointslices, with the same machinery (label
 * selector kubernetes.io/service-name=<svc> is how a client follows one Service's). No controller:
 * a test writes them (putEndpointSlice, deleteEndpointSlice) as the EndpointSlice controller would.
 *
 * Not modelled: Service and Namespace writes over HTTP (tests use the methods below), Secret
 * list/watch/patch/delete (405), that a Service's namespace exists (only creating a Service in a
 * Terminating namespace is refused), the deprecated /api/v1/watch/... paths, authentication and
 * RBAC, pagination (limit/continue), resourceVersionMatch, dryRun, protobuf, other resources.
 */

import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ServicePortSpec {
  name?: string;
  port: number;
  targetPort?: number | string;
  protocol?: string;
  nodePort?: number;
}

/** A Service as it travels on the wire (plain JSON). */
export interface ServiceObject {
  apiVersion?: 'v1';
  kind?: 'Service';
  metadata: {
    name: string;
    namespace: string;
    uid: string;
    resourceVersion: string;
    creationTimestamp: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
  };
  spec: {
    type: 'ClusterIP' | 'NodePort' | 'LoadBalancer' | 'ExternalName';
    clusterIP?: string;
    clusterIPs?: string[];
    externalName?: string;
    ports?: ServicePortSpec[];
    selector?: Record<string, string>;
  };
  status: { loadBalancer: Record<string, never> };
}

export interface ServiceInput {
  namespace: string;
  name: string;
  labels?: Record<string, string>;
  type?: ServiceObject['spec']['type'];
  /** 'None' makes a headless Service; otherwise one is allocated (not for ExternalName). */
  clusterIP?: string;
  externalName?: string;
  ports?: ServicePortSpec[];
  /**
   * Test control: the apiserver sets creationTimestamp itself (whole seconds, RFC 3339); a test may
   * pin it to order claims without sleeping.
   */
  creationTimestamp?: string;
}

/** A Secret as it travels on the wire (plain JSON; data values base64). */
export interface SecretObject {
  apiVersion?: 'v1';
  kind?: 'Secret';
  metadata: {
    name: string;
    namespace: string;
    uid: string;
    resourceVersion: string;
    creationTimestamp: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
  };
  type: string;
  immutable?: boolean;
  data?: Record<string, string>;
}

/** A ConfigMap as it travels on the wire (plain JSON). */
export interface ConfigMapObject {
  apiVersion?: 'v1';
  kind?: 'ConfigMap';
  metadata: SecretObject['metadata'];
  data?: Record<string, string>;
}

/** A Namespace as it travels on the wire (plain JSON). Cluster-scoped: no metadata.namespace. */
export interface NamespaceObject {
  apiVersion?: 'v1';
  kind?: 'Namespace';
  metadata: {
    name: string;
    uid: string;
    resourceVersion: string;
    creationTimestamp: string;
    deletionTimestamp?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
  };
  spec: { finalizers?: string[] };
  status: { phase: 'Active' | 'Terminating' };
}

export interface NamespaceInput {
  name: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  /** Test control, as for Services. */
  creationTimestamp?: string;
}

/** An EndpointSlice as it travels on the wire (plain JSON), the fields a client reads. */
export interface EndpointSliceObject {
  apiVersion?: 'discovery.k8s.io/v1';
  kind?: 'EndpointSlice';
  metadata: {
    name: string;
    namespace: string;
    uid: string;
    resourceVersion: string;
    creationTimestamp: string;
    labels?: Record<string, string>;
  };
  addressType: 'IPv4' | 'IPv6' | 'FQDN';
  endpoints: {
    addresses: string[];
    conditions?: { ready?: boolean; serving?: boolean; terminating?: boolean };
    targetRef?: { kind: string; name: string; namespace?: string };
    nodeName?: string;
  }[];
  ports?: { name?: string; port?: number; protocol?: string }[];
}

export interface EndpointSliceInput {
  namespace: string;
  name: string;
  /** The Service the slice belongs to (label kubernetes.io/service-name, as the controller sets). */
  service: string;
  endpoints: EndpointSliceObject['endpoints'];
  ports?: EndpointSliceObject['ports'];
  addressType?: EndpointSliceObject['addressType'];
}

/** The resources served by list and watch. */
export type Resource = 'services' | 'namespaces' | 'endpointslices';
type StoredObject = ServiceObject | NamespaceObject | EndpointSliceObject;

/** What the apiserver adds to every Namespace's labels (immutable; set on every write). */
const NAMESPACE_NAME_LABEL = 'kubernetes.io/metadata.name';

export interface FakeKubeApiServerOptions {
  port: number;
  host?: string;
  /** Events retained for watches that resume from an older resourceVersion. */
  historyLimit?: number;
  /** How often BOOKMARK events go to watches that allow them. */
  bookmarkIntervalMs?: number;
  /** false: never end a watch on timeoutSeconds, as a connection that died silently never ends. */
  honourTimeoutSeconds?: boolean;
}

type EventType = 'ADDED' | 'MODIFIED' | 'DELETED';

interface Change {
  readonly rv: number;
  readonly resource: Resource;
  readonly type: EventType;
  /** Before the change (MODIFIED, DELETED). */
  readonly before?: StoredObject;
  /** After the change; for DELETED, the object as deleted, with the deletion's resourceVersion. */
  readonly after: StoredObject;
}

interface Selection {
  readonly namespace?: string;
  readonly labels: LabelRequirement[];
  readonly fields: FieldRequirement[];
}

interface OpenWatch {
  readonly res: http.ServerResponse;
  readonly resource: Resource;
  readonly selection: Selection;
  readonly timers: NodeJS.Timeout[];
  closed: boolean;
}

class BadRequest extends Error {}

export class FakeKubeApiServer {
  readonly port: number;
  readonly host: string;
  private readonly historyLimit: number;
  private readonly bookmarkIntervalMs: number;
  private readonly honourTimeoutSeconds: boolean;
  private server: http.Server | undefined;
  private readonly services = new Map<string, ServiceObject>();
  private readonly namespaces = new Map<string, NamespaceObject>();
  private readonly endpointSlices = new Map<string, EndpointSliceObject>();
  private readonly secrets = new Map<string, SecretObject>();
  private readonly configMaps = new Map<string, ConfigMapObject>();
  private holds: { method: string; count: number; queue: (() => void)[] }[] = [];
  private rv = 1;
  private uidCounter = 0;
  private ipCounter = 0;
  /** Changes with rv > historyStart are retained; a watch from below it is expired (410). */
  private historyStart = 1;
  private history: Change[] = [];
  private readonly watches = new Set<OpenWatch>();
  private failures: { remaining: number; code: number } = { remaining: 0, code: 500 };
  /** Requests received, by kind; tests assert re-lists and re-watches with these. */
  readonly counters = { lists: 0, watches: 0, gets: 0, failed: 0 };
  /** The same (failures aside), per resource. */
  readonly resourceCounters: Record<Resource, { lists: number; watches: number; gets: number }> = {
    services: { lists: 0, watches: 0, gets: 0 },
    namespaces: { lists: 0, watches: 0, gets: 0 },
    endpointslices: { lists: 0, watches: 0, gets: 0 },
  };
  /** Every request's path and query, in order (for debugging a test). */
  readonly requests: string[] = [];

  constructor(options: FakeKubeApiServerOptions) {
    this.port = options.port;
    this.host = options.host ?? '127.0.0.1';
    this.historyLimit = options.historyLimit ?? 1000;
    this.bookmarkIntervalMs = options.bookmarkIntervalMs ?? 1000;
    this.honourTimeoutSeconds = options.honourTimeoutSeconds ?? true;
  }

  get url(): string {
    return `http://${this.host}:${this.port}`;
  }

  /** The current (latest) resourceVersion. */
  get resourceVersion(): string {
    return String(this.rv);
  }

  get openWatches(): number {
    return this.watches.size;
  }

  /** Listens on the fixed port; after stop(), starts again with the same state (like etcd). */
  async start(): Promise<void> {
    if (this.server) throw new Error('fake apiserver already started');
    const server = http.createServer((req, res) => this.handle(req, res));
    server.keepAliveTimeout = 5000;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, this.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    const actual = (server.address() as AddressInfo).port;
    if (actual !== this.port) throw new Error(`listened on ${actual}, expected ${this.port}`);
    this.server = server;
  }

  /** Stops listening and drops every connection, watches included; the stored state is kept. */
  async stop(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    for (const w of [...this.watches]) this.endWatch(w, true);
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeAllConnections();
    await closed;
  }

  async restart(): Promise<void> {
    await this.stop();
    await this.start();
  }

  // ---- test controls -------------------------------------------------------------------------

  createService(input: ServiceInput): ServiceObject {
    const key = keyOf(input.namespace, input.name);
    if (this.services.has(key)) throw new Error(`service ${key} already exists`);
    // The NamespaceLifecycle admission plugin's answer (403 Forbidden over HTTP).
    if (this.namespaces.get(input.namespace)?.status.phase === 'Terminating') {
      throw new Error(`services "${input.name}" is forbidden: unable to create new content in namespace ${input.namespace} because it is being terminated`);
    }
    const type = input.type ?? 'ClusterIP';
    const spec: ServiceObject['spec'] = { type };
    if (type === 'ExternalName') {
      if (input.externalName === undefined) throw new Error('an ExternalName service needs externalName');
      spec.externalName = input.externalName;
    } else {
      const ip = input.clusterIP ?? this.allocateIP();
      spec.clusterIP = ip;
      spec.clusterIPs = [ip];
    }
    // The apiserver defaults protocol to TCP and targetPort to port.
    if (input.ports) spec.ports = input.ports.map((p) => ({ protocol: 'TCP', ...p, targetPort: p.targetPort ?? p.port }));
    const rv = this.nextRV();
    const svc: ServiceObject = {
      metadata: {
        name: input.name,
        namespace: input.namespace,
        uid: this.nextUid(),
        resourceVersion: String(rv),
        creationTimestamp: input.creationTimestamp ?? now(),
        ...(input.labels ? { labels: { ...input.labels } } : {}),
      },
      spec,
      status: { loadBalancer: {} },
    };
    this.services.set(key, svc);
    this.record({ rv, resource: 'services', type: 'ADDED', after: svc });
    return clone(svc);
  }

  /** Applies `mutate` to a copy of the Service and stores it as the next version (an update). */
  updateService(namespace: string, name: string, mutate: (svc: ServiceObject) => void): ServiceObject {
    const key = keyOf(namespace, name);
    const before = this.services.get(key);
    if (!before) throw new Error(`service ${key} does not exist`);
    const after = clone(before);
    mutate(after);
    // Immutable metadata stays what it was, as the apiserver enforces.
    after.metadata.name = before.metadata.name;
    after.metadata.namespace = before.metadata.namespace;
    after.metadata.uid = before.metadata.uid;
    after.metadata.creationTimestamp = before.metadata.creationTimestamp;
    const rv = this.nextRV();
    after.metadata.resourceVersion = String(rv);
    this.services.set(key, after);
    this.record({ rv, resource: 'services', type: 'MODIFIED', before, after });
    return clone(after);
  }

  setLabels(namespace: string, name: string, labels: Record<string, string>): ServiceObject {
    return this.updateService(namespace, name, (svc) => {
      svc.metadata.labels = { ...labels };
    });
  }

  deleteService(namespace: string, name: string): void {
    this.deleteNamespaced(this.services, 'services', 'service', namespace, name);
  }

  createNamespace(input: NamespaceInput): NamespaceObject {
    if (this.namespaces.has(input.name)) throw new Error(`namespace ${input.name} already exists`);
    if (!/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/.test(input.name)) throw new Error(`namespace name ${JSON.stringify(input.name)} is not a DNS label`);
    const rv = this.nextRV();
    const ns: NamespaceObject = {
      metadata: {
        name: input.name,
        uid: this.nextUid(),
        resourceVersion: String(rv),
        creationTimestamp: input.creationTimestamp ?? now(),
        labels: { ...input.labels, [NAMESPACE_NAME_LABEL]: input.name },
        ...(input.annotations ? { annotations: { ...input.annotations } } : {}),
      },
      spec: { finalizers: ['kubernetes'] },
      status: { phase: 'Active' },
    };
    this.namespaces.set(input.name, ns);
    this.record({ rv, resource: 'namespaces', type: 'ADDED', after: ns });
    return clone(ns);
  }

  /**
   * Applies `mutate` to a copy of the Namespace and stores it as the next version, unless nothing
   * changed (then, as etcd, nothing is written: same resourceVersion, no event).
   */
  updateNamespace(name: string, mutate: (ns: NamespaceObject) => void): NamespaceObject {
    const before = this.namespaces.get(name);
    if (!before) throw new Error(`namespace ${name} does not exist`);
    const after = clone(before);
    mutate(after);
    after.metadata.name = before.metadata.name;
    after.metadata.uid = before.metadata.uid;
    after.metadata.creationTimestamp = before.metadata.creationTimestamp;
    after.metadata.resourceVersion = before.metadata.resourceVersion;
    after.metadata.labels = { ...after.metadata.labels, [NAMESPACE_NAME_LABEL]: name };
    if (after.metadata.annotations !== undefined && Object.keys(after.metadata.annotations).length === 0) delete after.metadata.annotations;
    if (JSON.stringify(after) === JSON.stringify(before)) return clone(before);
    const rv = this.nextRV();
    after.metadata.resourceVersion = String(rv);
    this.namespaces.set(name, after);
    this.record({ rv, resource: 'namespaces', type: 'MODIFIED', before, after });
    return clone(after);
  }

  /** Replaces the Namespace's annotations (as an apply of its manifest would); {} removes them all. */
  setNamespaceAnnotations(name: string, annotations: Record<string, string>): NamespaceObject {
    return this.updateNamespace(name, (ns) => {
      ns.metadata.annotations = { ...annotations };
    });
  }

  /**
   * Deletes a Namespace as the apiserver and the namespace controller do: it turns Terminating
   * (deletionTimestamp set), its Services are deleted, then the Namespace itself.
   */
  deleteNamespace(name: string): void {
    const ns = this.namespaces.get(name);
    if (!ns) throw new Error(`namespace ${name} does not exist`);
    if (ns.status.phase === 'Terminating') throw new Error(`namespace ${name} is already terminating`);
    this.updateNamespace(name, (n) => {
      n.metadata.deletionTimestamp = now();
      n.status.phase = 'Terminating';
    });
    for (const svc of this.sorted('services', { namespace: name, labels: [], fields: [] })) this.deleteService(name, svc.metadata.name);
    this.updateNamespace(name, (n) => {
      n.spec.finalizers = [];
    });
    const before = this.namespaces.get(name)!;
    this.namespaces.delete(name);
    const rv = this.nextRV();
    const after = clone(before);
    after.metadata.resourceVersion = String(rv);
    this.record({ rv, resource: 'namespaces', type: 'DELETED', before, after });
  }

  /** Creates or replaces an EndpointSlice (what the EndpointSlice controller writes for a Service). */
  putEndpointSlice(input: EndpointSliceInput): EndpointSliceObject {
    const key = keyOf(input.namespace, input.name);
    const before = this.endpointSlices.get(key);
    const rv = this.nextRV();
    const slice: EndpointSliceObject = {
      metadata: {
        name: input.name,
        namespace: input.namespace,
        uid: before?.metadata.uid ?? this.nextUid(),
        resourceVersion: String(rv),
        creationTimestamp: before?.metadata.creationTimestamp ?? now(),
        labels: { 'kubernetes.io/service-name': input.service, 'endpointslice.kubernetes.io/managed-by': 'endpointslice-controller.k8s.io' },
      },
      addressType: input.addressType ?? 'IPv4',
      endpoints: structuredClone(input.endpoints),
      ...(input.ports ? { ports: structuredClone(input.ports) } : {}),
    };
    this.endpointSlices.set(key, slice);
    this.record(before === undefined ? { rv, resource: 'endpointslices', type: 'ADDED', after: slice } : { rv, resource: 'endpointslices', type: 'MODIFIED', before, after: slice });
    return clone(slice);
  }

  deleteEndpointSlice(namespace: string, name: string): void {
    this.deleteNamespaced(this.endpointSlices, 'endpointslices', 'endpointslice', namespace, name);
  }

  /** Removes one namespaced object and records its DELETED event at a new resourceVersion. */
  private deleteNamespaced<T extends ServiceObject | EndpointSliceObject>(store: Map<string, T>, resource: 'services' | 'endpointslices', kind: string, namespace: string, name: string): void {
    const key = keyOf(namespace, name);
    const before = store.get(key);
    if (!before) throw new Error(`${kind} ${key} does not exist`);
    store.delete(key);
    const rv = this.nextRV();
    const after = clone(before);
    after.metadata.resourceVersion = String(rv);
    this.record({ rv, resource, type: 'DELETED', before, after });
  }

  /** The stored Namespace, or undefined. */
  getNamespace(name: string): NamespaceObject | undefined {
    const ns = this.namespaces.get(name);
    return ns === undefined ? undefined : clone(ns);
  }

  /** Forgets every retained event: a watch from any resourceVersion before now gets 410 Gone. */
  compactHistory(): void {
    this.history = [];
    this.historyStart = this.rv;
  }

  /** Ends every open watch; `abrupt` destroys the sockets instead of ending the streams cleanly. */
  closeAllWatches(options: { abrupt?: boolean } = {}): void {
    for (const w of [...this.watches]) this.endWatch(w, options.abrupt ?? false);
  }

  /** Sends a BOOKMARK now to every watch that allows them. */
  sendBookmarks(): void {
    for (const w of this.watches) if (w.timers.length > 0) this.bookmark(w);
  }

  /** The next `count` requests get an error Status with this HTTP code (e.g. 500, 503, 403). */
  failNextRequests(count: number, code = 500): void {
    this.failures = { remaining: count, code };
  }

  /** Creates a Secret directly (as `kubectl apply` of a manifest would); data given as text. */
  createSecret(input: { namespace: string; name: string; type?: string; data?: Record<string, string>; labels?: Record<string, string> }): SecretObject {
    const data = input.data === undefined ? undefined : Object.fromEntries(Object.entries(input.data).map(([k, v]) => [k, Buffer.from(v, 'utf8').toString('base64')]));
    const result = this.writeSecret('POST', input.namespace, undefined, {
      metadata: { name: input.name, namespace: input.namespace, ...(input.labels ? { labels: input.labels } : {}) },
      ...(input.type ? { type: input.type } : {}),
      ...(data ? { data } : {}),
    });
    if (result.code !== 201) throw new Error(`createSecret: ${JSON.stringify(result.body)}`);
    return clone(result.body as SecretObject);
  }

  /** Creates a ConfigMap directly (as `kubectl apply` of a manifest would). */
  createConfigMap(input: { namespace: string; name: string; data?: Record<string, string> }): ConfigMapObject {
    const key = keyOf(input.namespace, input.name);
    if (this.configMaps.has(key)) throw new Error(`configmap ${key} already exists`);
    const cm: ConfigMapObject = {
      metadata: { name: input.name, namespace: input.namespace, uid: this.nextUid(), resourceVersion: String(this.nextRV()), creationTimestamp: now() },
      ...(input.data ? { data: { ...input.data } } : {}),
    };
    this.configMaps.set(key, cm);
    return clone(cm);
  }

  /** The stored ConfigMap, or undefined. */
  getConfigMap(namespace: string, name: string): ConfigMapObject | undefined {
    const cm = this.configMaps.get(keyOf(namespace, name));
    return cm === undefined ? undefined : clone(cm);
  }

  /** The stored Secret (data base64), or undefined. */
  getSecret(namespace: string, name: string): SecretObject | undefined {
    const s = this.secrets.get(keyOf(namespace, name));
    return s === undefined ? undefined : clone(s);
  }

  /** One data value of a stored Secret, decoded as UTF-8. */
  secretText(namespace: string, name: string, key: string): string | undefined {
    const v = this.secrets.get(keyOf(namespace, name))?.data?.[key];
    return v === undefined ? undefined : Buffer.from(v, 'base64').toString('utf8');
  }

  /**
   * Test control for races (network latency, in effect): the next `count` requests with `method`
   * are held until all `count` have arrived, then served in arrival order, one after the other. So
   * `holdRequests('GET', 2)` makes two clients read the same state before either writes.
   */
  holdRequests(method: string, count: number): void {
    this.holds.push({ method: method.toUpperCase(), count, queue: [] });
  }

  /** What a list of all Services would return now (without counting a request). */
  snapshot(): ServiceObject[] {
    return this.sorted('services', undefined).map(clone);
  }

  /** What a list of all Namespaces would return now (without counting a request). */
  namespaceSnapshot(): NamespaceObject[] {
    return this.sorted('namespaces', undefined).map(clone);
  }

  // ---- HTTP ----------------------------------------------------------------------------------

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const url = new URL(req.url ?? '/', this.url);
    this.requests.push(`${req.method ?? '?'} ${url.pathname}${url.search}`);
    const hold = this.holds.find((h) => h.method === req.method);
    const serve = (): void => {
      const secret = secretRouteOf(url.pathname);
      const configMap = configMapRouteOf(url.pathname);
      if (secret !== undefined) this.handleSecret(req, res, secret);
      else if (configMap !== undefined) this.handleConfigMap(req, res, configMap);
      else this.handleResource(req, res, url);
    };
    if (hold === undefined) return serve();
    hold.queue.push(serve);
    if (hold.queue.length < hold.count) return;
    this.holds.splice(this.holds.indexOf(hold), 1);
    for (const run of hold.queue) run();
  }

  private handleSecret(req: http.IncomingMessage, res: http.ServerResponse, route: { namespace: string; name?: string }): void {
    const method = req.method ?? 'GET';
    const allowed = route.name === undefined ? method === 'POST' : method === 'GET' || method === 'PUT';
    if (!allowed) {
      // The real apiserver serves these too (list, watch, patch, delete); this fake does not.
      return sendStatus(res, 405, 'MethodNotAllowed', 'the server does not allow this method on the requested resource');
    }
    if (this.failures.remaining > 0) {
      this.failures.remaining--;
      this.counters.failed++;
      return sendStatus(res, this.failures.code, reasonOf(this.failures.code), `injected failure (${this.failures.code})`);
    }
    if (method === 'GET') {
      this.counters.gets++;
      const secret = this.secrets.get(keyOf(route.namespace, route.name!));
      if (!secret) return sendStatus(res, 404, 'NotFound', `secrets "${route.name}" not found`, { name: route.name, kind: 'secrets' });
      return sendJson(res, 200, { apiVersion: 'v1', kind: 'Secret', ...clone(secret) });
    }
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      let body: unknown;
      try {
        body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      } catch (err) {
        return sendStatus(res, 400, 'BadRequest', `error decoding request body: ${(err as Error).message}`);
      }
      const result = this.writeSecret(method as 'POST' | 'PUT', route.namespace, route.name, body);
      sendJson(res, result.code, result.body);
    });
  }

  private handleConfigMap(req: http.IncomingMessage, res: http.ServerResponse, route: { namespace: string; name?: string }): void {
    const method = req.method ?? 'GET';
    if (route.name === undefined || (method !== 'GET' && method !== 'PUT')) return sendStatus(res, 405, 'MethodNotAllowed', 'the server does not allow this method on the requested resource');
    if (this.failures.remaining > 0) {
      this.failures.remaining--;
      this.counters.failed++;
      return sendStatus(res, this.failures.code, reasonOf(this.failures.code), `injected failure (${this.failures.code})`);
    }
    const key = keyOf(route.namespace, route.name);
    if (method === 'GET') {
      this.counters.gets++;
      const cm = this.configMaps.get(key);
      if (!cm) return sendStatus(res, 404, 'NotFound', `configmaps "${route.name}" not found`, { name: route.name, kind: 'configmaps' });
      return sendJson(res, 200, { apiVersion: 'v1', kind: 'ConfigMap', ...clone(cm) });
    }
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      let obj: Record<string, any>;
      try {
        obj = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, any>;
      } catch (err) {
        return sendStatus(res, 400, 'BadRequest', `error decoding request body: ${(err as Error).message}`);
      }
      const name = route.name!;
      const meta = (obj.metadata ?? {}) as Record<string, any>;
      if (meta.name !== name) return sendStatus(res, 400, 'BadRequest', `the name of the object (${meta.name ?? ''}) does not match the name on the URL (${name})`);
      if (meta.namespace !== undefined && meta.namespace !== '' && meta.namespace !== route.namespace) return sendStatus(res, 400, 'BadRequest', 'the namespace of the provided object does not match the namespace sent on the request');
      const existing = this.configMaps.get(key);
      if (!existing) return sendStatus(res, 404, 'NotFound', `configmaps "${name}" not found`, { name, kind: 'configmaps' });
      const rv: unknown = meta.resourceVersion;
      if (rv !== undefined && rv !== '' && rv !== existing.metadata.resourceVersion) {
        return sendStatus(res, 409, 'Conflict', `Operation cannot be fulfilled on configmaps "${name}": the object has been modified; please apply your changes to the latest version and try again`, { name, kind: 'configmaps' });
      }
      const data: Record<string, string> = {};
      for (const [k, v] of Object.entries((obj.data ?? {}) as Record<string, unknown>)) {
        if (typeof v !== 'string') return sendStatus(res, 400, 'BadRequest', `ConfigMap in version "v1" cannot be handled as a ConfigMap: data[${k}] is not a string`);
        if (!/^[-._a-zA-Z0-9]+$/.test(k)) return sendStatus(res, 422, 'Invalid', `ConfigMap "${name}" is invalid: data[${k}]: Invalid value: "${k}": a valid config key must consist of alphanumeric characters, '-', '_' or '.'`);
        data[k] = v;
      }
      if (Object.values(data).reduce((n, v) => n + Buffer.byteLength(v), 0) > 1024 * 1024) return sendStatus(res, 422, 'Invalid', `ConfigMap "${name}" is invalid: []: Too long: must have at most 1048576 bytes`);
      const updated: ConfigMapObject = {
        metadata: { ...existing.metadata, ...(meta.labels ? { labels: { ...meta.labels } } : {}), ...(meta.annotations ? { annotations: { ...meta.annotations } } : {}) },
        ...(Object.keys(data).length > 0 ? { data } : {}),
      };
      // etcd writes nothing (and the resourceVersion stays) when the object did not change.
      const form = (c: ConfigMapObject): string => JSON.stringify([sortedEntries(c.data ?? {}), sortedEntries(c.metadata.labels ?? {}), sortedEntries(c.metadata.annotations ?? {})]);
      if (form(updated) !== form(existing)) updated.metadata.resourceVersion = String(this.nextRV());
      this.configMaps.set(key, updated);
      sendJson(res, 200, { apiVersion: 'v1', kind: 'ConfigMap', ...clone(updated) });
    });
  }

  /** POST (create) or PUT (update) of a Secret, with the apiserver's checks; the HTTP answer. */
  private writeSecret(method: 'POST' | 'PUT', namespace: string, urlName: string | undefined, raw: unknown): { code: number; body: unknown } {
    const status = (code: number, reason: string, message: string, details?: Record<string, unknown>): { code: number; body: unknown } => ({
      code,
      body: { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, ...(details ? { details } : {}), code },
    });
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return status(400, 'BadRequest', 'the body of the request was in an unknown format');
    const obj = raw as Record<string, any>;
    if ((obj.kind !== undefined && obj.kind !== 'Secret') || (obj.apiVersion !== undefined && obj.apiVersion !== 'v1')) {
      return status(400, 'BadRequest', `the API version in the data (${obj.apiVersion}) does not match the expected API version (v1) or kind ${obj.kind} is not Secret`);
    }
    const meta = (obj.metadata ?? {}) as Record<string, any>;
    const name: string | undefined = meta.name;
    if (meta.namespace !== undefined && meta.namespace !== '' && meta.namespace !== namespace) {
      return status(400, 'BadRequest', 'the namespace of the provided object does not match the namespace sent on the request');
    }
    if (urlName !== undefined && name !== urlName) return status(400, 'BadRequest', `the name of the object (${name ?? ''}) does not match the name on the URL (${urlName})`);
    if (typeof name !== 'string' || name === '') return status(422, 'Invalid', 'Secret "" is invalid: metadata.name: Required value: name or generateName is required', { kind: 'Secret' });
    if (!/^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/.test(name) || name.length > 253) {
      return status(422, 'Invalid', `Secret "${name}" is invalid: metadata.name: Invalid value: "${name}": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.'`, { name, kind: 'Secret' });
    }
    // data: base64 strings (what the JSON decoder accepts), then stringData on top (write-only).
    const data: Record<string, string> = {};
    for (const [k, v] of Object.entries((obj.data ?? {}) as Record<string, unknown>)) {
      if (typeof v !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(v) || v.length % 4 !== 0) {
        return status(400, 'BadRequest', `Secret in version "v1" cannot be handled as a Secret: illegal base64 data at input byte 0 (key ${k})`);
      }
      data[k] = v;
    }
    for (const [k, v] of Object.entries((obj.stringData ?? {}) as Record<string, unknown>)) data[k] = Buffer.from(String(v), 'utf8').toString('base64');
    const type: string = typeof obj.type === 'string' && obj.type !== '' ? obj.type : 'Opaque';
    const invalid = (field: string, detail: string): { code: number; body: unknown } =>
      status(422, 'Invalid', `Secret "${name}" is invalid: ${field}: ${detail}`, { name, kind: 'Secret', causes: [{ reason: 'FieldValueInvalid', message: detail, field }] });
    for (const k of Object.keys(data)) {
      if (!/^[-._a-zA-Z0-9]+$/.test(k)) return invalid(`data[${k}]`, `Invalid value: "${k}": a valid config key must consist of alphanumeric characters, '-', '_' or '.'`);
    }
    const size = Object.values(data).reduce((n, v) => n + Buffer.from(v, 'base64').length, 0);
    if (size > 1024 * 1024) return invalid('data', 'Too long: must have at most 1048576 bytes');
    if (type === 'kubernetes.io/tls') {
      for (const k of ['tls.crt', 'tls.key']) if (!(k in data)) return invalid(`data[${k}]`, 'Required value');
    }
    const key = keyOf(namespace, name);
    const existing = this.secrets.get(key);
    const rvParam: unknown = meta.resourceVersion;
    if (method === 'POST') {
      if (rvParam !== undefined && rvParam !== '') return status(500, 'InternalError', 'Internal error occurred: resourceVersion should not be set on objects to be created');
      if (existing) return status(409, 'AlreadyExists', `secrets "${name}" already exists`, { name, kind: 'secrets' });
      const created: SecretObject = {
        metadata: {
          name,
          namespace,
          uid: this.nextUid(),
          resourceVersion: String(this.nextRV()),
          creationTimestamp: now(),
          ...(meta.labels ? { labels: { ...meta.labels } } : {}),
          ...(meta.annotations ? { annotations: { ...meta.annotations } } : {}),
        },
        type,
        ...(obj.immutable === true ? { immutable: true } : {}),
        ...(Object.keys(data).length > 0 ? { data } : {}),
      };
      this.secrets.set(key, created);
      return { code: 201, body: { apiVersion: 'v1', kind: 'Secret', ...clone(created) } };
    }
    if (!existing) return status(404, 'NotFound', `secrets "${name}" not found`, { name, kind: 'secrets' });
    if (rvParam !== undefined && rvParam !== '') {
      if (typeof rvParam !== 'string' || !/^\d+$/.test(rvParam)) return status(400, 'BadRequest', `resourceVersion: Invalid value: ${JSON.stringify(rvParam)}`);
      if (rvParam !== existing.metadata.resourceVersion) {
        return status(409, 'Conflict', `Operation cannot be fulfilled on secrets "${name}": the object has been modified; please apply your changes to the latest version and try again`, { name, kind: 'secrets' });
      }
    }
    if (type !== existing.type) return invalid('type', `Invalid value: "${type}": field is immutable`);
    const sameData = JSON.stringify(sortedEntries(data)) === JSON.stringify(sortedEntries(existing.data ?? {}));
    if (existing.immutable === true && (!sameData || obj.immutable !== true)) return invalid('data', 'Forbidden: field is immutable when `immutable` is set');
    const updated: SecretObject = {
      metadata: {
        name,
        namespace,
        uid: existing.metadata.uid,
        resourceVersion: existing.metadata.resourceVersion,
        creationTimestamp: existing.metadata.creationTimestamp,
        ...(meta.labels ? { labels: { ...meta.labels } } : {}),
        ...(meta.annotations ? { annotations: { ...meta.annotations } } : {}),
      },
      type,
      ...(obj.immutable === true ? { immutable: true } : {}),
      ...(Object.keys(data).length > 0 ? { data } : {}),
    };
    // etcd writes nothing (and the resourceVersion stays) when the object did not change.
    if (JSON.stringify(normalized(updated)) !== JSON.stringify(normalized(existing))) updated.metadata.resourceVersion = String(this.nextRV());
    this.secrets.set(key, updated);
    return { code: 200, body: { apiVersion: 'v1', kind: 'Secret', ...clone(updated) } };
  }

  /** Services and Namespaces: list, watch, and get of one object. */
  private handleResource(req: http.IncomingMessage, res: http.ServerResponse, url: URL): void {
    if (req.method !== 'GET') return sendStatus(res, 405, 'MethodNotAllowed', `the server does not allow this method on the requested resource`);
    const route = routeOf(url.pathname);
    if (route === undefined) return sendStatus(res, 404, 'NotFound', 'the server could not find the requested resource');
    const q = url.searchParams;
    const watching = route.name === undefined && isTrue(q.get('watch'));
    const kind = route.name !== undefined ? 'gets' : watching ? 'watches' : 'lists';
    this.counters[kind]++;
    this.resourceCounters[route.resource][kind]++;
    if (this.failures.remaining > 0) {
      this.failures.remaining--;
      this.counters.failed++;
      return sendStatus(res, this.failures.code, reasonOf(this.failures.code), `injected failure (${this.failures.code})`);
    }
    let selection: Selection;
    try {
      selection = {
        ...(route.namespace !== undefined ? { namespace: route.namespace } : {}),
        labels: parseLabelSelector(q.get('labelSelector') ?? ''),
        fields: parseFieldSelector(q.get('fieldSelector') ?? '', route.resource),
      };
    } catch (err) {
      if (err instanceof BadRequest) return sendStatus(res, 400, 'BadRequest', err.message);
      throw err;
    }
    const kindName = KINDS[route.resource];
    const apiVersion = API_VERSIONS[route.resource];
    if (route.name !== undefined) {
      const obj = this.store(route.resource).get(route.resource === 'namespaces' ? route.name : keyOf(route.namespace ?? '', route.name));
      if (!obj) return sendStatus(res, 404, 'NotFound', `${route.resource} "${route.name}" not found`, { name: route.name, kind: route.resource });
      return sendJson(res, 200, { apiVersion, kind: kindName, ...clone(obj) });
    }
    if (watching) return this.watch(res, route.resource, selection, q);
    const items = this.sorted(route.resource, selection).map(clone);
    return sendJson(res, 200, { kind: `${kindName}List`, apiVersion, metadata: { resourceVersion: String(this.rv) }, items });
  }

  private watch(res: http.ServerResponse, resource: Resource, selection: Selection, q: URLSearchParams): void {
    const rvParam = q.get('resourceVersion') ?? '';
    let from: number | undefined;
    if (rvParam !== '' && rvParam !== '0') {
      if (!/^\d+$/.test(rvParam)) return sendStatus(res, 400, 'BadRequest', `resourceVersion: Invalid value: "${rvParam}": strconv.ParseUint: parsing "${rvParam}": invalid syntax`);
      from = Number(rvParam);
    }
    let timeoutSeconds: number | undefined;
    const t = q.get('timeoutSeconds');
    if (t !== null) {
      if (!/^\d+$/.test(t)) return sendStatus(res, 400, 'BadRequest', `timeoutSeconds: Invalid value: "${t}"`);
      timeoutSeconds = Number(t);
    }
    res.writeHead(200, { 'Content-Type': 'application/json', 'Cache-Control': 'no-cache, private', 'Transfer-Encoding': 'chunked' });
    res.flushHeaders();
    if (from !== undefined && from < this.historyStart) {
      // What the watch cache sends for a resourceVersion it no longer holds.
      writeEvent(res, 'ERROR', {
        kind: 'Status',
        apiVersion: 'v1',
        metadata: {},
        status: 'Failure',
        message: `too old resource version: ${from} (${this.historyStart})`,
        reason: 'Expired',
        code: 410,
      });
      res.end();
      return;
    }
    const w: OpenWatch = { res, resource, selection, timers: [], closed: false };
    if (from === undefined) {
      for (const obj of this.sorted(resource, selection)) writeEvent(res, 'ADDED', obj);
    } else {
      for (const change of this.history) if (change.rv > from) this.deliver(w, change);
    }
    this.watches.add(w);
    res.on('close', () => this.endWatch(w, false));
    if (isTrue(q.get('allowWatchBookmarks'))) w.timers.push(setInterval(() => this.bookmark(w), this.bookmarkIntervalMs));
    if (timeoutSeconds !== undefined && this.honourTimeoutSeconds) w.timers.push(setTimeout(() => this.endWatch(w, false), timeoutSeconds * 1000));
  }

  private bookmark(w: OpenWatch): void {
    if (!w.closed) writeEvent(w.res, 'BOOKMARK', { kind: KINDS[w.resource], apiVersion: API_VERSIONS[w.resource], metadata: { resourceVersion: String(this.rv) } });
  }

  private endWatch(w: OpenWatch, abrupt: boolean): void {
    if (w.closed) return;
    w.closed = true;
    this.watches.delete(w);
    for (const t of w.timers) clearTimeout(t);
    if (abrupt) w.res.destroy();
    else w.res.end();
  }

  private record(change: Change): void {
    this.history.push(change);
    if (this.history.length > this.historyLimit) {
      const dropped = this.history.splice(0, this.history.length - this.historyLimit);
      this.historyStart = dropped[dropped.length - 1]!.rv;
    }
    for (const w of this.watches) this.deliver(w, change);
  }

  /** Sends one change as the watch sees it through its selection. */
  private deliver(w: OpenWatch, change: Change): void {
    if (change.resource !== w.resource) return;
    const was = change.before !== undefined && matches(change.before, w.selection);
    const is = change.type !== 'DELETED' && matches(change.after, w.selection);
    let type: EventType | undefined;
    if (change.type === 'ADDED') type = is ? 'ADDED' : undefined;
    else if (change.type === 'DELETED') type = was ? 'DELETED' : undefined;
    else type = was && is ? 'MODIFIED' : is ? 'ADDED' : was ? 'DELETED' : undefined;
    if (type !== undefined) writeEvent(w.res, type, change.after);
  }

  /** Every object of a resource in etcd key order, through a selection. */
  private sorted(resource: 'services', selection: Selection | undefined): ServiceObject[];
  private sorted(resource: 'namespaces', selection: Selection | undefined): NamespaceObject[];
  private sorted(resource: Resource, selection: Selection | undefined): StoredObject[];
  private sorted(resource: Resource, selection: Selection | undefined): StoredObject[] {
    return [...this.store(resource).entries()]
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([, obj]) => obj)
      .filter((obj) => selection === undefined || matches(obj, selection));
  }

  private store(resource: Resource): Map<string, StoredObject> {
    return resource === 'services' ? this.services : resource === 'namespaces' ? this.namespaces : this.endpointSlices;
  }

  private nextRV(): number {
    return ++this.rv;
  }

  private nextUid(): string {
    const n = (++this.uidCounter).toString(16).padStart(12, '0');
    return `00000000-0000-4000-8000-${n}`;
  }

  private allocateIP(): string {
    const n = ++this.ipCounter;
    return `10.96.${Math.floor(n / 250)}.${(n % 250) + 1}`;
  }
}

// ---- selectors ---------------------------------------------------------------------------------

type LabelRequirement =
  | { op: 'exists' | 'notexists'; key: string }
  | { op: 'in' | 'notin'; key: string; values: string[] };

/** The fields each resource can be selected by (the apiserver's selectable fields, in part). */
const FIELDS: Record<Resource, readonly string[]> = {
  services: ['metadata.name', 'metadata.namespace'],
  namespaces: ['metadata.name', 'status.phase'],
  endpointslices: ['metadata.name', 'metadata.namespace'],
};

const KINDS: Record<Resource, string> = { services: 'Service', namespaces: 'Namespace', endpointslices: 'EndpointSlice' };
const API_VERSIONS: Record<Resource, string> = { services: 'v1', namespaces: 'v1', endpointslices: 'discovery.k8s.io/v1' };

interface FieldRequirement {
  field: string;
  equal: boolean;
  value: string;
}

const LABEL_KEY = /^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/;
const LABEL_VALUE = /^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$/;

/** Parses a label selector as the apiserver does (k8s.io/apimachinery/pkg/labels). */
export function parseLabelSelector(text: string): LabelRequirement[] {
  const reqs: LabelRequirement[] = [];
  for (const raw of splitTopLevel(text)) {
    const part = raw.trim();
    if (part === '') {
      if (text.trim() === '') continue;
      throw new BadRequest(`unable to parse requirement: found '', expected: identifier`);
    }
    let m: RegExpMatchArray | null;
    if ((m = /^!\s*(\S+)$/.exec(part))) {
      reqs.push({ op: 'notexists', key: checkKey(m[1]!) });
    } else if ((m = /^(\S+?)\s+(in|notin)\s*\(([^()]*)\)$/.exec(part))) {
      const values = m[3]!.split(',').map((v) => checkValue(v.trim()));
      reqs.push({ op: m[2] === 'in' ? 'in' : 'notin', key: checkKey(m[1]!), values });
    } else if ((m = /^([^=!\s]+)\s*(==|=|!=)\s*(\S*)$/.exec(part))) {
      reqs.push({ op: m[2] === '!=' ? 'notin' : 'in', key: checkKey(m[1]!), values: [checkValue(m[3]!)] });
    } else if (/^[^=!\s()]+$/.test(part)) {
      reqs.push({ op: 'exists', key: checkKey(part) });
    } else {
      throw new BadRequest(`unable to parse requirement: ${JSON.stringify(part)}`);
    }
  }
  return reqs;
}

function splitTopLevel(text: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '(') depth++;
    else if (c === ')') depth--;
    else if (c === ',' && depth === 0) {
      parts.push(text.slice(start, i));
      start = i + 1;
    }
  }
  parts.push(text.slice(start));
  return parts;
}

function checkKey(key: string): string {
  if (!LABEL_KEY.test(key)) throw new BadRequest(`invalid label key "${key}": name part must consist of alphanumeric characters, '-', '_' or '.'`);
  return key;
}

function checkValue(value: string): string {
  if (!LABEL_VALUE.test(value)) throw new BadRequest(`invalid label value: "${value}": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.'`);
  return value;
}

function parseFieldSelector(text: string, resource: Resource): FieldRequirement[] {
  const reqs: FieldRequirement[] = [];
  for (const raw of text.split(',')) {
    const part = raw.trim();
    if (part === '') continue;
    const m = /^([a-zA-Z.]+)\s*(==|=|!=)\s*(.*)$/.exec(part);
    if (!m) throw new BadRequest(`invalid selector: '${part}'; can't understand '${part}'`);
    const field = m[1]!;
    const known = FIELDS[resource];
    if (!known.includes(field)) throw new BadRequest(`"${field}" is not a known field selector: only ${known.map((f) => `"${f}"`).join(', ')}`);
    reqs.push({ field, equal: m[2] !== '!=', value: m[3]! });
  }
  return reqs;
}

function matches(obj: StoredObject, s: Selection): boolean {
  const namespace = 'namespace' in obj.metadata ? obj.metadata.namespace : '';
  if (s.namespace !== undefined && namespace !== s.namespace) return false;
  const labels = obj.metadata.labels ?? {};
  for (const r of s.labels) {
    const has = Object.prototype.hasOwnProperty.call(labels, r.key);
    const value = labels[r.key];
    switch (r.op) {
      case 'exists':
        if (!has) return false;
        break;
      case 'notexists':
        if (has) return false;
        break;
      case 'in':
        if (!has || !r.values.includes(value!)) return false;
        break;
      case 'notin':
        if (has && r.values.includes(value!)) return false;
        break;
    }
  }
  for (const f of s.fields) {
    const actual = f.field === 'metadata.name' ? obj.metadata.name : f.field === 'metadata.namespace' ? namespace : 'status' in obj && 'phase' in obj.status ? obj.status.phase : '';
    if ((actual === f.value) !== f.equal) return false;
  }
  return true;
}

// ---- wire helpers ------------------------------------------------------------------------------

function routeOf(path: string): { resource: Resource; namespace?: string; name?: string } | undefined {
  if (path === '/api/v1/services') return { resource: 'services' };
  if (path === '/api/v1/namespaces') return { resource: 'namespaces' };
  if (path === '/apis/discovery.k8s.io/v1/endpointslices') return { resource: 'endpointslices' };
  const slices = /^\/apis\/discovery\.k8s\.io\/v1\/namespaces\/([a-z0-9]([-a-z0-9]*[a-z0-9])?)\/endpointslices(?:\/([^/]+))?$/.exec(path);
  if (slices) return slices[3] === undefined ? { resource: 'endpointslices', namespace: slices[1]! } : { resource: 'endpointslices', namespace: slices[1]!, name: decodeURIComponent(slices[3]) };
  const one = /^\/api\/v1\/namespaces\/([^/]+)$/.exec(path);
  if (one) return { resource: 'namespaces', name: decodeURIComponent(one[1]!) };
  const m = /^\/api\/v1\/namespaces\/([a-z0-9]([-a-z0-9]*[a-z0-9])?)\/services(?:\/([^/]+))?$/.exec(path);
  if (!m) return undefined;
  return m[3] === undefined ? { resource: 'services', namespace: m[1]! } : { resource: 'services', namespace: m[1]!, name: decodeURIComponent(m[3]) };
}

function secretRouteOf(path: string): { namespace: string; name?: string } | undefined {
  const m = /^\/api\/v1\/namespaces\/([a-z0-9]([-a-z0-9]*[a-z0-9])?)\/secrets(?:\/([^/]+))?$/.exec(path);
  if (!m) return undefined;
  return m[3] === undefined ? { namespace: m[1]! } : { namespace: m[1]!, name: decodeURIComponent(m[3]) };
}

function configMapRouteOf(path: string): { namespace: string; name?: string } | undefined {
  const m = /^\/api\/v1\/namespaces\/([a-z0-9]([-a-z0-9]*[a-z0-9])?)\/configmaps(?:\/([^/]+))?$/.exec(path);
  if (!m) return undefined;
  return m[3] === undefined ? { namespace: m[1]! } : { namespace: m[1]!, name: decodeURIComponent(m[3]) };
}

function sortedEntries(o: Record<string, unknown>): [string, unknown][] {
  return Object.entries(o).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}

/** A Secret in a key-order-independent form, to tell a no-op update. */
function normalized(s: SecretObject): unknown {
  return {
    labels: sortedEntries(s.metadata.labels ?? {}),
    annotations: sortedEntries(s.metadata.annotations ?? {}),
    type: s.type,
    immutable: s.immutable ?? false,
    data: sortedEntries(s.data ?? {}),
  };
}

function writeEvent(res: http.ServerResponse, type: string, object: unknown): void {
  res.write(`${JSON.stringify({ type, object })}\n`);
}

function sendJson(res: http.ServerResponse, code: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(code, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
}

function sendStatus(res: http.ServerResponse, code: number, reason: string, message: string, details?: Record<string, unknown>): void {
  sendJson(res, code, { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, ...(details ? { details } : {}), code });
}

function reasonOf(code: number): string {
  const reasons: Record<number, string> = { 400: 'BadRequest', 401: 'Unauthorized', 403: 'Forbidden', 404: 'NotFound', 410: 'Expired', 429: 'TooManyRequests', 500: 'InternalError', 503: 'ServiceUnavailable', 504: 'Timeout' };
  return reasons[code] ?? 'Unknown';
}

function isTrue(v: string | null): boolean {
  return v === 'true' || v === '1';
}

/** A creationTimestamp as the apiserver writes it: whole seconds, RFC 3339. */
function now(): string {
  return new Date(Math.floor(Date.now() / 1000) * 1000).toISOString().replace('.000Z', 'Z');
}

function keyOf(namespace: string, name: string): string {
  return `${namespace}/${name}`;
}

function clone<T>(v: T): T {
  return structuredClone(v);
}
