// The agent's Prometheus metrics. One registry per agent instance so tests can run several.
//
// Hot path: the per-decision figures (frames, decisions, decision latency) are counted in plain
// integer fields of `AgentMetrics.hot` and handed to prom-client only when it collects (a scrape),
// so a decision does no label hashing and no prom-client call. The other metrics (errors,
// connections, route table) change rarely and use prom-client directly.
//
// Conventions (docs/monitoring.md): Node's default process metrics keep their standard names
// (process_*, nodejs_*), labels never carry a tenant or target name (those come from HAProxy's
// per-backend series joined through pgroute_backend_info), one event is counted by one counter,
// and every series whose labels are known in advance exists from the start (at 0).

import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { buildInfo, type BuildInfo } from './build-info.js';
import type { HoldCause, RefusalReason } from './decision/types.js';
import type { FrameKind } from './spop/frames.js';

export interface AgentMetrics {
  readonly registry: Registry;
  /** pgroute_build_info: 1, labelled with what runs; see setBuildInfo(). */
  readonly buildInfo: Gauge<BuildInfoLabel>;
  /** Fed from `hot` at collect time; do not inc() it directly (a scrape resets it from `hot`). */
  readonly decisions: Counter<'outcome' | 'reason'>;
  /** Fed from `hot` at collect time (see DECISION_SAMPLE_EVERY). */
  readonly decisionSeconds: Histogram<never>;
  /** Fed from `hot` at collect time; do not inc() it directly. */
  readonly frames: Counter<'direction' | 'type'>;
  readonly errors: Counter<'kind'>;
  readonly haproxyConnections: Gauge<never>;
  /** Read from the bound route store when collected (see bindRouteTable). */
  readonly routeTableTenants: Gauge<never>;
  /** routes.json loads of `pgroute agent` (at start and on SIGHUP), by result. */
  readonly routeTableLoads: Counter<'result'>;
  /** The route table whose size pgroute_agent_route_table_tenants reports (the agent binds its store). */
  bindRouteTable(source: RouteTableSource): void;
  /** Copies of a CancelRequest sent to the address's further backends, by result (server/cancel-copies.ts). */
  readonly cancelCopies: Counter<'result'>;
  /** The hot-path counters behind `decisions`, `decisionSeconds` and `frames`. */
  readonly hot: HotCounters;
}

/** Upper bounds (seconds) of the decision-latency histogram. */
export const DECISION_BUCKETS: readonly number[] = [0.000005, 0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.005];

/**
 * One decision in this many is timed for pgroute_agent_decision_seconds (two clock reads cost a
 * few percent of a decision). Must be a power of two. The first decision of the process is timed.
 */
export const DECISION_SAMPLE_EVERY = 16;
const SAMPLE_MASK = DECISION_SAMPLE_EVERY - 1;

/** What the route-table gauge reads: the table in use now. */
export interface RouteTableSource {
  readonly table: { readonly tenants: { readonly size: number } };
}

/** Every refusal reason (a Record so a new reason cannot be forgotten here): counted from the start, at 0. */
const REFUSAL_REASONS: Readonly<Record<RefusalReason, true>> = {
  malformed: true,
  'unexpected-negotiation': true,
  'no-key': true,
  'tls-required': true,
  'conflicting-keys': true,
  'unknown-tenant': true,
  'disabled-tenant': true,
  'address-not-allowed': true,
  'unknown-target': true,
  'cancel-unroutable': true,
  'cancel-rate-limited': true,
  'pause-timeout': true,
  'pause-queue-full': true,
  'pause-shutdown': true,
  'internal-error': true,
};
const KNOWN_REFUSALS = Object.keys(REFUSAL_REASONS);

type FrameCounts = Record<FrameKind, number>;

/** The frames each side sends: the series pgroute_agent_frames_total has from the start. */
const FRAMES_IN: readonly FrameKind[] = ['haproxy-hello', 'notify', 'haproxy-disconnect'];
const FRAMES_OUT: readonly FrameKind[] = ['agent-hello', 'ack', 'agent-disconnect'];

function zeroFrameCounts(): FrameCounts {
  return { 'haproxy-hello': 0, 'haproxy-disconnect': 0, notify: 0, 'agent-hello': 0, 'agent-disconnect': 0, ack: 0 };
}

/** A counter cell, so a Map lookup gives a mutable slot (no Map.set per decision). */
interface Cell {
  n: number;
}

