// The generator's metrics, registered on the same registry as the agent's so one /metrics serves both.

import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

export interface GeneratorMetrics {
  readonly tenants: Gauge<'state'>;
  readonly applies: Counter<'kind'>;
  readonly reloadFailures: Counter<never>;
  readonly rollbacks: Counter<never>;
  readonly applyLatency: Histogram<'kind'>;
  readonly oldWorkers: Gauge<never>;
  readonly spares: Gauge<'state'>;
}

export function createGeneratorMetrics(registry: Registry): GeneratorMetrics {
  const registers = [registry];
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
