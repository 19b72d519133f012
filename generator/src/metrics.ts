// The generator's metrics, registered on the same registry as the agent's so one /metrics serves both.

import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { TenantCounters } from './status/show-table.js';

/** Reads each tenant's admission counters from HAProxy (`show table pgroute-tenants`) at scrape time. */
export type TenantCountersReader = () => Promise<ReadonlyMap<string, TenantCounters>>;

/** The refusal counters of the admission limits, by the `limit` label. */
const LIMIT_REFUSALS: readonly [string, keyof TenantCounters][] = [
  ['cap', 'refusedCap'],
  ['rate', 'refusedRate'],
  ['address-rate', 'refusedClientRate'],
];

export interface GeneratorMetrics {
  readonly tenants: Gauge<'state'>;
  readonly applies: Counter<'kind'>;
  readonly reloadFailures: Counter<never>;
  readonly rollbacks: Counter<never>;
  readonly applyLatency: Histogram<'kind'>;
  readonly oldWorkers: Gauge<never>;
  readonly spares: Gauge<'state'>;
}

export function createGeneratorMetrics(registry: Registry, readCounters?: TenantCountersReader): GeneratorMetrics {
  const registers = [registry];
  if (readCounters !== undefined) policyMetrics(registry, readCounters);
  return {
    tenants: new Gauge({ name: 'pgroute_tenants', help: 'Tenants by state: enabled, disabled, refused (definitions refused with a reason)', labelNames: ['state'], registers }),
    applies: new Counter({
      name: 'pgroute_applies_total',
      help: 'Applied changes by kind: runtime (runtime API only), reload (graceful reload), agent (route table only), failed',
      labelNames: ['kind'],
      registers,
    }),
    reloadFailures: new Counter({ name: 'pgroute_reload_failures_total', help: 'Reloads HAProxy did not complete (the previous configuration kept serving)', registers }),
    rollbacks: new Counter({ name: 'pgroute_rollbacks_total', help: 'Times the last-known-good configuration was restored after a failed apply', registers }),
    applyLatency: new Histogram({
      name: 'pgroute_apply_latency_seconds',
      help: 'From the first source event of a change to the change being routable, by kind',
      labelNames: ['kind'],
      buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10],
      registers,
    }),
    oldWorkers: new Gauge({ name: 'pgroute_haproxy_old_workers', help: 'HAProxy workers of earlier reloads still finishing their sessions', registers }),
    spares: new Gauge({ name: 'pgroute_spare_backends', help: 'Spare backends by state: free, resting', labelNames: ['state'], registers }),
  };
}

/**
 * Per tenant, what HAProxy counted for its admission limits (haproxy/partials/policy.hbs): the
 * connections open now and the connections refused over each limit. Read at scrape time; a HAProxy
 * that does not answer leaves both empty for that scrape. Counts start over when HAProxy reloads
 * (stick tables are per worker), as Prometheus counters may.
 */
function policyMetrics(registry: Registry, readCounters: TenantCountersReader): void {
  let pending: Promise<ReadonlyMap<string, TenantCounters> | undefined> | undefined;
  // One read of the table serves both metrics of a scrape.
  const read = (): Promise<ReadonlyMap<string, TenantCounters> | undefined> =>
    (pending ??= readCounters()
      .catch(() => undefined)
      .finally(() => setTimeout(() => (pending = undefined), 100).unref()));
  new Gauge({
    name: 'pgroute_tenant_connections_open',
    help: "Client connections open now per tenant, across its targets (what maxClientConnections counts)",
    labelNames: ['tenant'],
    registers: [registry],
    async collect() {
      this.reset();
      for (const [tenant, c] of (await read()) ?? []) this.labels(tenant).set(c.open);
    },
  });
  new Counter({
    name: 'pgroute_tenant_policy_refusals_total',
    help: 'Connections HAProxy refused over a tenant admission limit, by limit: cap (maxClientConnections), rate (maxConnectionRate), address-rate (maxClientConnectionRate)',
    labelNames: ['tenant', 'limit'],
    registers: [registry],
    async collect() {
      this.reset();
      for (const [tenant, c] of (await read()) ?? []) for (const [limit, field] of LIMIT_REFUSALS) this.labels(tenant, limit).inc(c[field]);
    },
  });
}