/** Plain counters the hot path bumps; read by prom-client's collect() callbacks. */
export class HotCounters {
  /** Frames received, by type (named properties: `hot.framesIn.notify++` is a field increment). */
  readonly framesIn: FrameCounts = zeroFrameCounts();
  readonly framesOut: FrameCounts = zeroFrameCounts();
  /** Routed StartupMessages (reason label "startup"; the target is HAProxy's backend, not a label here). */
  startupRoutes = 0;
  /** Routed CancelRequests (reason label "cancel"). */
  cancelRoutes = 0;
  /** Startups sent to wait (outcome "hold"; decision/hold.ts), by cause: reason "paused" (a paused
   * tenant) or "pending" (a target whose backend a change is adding). */
  readonly holds: Record<HoldCause, number> = { paused: 0, pending: 0 };
  /** Refusals by reason. */
  readonly refusals = new Map<string, Cell>();
  /** Decision latency: per-bucket (non-cumulative) counts, the last slot is +Inf. */
  readonly latencyBuckets = new Float64Array(DECISION_BUCKETS.length + 1);
  latencySum = 0;
  latencyCount = 0;
  /** Decisions seen by shouldTime(); decides which are sampled. */
  #seq = 0;

  route(cancel: boolean): void {
    if (cancel) this.cancelRoutes++;
    else this.startupRoutes++;
  }

  refusal(reason: string): void {
    const c = this.refusals.get(reason);
    if (c === undefined) this.refusals.set(reason, { n: 1 });
    else c.n++;
  }

  /** True for the decisions to time (1 in DECISION_SAMPLE_EVERY). */
  shouldTime(): boolean {
    return (this.#seq++ & SAMPLE_MASK) === 0;
  }

  observeLatency(seconds: number): void {
    let i = 0;
    const n = DECISION_BUCKETS.length;
    while (i < n && seconds > DECISION_BUCKETS[i]!) i++;
    this.latencyBuckets[i]!++;
    this.latencySum += seconds;
    this.latencyCount++;
  }
}

const DECISION_SECONDS_NAME = 'pgroute_agent_decision_seconds';
const DECISION_SECONDS_HELP =
  `Time from a NOTIFY frame being decoded to its ACK being encoded, sampled: 1 decision in ${DECISION_SAMPLE_EVERY} is timed ` +
  `(so _count is about decisions/${DECISION_SAMPLE_EVERY}; pgroute_agent_decisions_total has the exact count)`;

type HistogramSnapshot = Awaited<ReturnType<Histogram<never>['get']>>;

/** The decision-latency histogram, read from HotCounters when collected (no per-decision observe()). */
class SampledHistogram extends Histogram<never> {
  // A plain property, not #private: the base constructor calls reset() before this is set.
  private hotRef: HotCounters | undefined;

  constructor(hot: HotCounters, registers: Registry[]) {
    super({ name: DECISION_SECONDS_NAME, help: DECISION_SECONDS_HELP, buckets: [...DECISION_BUCKETS], registers });
    this.hotRef = hot;
  }

