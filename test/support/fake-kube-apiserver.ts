/**
 * A Kubernetes API server for Services only, small enough to read and faithful where informers care:
 * list and watch with label selectors and resourceVersion semantics, so the real
 * @kubernetes/client-node can be tested on a machine where no API server can run.
 *
 * What it does as the real apiserver does:
 * - One global, monotonically increasing resourceVersion (etcd's revision), a decimal string on the
 *   wire. Every create, update and delete takes the next one; a DELETED event carries the object as
 *   it was, with the deletion's resourceVersion.
 * - GET /api/v1/services and /api/v1/namespaces/{ns}/services: a ServiceList whose
 *   metadata.resourceVersion is the current revision; items in etcd key order (namespace, name).
 * - `?watch=true&resourceVersion=N`: HTTP 200 at once, then newline-delimited JSON events for every
 *   change after N, replayed from the retained history and then live. Without a resourceVersion (or
 *   with "0") it starts with synthetic ADDED events for what exists now.
 * - N older than the retained history (see compactHistory) -> one ERROR event whose object is a
 *   Status with code 410, reason Expired ("too old resource version"), then the stream ends. That is
 *   what the watch cache sends; the client must list again.
 * - labelSelector (`k`, `!k`, `k=v`, `k==v`, `k!=v`, `k in (a,b)`, `k notin (a,b)`, comma = AND) and
 *   fieldSelector (metadata.name, metadata.namespace) on list and watch. On a watch, an update that
 *   moves an object into the selection is ADDED and one that moves it out is DELETED.
 * - allowWatchBookmarks=true -> periodic BOOKMARK events carrying only the current resourceVersion.
 * - timeoutSeconds ends the watch (cleanly) after that many seconds.
 * - Errors are Status objects with the real reasons (BadRequest, NotFound, MethodNotAllowed, ...).
 *
 * Not modelled: writes over HTTP (tests use the methods below), authentication, pagination
 * (limit/continue), resourceVersionMatch, protobuf, other resources.
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
  readonly type: EventType;
  /** Before the change (MODIFIED, DELETED). */
  readonly before?: ServiceObject;
  /** After the change; for DELETED, the object as deleted, with the deletion's resourceVersion. */
  readonly after: ServiceObject;
}

interface Selection {
  readonly namespace?: string;
  readonly labels: LabelRequirement[];
  readonly fields: FieldRequirement[];
}

