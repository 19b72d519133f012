// The Docker source: running containers labelled with pgroute's (or xdatabase-proxy's) labels.
//
// It follows the Engine's events stream and re-lists the running containers whenever one may have
// changed, `settleMs` after the event (dockerd emits pause and network connect events before its
// container list shows them: a list right away still shows the old state), and every `resyncMs` as
// a safety net. Every list is pushed as a view: the pipeline compares and throttles.
// Labels are filtered here rather than by the Engine because two vocabularies count.
//
// When dockerd goes away the events stream ends; the source keeps the last view (an outage never
// empties it), reconnects with backoff (backoff.ts: jittered, capped at `retryMaxMs`) and re-lists once it is back.
// Subscribing comes before listing, so nothing that happens in between is missed.
// At start, dockerd unreachable is waited for as the Kubernetes API server is (first-view.ts): retried
// with backoff, a warning every 10 s, /readyz 503 meanwhile; `plan`, which reads one view, gives up
// after firstViewTimeoutMs instead.

import { StringDecoder } from 'node:string_decoder';
import Dockerode from 'dockerode';
import type { Logger } from 'pino';
import { backoffDelay } from './backoff.js';
import { awaitFirstView, WAIT_LOG_MS, withDeadline } from './first-view.js';
import { mergeClaims } from './labels.js';
import type { SourceView, TenantSource } from './source.js';
import type { ContainerSummary } from './docker/claims.js';
import { CreatedRecords } from './docker/created.js';
import { dockerClaims, type Constraint } from './docker/ownership.js';
import { EVENT_TYPES, EventLineParser, isRelevantEvent } from './docker/events.js';

export { NETWORK_LABEL, containerClaims } from './docker/claims.js';

/** What the source needs of the Engine API (a Dockerode instance is adapted to it; tests pass fakes). */
export interface DockerApi {
  listContainers(options: { all?: boolean; filters?: { [key: string]: string[] } }): Promise<readonly ContainerSummary[]>;
  getEvents(options: { filters?: { type?: string[] } }): Promise<NodeJS.ReadableStream>;
}

export interface DockerSourceOptions {
  /** Engine client; default: new Dockerode() (/var/run/docker.sock, or DOCKER_HOST). */
  readonly docker?: Dockerode | DockerApi;
  /** Docker network whose IP to use; default: each container's `pgroute.network` label, else its first network with an IP. */
  readonly network?: string;
  /** Which containers may declare tenants besides those `tenant create` made (docker/ownership.ts); default: none. */
  readonly admission?: { readonly exposeByDefault: boolean; readonly constraints: readonly Constraint[] };
  /** Where `tenant create` records the containers it made (<stateDir>/tenants); without it none counts as pgroute's. */
  readonly stateDir?: string;
  /** Full re-list period, a safety net behind the events stream (default 30 s). */
  readonly resyncMs?: number;
  /** How long after an event dockerd's list is trusted to show it (default 50 ms); the events in between cost one list. */
  readonly settleMs?: number;
  /** Reconnect backoff (backoff.ts): first delay, doubled up to the cap, with jitter (defaults 100 ms, 2 s). */
  readonly retryMinMs?: number;
  readonly retryMaxMs?: number;
  /** start() rejects when no first view could be made within this time; default: it waits as long as it takes, warning every waitLogMs. */
  readonly firstViewTimeoutMs?: number;
  /** While a first view is awaited (without firstViewTimeoutMs), a warning repeats this often (default 10 s). */
  readonly waitLogMs?: number;
  /** A list taking longer than this counts as failed (default 10 s). */
  readonly listTimeoutMs?: number;
  readonly log: Logger;
}

/** What to check while dockerd does not answer (first-view.ts). */
/** Where a default client (new Dockerode()) reaches the engine, as messages name it. */
export function defaultDockerEndpoint(): string {
  return process.env.DOCKER_HOST || 'unix:///var/run/docker.sock';
}

export const DOCKER_CHECK = 'check that dockerd is running and its socket (DOCKER_HOST, default /var/run/docker.sock) is reachable from here';

