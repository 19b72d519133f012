// The generator's metrics, registered on the same registry as the agent's so one /metrics serves both.
// Every series whose labels are known in advance exists from the start (at 0), so alerts and rate()
// see it before the first event; one event is counted once (docs/monitoring.md).

import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { Layout } from './layout.js';
import { perScrape } from './scrape-read.js';

/** What an apply did (or tried to do): the kinds of reconcile's transitions. */
export const APPLY_KINDS = ['initial', 'runtime', 'reload', 'agent'] as const;
export type ApplyMetricKind = (typeof APPLY_KINDS)[number];
import type { TenantCounters } from './status/show-table.js';

/** Reads each tenant's admission counters from HAProxy (`show table pgroute-tenants`) at scrape time. */
export type TenantCountersReader = () => Promise<ReadonlyMap<string, TenantCounters>>;

/** The refusal counters of the admission limits, by the `limit` label. */
const LIMIT_REFUSALS: readonly [string, keyof TenantCounters][] = [
  ['cap', 'refusedCap'],
  ['rate', 'refusedRate'],
  ['address-rate', 'refusedClientRate'],
  ['queue', 'refusedQueue'],
];

export interface GeneratorMetrics {
  readonly tenants: Gauge<'state'>;
  /** One per apply, by what it did (or tried) and whether it worked. */
  readonly applies: Counter<'kind' | 'result'>;
  /** Successful applies only: the time until the change was routable. */
  readonly applyLatency: Histogram<'kind'>;
  readonly oldWorkers: Gauge<never>;
  readonly spares: Gauge<'state'>;
  /** 1 per occupied backend: which tenant and target it serves (spare slots included). */
  readonly backendInfo: Gauge<'backend' | 'tenant' | 'target'>;
}

export function createGeneratorMetrics(registry: Registry, readCounters?: TenantCountersReader): GeneratorMetrics {
  const registers = [registry];
  if (readCounters !== undefined) policyMetrics(registry, readCounters);
  const m: GeneratorMetrics = {
    tenants: new Gauge({ name: 'pgroute_tenants', help: 'Tenants by state: enabled, disabled, refused (definitions refused with a reason)', labelNames: ['state'], registers }),
    applies: new Counter({
      name: 'pgroute_applies_total',
      help: 'Applies of a changed tenant snapshot by kind (initial: the first, before HAProxy runs; runtime: runtime API only; reload: graceful reload; agent: route table only) and result (ok; failed: the previous configuration kept serving, the last-known-good files restored)',
      labelNames: ['kind', 'result'],
      registers,
    }),
    applyLatency: new Histogram({
      name: 'pgroute_apply_latency_seconds',
      help: 'From the first source event of a change to the change being routable, by kind (successful applies)',
      labelNames: ['kind'],
      buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10],
      registers,
    }),
    oldWorkers: new Gauge({ name: 'pgroute_haproxy_old_workers', help: 'HAProxy workers of earlier reloads still finishing their sessions', registers }),
    spares: new Gauge({
      name: 'pgroute_spare_backends',
      help: 'Spare backends (pg.spare.<n>) by state: free (ready for a new tenant without a reload), occupied (a tenant added at runtime), resting (vacated, in quarantine)',
      labelNames: ['state'],
      registers,
    }),
    backendInfo: new Gauge({
      name: 'pgroute_backend_info',
      help: 'Always 1: which tenant and target each occupied HAProxy backend serves, spare slots included (join HAProxy\'s proxy label to backend)',
      labelNames: ['backend', 'tenant', 'target'],
      registers,
    }),
  };
  for (const state of ['enabled', 'disabled', 'refused']) m.tenants.labels(state).set(0);
  for (const kind of APPLY_KINDS) for (const result of ['ok', 'failed']) m.applies.labels(kind, result).inc(0);
  m.oldWorkers.set(0);
  countLayout(m, { backends: [], nextSpare: 0 });
  return m;
}

/** The spare and backend-info series for the layout that runs now. */
export function countLayout(m: GeneratorMetrics, layout: Layout): void {
  const spares = { free: 0, occupied: 0, resting: 0 };
  m.backendInfo.reset();
  for (const b of layout.backends) {
    if (b.spare) spares[b.state.kind]++;
    if (b.state.kind === 'occupied') m.backendInfo.labels(b.name, b.state.occupant.tenant, b.state.occupant.target).set(1);
  }
  for (const [state, n] of Object.entries(spares)) m.spares.labels(state).set(n);
}

/**
 * Per tenant, what HAProxy counted for its admission limits (haproxy/partials/policy.hbs): the
 * connections open now and the connections refused over each limit (a target's maxqueue included). Read at scrape time; a HAProxy
 * that does not answer leaves both empty for that scrape. Counts start over when HAProxy reloads
 * (stick tables are per worker), as Prometheus counters may.
 */
function policyMetrics(registry: Registry, readCounters: TenantCountersReader): void {
  const read = perScrape(readCounters);
  new Gauge({
    name: 'pgroute_tenant_connections_open',
    help: "Client connections open now per tenant, across its targets (what maxClientConnections counts)",
    labelNames: ['tenant'],
    registers: [registry],
    async collect() {
      const counters = await read();
      this.reset(); // after the read (perScrape)
      for (const [tenant, c] of counters ?? []) this.labels(tenant).set(c.open);
    },
  });
  new Counter({
    name: 'pgroute_tenant_policy_refusals_total',
    help: 'Connections HAProxy refused over a tenant limit, by limit: cap (maxClientConnections), rate (maxConnectionRate), address-rate (maxClientConnectionRate), queue (a target\'s maxqueue)',
    labelNames: ['tenant', 'limit'],
    registers: [registry],
    async collect() {
      const counters = await read();
      this.reset(); // after the read (perScrape)
      for (const [tenant, c] of counters ?? []) for (const [limit, field] of LIMIT_REFUSALS) this.labels(tenant, limit).inc(c[field]);
    },
  });
}