interface OpenWatch {
  readonly res: http.ServerResponse;
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
        creationTimestamp: input.creationTimestamp ?? new Date(Math.floor(Date.now() / 1000) * 1000).toISOString().replace('.000Z', 'Z'),
        ...(input.labels ? { labels: { ...input.labels } } : {}),
      },
      spec,
      status: { loadBalancer: {} },
    };
    this.services.set(key, svc);
    this.record({ rv, type: 'ADDED', after: svc });
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
    this.record({ rv, type: 'MODIFIED', before, after });
    return clone(after);
  }

  setLabels(namespace: string, name: string, labels: Record<string, string>): ServiceObject {
    return this.updateService(namespace, name, (svc) => {
      svc.metadata.labels = { ...labels };
    });
  }

  deleteService(namespace: string, name: string): void {
    const key = keyOf(namespace, name);
    const before = this.services.get(key);
    if (!before) throw new Error(`service ${key} does not exist`);
    this.services.delete(key);
    const rv = this.nextRV();
    const after = clone(before);
    after.metadata.resourceVersion = String(rv);
    this.record({ rv, type: 'DELETED', before, after });
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

  /** What a list of all Services would return now (without counting a request). */
  snapshot(): ServiceObject[] {
    return this.sorted(undefined).map(clone);
  }

  // ---- HTTP ----------------------------------------------------------------------------------

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const url = new URL(req.url ?? '/', this.url);
    this.requests.push(`${req.method ?? '?'} ${url.pathname}${url.search}`);
    if (req.method !== 'GET') return sendStatus(res, 405, 'MethodNotAllowed', `the server does not allow this method on the requested resource`);
    const route = routeOf(url.pathname);
    if (route === undefined) return sendStatus(res, 404, 'NotFound', 'the server could not find the requested resource');
    const q = url.searchParams;
    const watching = route.name === undefined && isTrue(q.get('watch'));
    if (route.name !== undefined) this.counters.gets++;
    else if (watching) this.counters.watches++;
    else this.counters.lists++;
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
        fields: parseFieldSelector(q.get('fieldSelector') ?? ''),
      };
    } catch (err) {
      if (err instanceof BadRequest) return sendStatus(res, 400, 'BadRequest', err.message);
      throw err;
    }
    if (route.name !== undefined) {
      const svc = this.services.get(keyOf(route.namespace ?? '', route.name));
      if (!svc) return sendStatus(res, 404, 'NotFound', `services "${route.name}" not found`, { name: route.name, kind: 'services' });
      return sendJson(res, 200, { apiVersion: 'v1', kind: 'Service', ...clone(svc) });
    }
    if (watching) return this.watch(res, selection, q);
    const items = this.sorted(selection).map(clone);
    return sendJson(res, 200, { kind: 'ServiceList', apiVersion: 'v1', metadata: { resourceVersion: String(this.rv) }, items });
  }

  private watch(res: http.ServerResponse, selection: Selection, q: URLSearchParams): void {
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
    const w: OpenWatch = { res, selection, timers: [], closed: false };
    if (from === undefined) {
      for (const svc of this.sorted(selection)) writeEvent(res, 'ADDED', svc);
    } else {
      for (const change of this.history) if (change.rv > from) this.deliver(w, change);
    }
    this.watches.add(w);
    res.on('close', () => this.endWatch(w, false));
    if (isTrue(q.get('allowWatchBookmarks'))) w.timers.push(setInterval(() => this.bookmark(w), this.bookmarkIntervalMs));
    if (timeoutSeconds !== undefined && this.honourTimeoutSeconds) w.timers.push(setTimeout(() => this.endWatch(w, false), timeoutSeconds * 1000));
  }

  private bookmark(w: OpenWatch): void {
    if (!w.closed) writeEvent(w.res, 'BOOKMARK', { kind: 'Service', apiVersion: 'v1', metadata: { resourceVersion: String(this.rv) } });
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
    const was = change.before !== undefined && matches(change.before, w.selection);
    const is = change.type !== 'DELETED' && matches(change.after, w.selection);
    let type: EventType | undefined;
    if (change.type === 'ADDED') type = is ? 'ADDED' : undefined;
    else if (change.type === 'DELETED') type = was ? 'DELETED' : undefined;
    else type = was && is ? 'MODIFIED' : is ? 'ADDED' : was ? 'DELETED' : undefined;
    if (type !== undefined) writeEvent(w.res, type, change.after);
  }

  private sorted(selection: Selection | undefined): ServiceObject[] {
    return [...this.services.entries()]
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([, svc]) => svc)
      .filter((svc) => selection === undefined || matches(svc, selection));
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

interface FieldRequirement {
  field: 'metadata.name' | 'metadata.namespace';
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

function parseFieldSelector(text: string): FieldRequirement[] {
  const reqs: FieldRequirement[] = [];
  for (const raw of text.split(',')) {
    const part = raw.trim();
    if (part === '') continue;
    const m = /^([a-zA-Z.]+)\s*(==|=|!=)\s*(.*)$/.exec(part);
    if (!m) throw new BadRequest(`invalid selector: '${part}'; can't understand '${part}'`);
    const field = m[1]!;
    if (field !== 'metadata.name' && field !== 'metadata.namespace') {
      throw new BadRequest(`"${field}" is not a known field selector: only "metadata.name", "metadata.namespace"`);
    }
    reqs.push({ field, equal: m[2] !== '!=', value: m[3]! });
  }
  return reqs;
}

function matches(svc: ServiceObject, s: Selection): boolean {
  if (s.namespace !== undefined && svc.metadata.namespace !== s.namespace) return false;
  const labels = svc.metadata.labels ?? {};
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
    const actual = f.field === 'metadata.name' ? svc.metadata.name : svc.metadata.namespace;
    if ((actual === f.value) !== f.equal) return false;
  }
  return true;
}

// ---- wire helpers ------------------------------------------------------------------------------

function routeOf(path: string): { namespace?: string; name?: string } | undefined {
  if (path === '/api/v1/services') return {};
  const m = /^\/api\/v1\/namespaces\/([a-z0-9]([-a-z0-9]*[a-z0-9])?)\/services(?:\/([^/]+))?$/.exec(path);
  if (!m) return undefined;
  return m[3] === undefined ? { namespace: m[1]! } : { namespace: m[1]!, name: decodeURIComponent(m[3]) };
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

function keyOf(namespace: string, name: string): string {
  return `${namespace}/${name}`;
}

function clone<T>(v: T): T {
  return structuredClone(v);
}