export class DockerSource implements TenantSource {
  readonly name = 'docker';

  private readonly docker: DockerApi;
  private readonly endpoint: string;
  private readonly log: Logger;
  private readonly network: string | undefined;
  private readonly admission: { readonly exposeByDefault: boolean; readonly constraints: readonly Constraint[] };
  private readonly records: CreatedRecords;
  private readonly resyncMs: number;
  private readonly settleMs: number;
  private readonly retryMinMs: number;
  private readonly retryMaxMs: number;
  private readonly firstViewTimeoutMs: number | undefined;
  private readonly waitLogMs: number;
  private readonly listTimeoutMs: number;

  private onView: ((view: SourceView) => void) | undefined;
  private started = false;
  private stopped = false;
  private stream: NodeJS.ReadableStream | undefined;
  private watching: Promise<void> | undefined;
  private listing: Promise<boolean> | undefined;
  private dirty = false;
  private listSoon: NodeJS.Timeout | undefined;
  private resyncTimer: NodeJS.Timeout | undefined;
  private wake: (() => void) | undefined;
  private lastView: SourceView | undefined;
  private firstView: { resolve: () => void; reject: (err: Error) => void } | undefined;
  private lastError: string | undefined;
  /** Since when Docker has been unreachable (ms), or undefined while connected. */
  private downSince: number | undefined;
  private lastDownLog = 0;
  /**
   * Containers that died but may still be listed as running: dockerd emits `die` before it has
   * released the container's network and marked it stopped (hundreds of ms on a busy host).
   */
  private readonly died = new Set<string>();

  constructor(opts: DockerSourceOptions) {
    const docker = opts.docker ?? new Dockerode();
    this.docker = docker instanceof Dockerode ? fromDockerode(docker) : docker;
    this.endpoint = opts.docker === undefined ? defaultDockerEndpoint() : describeEndpoint(docker);
    this.log = opts.log.child({ source: 'docker' });
    this.network = opts.network;
    this.admission = opts.admission ?? { exposeByDefault: false, constraints: [] };
    this.records = new CreatedRecords(opts.stateDir);
    this.resyncMs = opts.resyncMs ?? 30_000;
    this.settleMs = opts.settleMs ?? 50;
    this.retryMinMs = opts.retryMinMs ?? 100;
    this.retryMaxMs = opts.retryMaxMs ?? 2_000;
    this.firstViewTimeoutMs = opts.firstViewTimeoutMs;
    this.waitLogMs = opts.waitLogMs ?? WAIT_LOG_MS;
    this.listTimeoutMs = opts.listTimeoutMs ?? 10_000;
  }