  override get(): Promise<HistogramSnapshot> {
    return Promise.resolve(this.#snapshot());
  }

  /** Registry#getMetricsAsString prefers this over get() when present. */
  getForPromString(): Promise<HistogramSnapshot> {
    return Promise.resolve(this.#snapshot());
  }

  override reset(): void {
    // Registry#resetMetrics(); also called by the base constructor, before hotRef is set.
    const hot = this.hotRef;
    if (hot === undefined) return;
    hot.latencyBuckets.fill(0);
    hot.latencySum = 0;
    hot.latencyCount = 0;
  }

  #snapshot(): HistogramSnapshot {
    const hot = this.hotRef as HotCounters;
    const bucket = `${DECISION_SECONDS_NAME}_bucket`;
    const values: { labels: Record<string, string | number>; value: number; metricName: string }[] = [];
    let acc = 0;
    for (let i = 0; i < DECISION_BUCKETS.length; i++) {
      acc += hot.latencyBuckets[i]!;
      values.push({ labels: { le: DECISION_BUCKETS[i]! }, value: acc, metricName: bucket });
    }
    values.push({ labels: { le: '+Inf' }, value: hot.latencyCount, metricName: bucket });
    values.push({ labels: {}, value: hot.latencySum, metricName: `${DECISION_SECONDS_NAME}_sum` });
    values.push({ labels: {}, value: hot.latencyCount, metricName: `${DECISION_SECONDS_NAME}_count` });
    return { name: DECISION_SECONDS_NAME, help: DECISION_SECONDS_HELP, type: 'histogram', values, aggregator: 'sum' } as unknown as HistogramSnapshot;
  }
}

/** How often the event loop's lag is sampled for nodejs_eventloop_lag_* (prom-client's default: 10 ms). */
const EVENT_LOOP_SAMPLE_MS = 100;

export function createAgentMetrics(defaults = true): AgentMetrics {
  const registry = new Registry();
  // Standard names (process_cpu_seconds_total, nodejs_heap_size_used_bytes, ...): what every Node
  // dashboard and the `job` label already expect, so no prefix. The event-loop lag is sampled every
  // EVENT_LOOP_SAMPLE_MS, not prom-client's 10 ms: that timer woke an idle process 100 times a
  // second, most of its idle CPU (about 12 ms a second).
  if (defaults) collectDefaultMetrics({ register: registry, eventLoopMonitoringPrecision: EVENT_LOOP_SAMPLE_MS });
  const registers = [registry];
  const hot = new HotCounters();
  let routeTable: RouteTableSource | undefined;
  const errors = new Counter<'kind'>({
    name: 'pgroute_agent_errors_total',
    help: 'Errors by kind (protocol: a peer sent a bad frame; socket: a connection failed, other than a peer closing one the agent was ending, such as HAProxy\'s SPOP health checks; internal: a decision threw and was turned into a refusal)',
    labelNames: ['kind'],
    registers,
  });
  for (const kind of ['protocol', 'socket', 'internal']) errors.labels(kind).inc(0);
  const routeTableLoads = new Counter<'result'>({
    name: 'pgroute_agent_route_table_loads_total',
    help: 'routes.json loads by `pgroute agent` (at start and on SIGHUP) by result (ok, error); up and watch hand the table over in memory and count pgroute_applies_total instead',
    labelNames: ['result'],
    registers,
  });
  for (const result of ['ok', 'error']) routeTableLoads.labels(result).inc(0);
  return {
    registry,
    hot,
    buildInfo: buildInfoGauge(registers),
    decisions: new Counter({
      name: 'pgroute_agent_decisions_total',
      help: 'Routing decisions by outcome (route, refuse, hold) and reason (startup or cancel for routes; paused or pending for holds: the tenant is paused, or the backend of its target is being added, and the connection waits; the refusal reason otherwise, cancel-rate-limited being a dropped cancel); never a tenant or target name',
      labelNames: ['outcome', 'reason'],
      registers,
      collect() {
        this.reset();
        this.labels('route', 'startup').inc(hot.startupRoutes);
        this.labels('route', 'cancel').inc(hot.cancelRoutes);
        this.labels('hold', 'paused').inc(hot.holds.paused);
        this.labels('hold', 'pending').inc(hot.holds.pending);
        for (const reason of KNOWN_REFUSALS) if (!hot.refusals.has(reason)) this.labels('refuse', reason).inc(0);
        for (const [reason, c] of hot.refusals) this.labels('refuse', reason).inc(c.n);
      },
    }),
    decisionSeconds: new SampledHistogram(hot, registers),
    frames: new Counter({
      name: 'pgroute_agent_frames_total',
      help: 'SPOP frames by direction (in, out) and type',
      labelNames: ['direction', 'type'],
      registers,
      collect() {
        this.reset();
        for (const type of FRAMES_IN) this.labels('in', type).inc(hot.framesIn[type]);
        for (const type of FRAMES_OUT) this.labels('out', type).inc(hot.framesOut[type]);
      },
    }),
    errors,
    haproxyConnections: new Gauge({
      name: 'pgroute_agent_haproxy_connections',
      help: 'Open SPOP connections from HAProxy (its health checks open and close one each time)',
      registers,
    }),
    routeTableTenants: new Gauge({
      name: 'pgroute_agent_route_table_tenants',
      help: 'Tenants in the route table the agent decides with',
      registers,
      collect() {
        this.set(routeTable?.table.tenants.size ?? 0);
      },
    }),
    routeTableLoads,
    bindRouteTable(source) {
      routeTable = source;
    },
    cancelCopies: new Counter({
      name: 'pgroute_agent_cancel_copies_total',
      help: "Copies of a CancelRequest sent through HAProxy to the client address's further backends, by result (sent, failed, timeout, dropped: too many in flight)",
      labelNames: ['result'],
      registers,
    }),
  };
}

type BuildInfoLabel = 'version' | 'haproxy_version' | 'node_version';

/** The Prometheus `*_build_info` convention: a constant 1 whose labels say what runs. */
function buildInfoGauge(registers: Registry[]): Gauge<BuildInfoLabel> {
  const gauge = new Gauge<BuildInfoLabel>({
    name: 'pgroute_build_info',
    help: 'Always 1; the labels name the pgroute version, the HAProxy version it runs ("unknown" until known) and the Node.js version',
    labelNames: ['version', 'haproxy_version', 'node_version'],
    registers,
  });
  setBuildInfo(gauge, buildInfo());
  return gauge;
}

/** Replaces the one build_info series (e.g. once the HAProxy version is known). */
export function setBuildInfo(gauge: Gauge<BuildInfoLabel>, info: BuildInfo): void {
  gauge.reset();
  gauge.labels({ version: info.version, haproxy_version: info.haproxyVersion, node_version: info.nodeVersion }).set(1);
}
