// The generator's metrics, registered on the same registry as the agent's so one /metrics serves both.
// Every series whose labels are known in advance exists from the start (at 0), so alerts and rate()
// see it before the first event; one event is counted once (docs/monitoring.md).

import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { Layout } from './layout.js';

/** What an apply did (or tried to do): the kinds of reconcile's transitions. */
export const APPLY_KINDS = ['initial', 'runtime', 'reload', 'agent'] as const;
export type ApplyMetricKind = (typeof APPLY_KINDS)[number];

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

export function createGeneratorMetrics(registry: Registry): GeneratorMetrics {
  const registers = [registry];
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