  async start(onView: (view: SourceView) => void): Promise<void> {
    if (this.started) throw new Error('DockerSource.start() was called twice');
    this.started = true;
    this.onView = onView;
    const first = new Promise<void>((resolve, reject) => (this.firstView = { resolve, reject }));
    this.watching = this.watch();
    this.resyncTimer = setInterval(() => {
      if (this.downSince === undefined) void this.requestList('periodic resync');
    }, this.resyncMs);
    const what = (): { what: string; lastError?: string } | undefined =>
      this.firstView === undefined ? undefined : { what: `the first list of Docker containers at ${this.endpoint}`, ...(this.lastError === undefined ? {} : { lastError: this.lastError }) };
    await awaitFirstView(first, {
      log: this.log,
      intervalMs: this.waitLogMs,
      waiting: what,
      check: DOCKER_CHECK,
      ...(this.firstViewTimeoutMs === undefined ? {} : { giveUpMs: this.firstViewTimeoutMs }),
      stop: () => this.stop(),
    });
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.resyncTimer);
    clearTimeout(this.listSoon);
    this.resyncTimer = this.listSoon = undefined;
    this.wake?.();
    destroy(this.stream);
    await this.watching;
    await this.listing;
    this.onView = undefined;
    this.firstView?.reject(new Error(`the docker source was stopped before its first list of containers at ${this.endpoint}`));
    this.firstView = undefined;
  }

  /** The last view pushed (for status output and tests). */
  get view(): SourceView | undefined {
    return this.lastView;
  }

  /** Whether the events stream is currently connected. */
  get connected(): boolean {
    return this.downSince === undefined && this.stream !== undefined;
  }

  // Subscribe, list, follow until the stream ends; then back off and do it again.
  private async watch(): Promise<void> {
    let failures = 0;
    while (!this.stopped) {
      let stream: NodeJS.ReadableStream;
      try {
        stream = await this.docker.getEvents({ filters: { type: [...EVENT_TYPES] } });
      } catch (err) {
        this.markDown(`cannot subscribe to events: ${errorText(err)}`);
        await this.pause(backoffDelay(++failures, { initialMs: this.retryMinMs, maxMs: this.retryMaxMs }));
        continue;
      }
      if (this.stopped) {
        destroy(stream);
        break;
      }
      this.stream = stream;
      this.died.clear();
      const ended = this.follow(stream);
      const listed = await this.requestList(this.downSince === undefined ? 'start' : 'reconnected');
      if (!listed) {
        // Subscribed but cannot list: treat it like an outage rather than trusting a stale view.
        destroy(stream);
        await ended;
        this.stream = undefined;
        if (this.stopped) break;
        this.markDown(`cannot list containers: ${this.lastError ?? 'unknown error'}`);
        await this.pause(backoffDelay(++failures, { initialMs: this.retryMinMs, maxMs: this.retryMaxMs }));
        continue;
      }
      if (this.downSince !== undefined) {
        this.log.info({ endpoint: this.endpoint, downMs: Date.now() - this.downSince }, `reconnected to Docker at ${this.endpoint} after ${Date.now() - this.downSince} ms; containers re-listed`);
        this.downSince = undefined;
      }
      failures = 0;
      const why = await ended;
      this.stream = undefined;
      if (this.stopped) break;
      this.markDown(`events stream ended (${why})`);
      await this.pause(backoffDelay(++failures, { initialMs: this.retryMinMs, maxMs: this.retryMaxMs }));
    }
  }

  /** Reads events until the stream ends; resolves with why it ended. */
  private follow(stream: NodeJS.ReadableStream): Promise<string> {
    const parser = new EventLineParser();
    const decoder = new StringDecoder('utf8');
    return new Promise((resolve) => {
      let done = false;
      const finish = (why: string): void => {
        if (done) return;
        done = true;
        stream.removeAllListeners('data');
        resolve(why);
      };
      stream.on('data', (chunk: Buffer | string) => {
        for (const event of parser.push(typeof chunk === 'string' ? chunk : decoder.write(chunk))) {
          const id = event.Actor?.ID;
          if (event.Type === 'container' && id !== undefined) {
            if (event.Action === 'die') this.died.add(id);
            else if (event.Action === 'start' || event.Action === 'restart') this.died.delete(id);
          }
          if (isRelevantEvent(event)) {
            this.log.debug({ type: event.Type, action: event.Action, id: event.Actor?.ID?.slice(0, 12) }, 'docker event');
            this.schedule();
          }
        }
      });
      stream.on('end', () => finish('closed by dockerd'));
      stream.on('close', () => finish('connection closed'));
      stream.on('error', (err: unknown) => finish(errorText(err)));
    });
  }

  /**
   * A relevant event lists settleMs later, once dockerd's list shows it (not a throttle: the
   * pipeline throttles); the events in between cost that one list.
   */
  private schedule(): void {
    if (this.listSoon !== undefined || this.stopped) return;
    this.listSoon = setTimeout(() => {
      this.listSoon = undefined;
      void this.requestList('event');
    }, this.settleMs);
  }

  /** Lists now, or once more after the list in flight; resolves true when the resulting list succeeded. */
  private requestList(reason: string): Promise<boolean> {
    this.dirty = true;
    this.listing ??= (async () => {
      let ok = false;
      try {
        while (this.dirty && !this.stopped) {
          this.dirty = false;
          ok = await this.listOnce(reason);
        }
      } finally {
        this.listing = undefined;
      }
      return ok;
    })();
    return this.listing;
  }

  private async listOnce(reason: string): Promise<boolean> {
    let containers: readonly ContainerSummary[];
    try {
      containers = await withDeadline(this.docker.listContainers({ all: false, filters: { status: ['running'] } }), this.listTimeoutMs, 'listing containers');
    } catch (err) {
      this.lastError = errorText(err);
      this.log.warn({ err: this.lastError, endpoint: this.endpoint }, `cannot list Docker containers at ${this.endpoint} (${reason}): ${this.lastError}; keeping the last view`);
      // A list failing while the stream looks alive means the connection is dead: reconnect.
      destroy(this.stream);
      return false;
    }
    if (this.stopped) return false;
    const listed = new Set(containers.map((c) => c.Id));
    for (const id of this.died) if (!listed.has(id)) this.died.delete(id); // dockerd caught up
    const running = this.died.size === 0 ? containers : containers.filter((c) => !this.died.has(c.Id));
    const records = await this.records.read();
    if (records.error !== undefined) this.log.warn({ err: records.error }, `${records.error}; keeping the last records of the containers pgroute created`);
    const { claims, refused } = dockerClaims(running, { network: this.network, admission: { ...this.admission, created: records.created } });
    const view = mergeClaims(claims, refused);
    this.lastView = view;
    this.log.debug({ reason, tenants: view.snapshot.tenants.length, refused: view.snapshot.refused.length, containers: running.length }, 'docker view listed');
    this.onView?.(view);
    this.firstView?.resolve();
    this.firstView = undefined;
    return true;
  }

  private markDown(why: string): void {
    this.lastError = why;
    const now = Date.now();
    if (this.downSince === undefined) {
      this.downSince = now;
      this.lastDownLog = now;
      const kept = this.lastView === undefined ? 'no view yet' : `keeping the last view (${this.lastView.snapshot.tenants.length} tenants)`;
      this.log.warn({ endpoint: this.endpoint, err: why }, `lost Docker at ${this.endpoint}: ${why}; ${kept}; reconnecting every ≤${this.retryMaxMs} ms`);
    } else if (now - this.lastDownLog >= 30_000) {
      this.lastDownLog = now;
      this.log.warn({ endpoint: this.endpoint, err: why, downMs: now - this.downSince }, `still cannot reach Docker at ${this.endpoint} after ${Math.round((now - this.downSince) / 1000)} s: ${why}`);
    } else {
      this.log.debug({ err: why }, 'docker reconnect attempt failed');
    }
  }

  private pause(ms: number): Promise<void> {
    if (this.stopped) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      const self = this;
      function done(): void {
        clearTimeout(timer);
        if (self.wake === done) self.wake = undefined;
        resolve();
      }
      this.wake = done;
    });
  }
}

function destroy(stream: NodeJS.ReadableStream | undefined): void {
  const s = stream as (NodeJS.ReadableStream & { destroy?: (err?: Error) => void }) | undefined;
  s?.destroy?.();
}

function errorText(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as NodeJS.ErrnoException).code;
    return code !== undefined && !err.message.includes(code) ? `${code}: ${err.message}` : err.message;
  }
  return String(err);
}

function fromDockerode(docker: Dockerode): DockerApi {
  return {
    listContainers: (options) => docker.listContainers(options),
    getEvents: (options) => docker.getEvents(options as Dockerode.GetEventsOptions),
  };
}

function describeEndpoint(docker: Dockerode | DockerApi): string {
  const modem = (docker as { modem?: { socketPath?: unknown; host?: unknown; port?: unknown; protocol?: unknown } }).modem;
  if (typeof modem?.socketPath === 'string') return `unix://${modem.socketPath}`;
  if (typeof modem?.host === 'string') return `${String(modem.protocol ?? 'http')}://${modem.host}${modem.port === undefined ? '' : `:${String(modem.port)}`}`;
  return 'the Docker API';
}
