// Metrics of held connections (decision/hold.ts), registered beside the agent's others. No tenant
// label (docs/monitoring.md): `pgroute status` shows the paused tenants and HAProxy's hold frontend
// counts what it holds per replica.

import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { HOLD_OUTCOMES, type HoldEvents } from './decision/hold.js';

/** Upper bounds (seconds) of pgroute_agent_hold_seconds: a move takes seconds to minutes. */
const HOLD_BUCKETS = [0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300];

export function holdMetrics(registry: Registry): HoldEvents {
  const registers = [registry];
  const heldNow = new Map<string, number>();
  const held = new Gauge({
    name: 'pgroute_agent_held_connections',
    help: 'Connections held now by this agent: of paused tenants (pgroute tenant pause), waiting for resume, and to targets whose backend HAProxy is adding, waiting for it',
    registers,
    collect() {
      let n = 0;
      for (const v of heldNow.values()) n += v;
      this.set(n);
    },
  });
  void held;
  const outcomes = new Counter<'outcome'>({
    name: 'pgroute_agent_hold_total',
    help: 'Held connections by how their wait ended: released (the tenant was resumed, or the backend of its target added: routed to its current backend), timed-out (refused 57P03 after --pause-timeout), queue-full (refused 53300 at once: --pause-max-held), abandoned (HAProxy went away), shutdown (refused 57P01: this replica stopped for good while the connection was held)',
    labelNames: ['outcome'],
    registers,
  });
  for (const o of HOLD_OUTCOMES) outcomes.labels(o).inc(0);
  const seconds = new Histogram({
    name: 'pgroute_agent_hold_seconds',
    help: 'How long a released connection was held',
    buckets: HOLD_BUCKETS,
    registers,
  });
  return {
    held(tenant, n) {
      if (n === 0) heldNow.delete(tenant);
      else heldNow.set(tenant, n);
    },
    ended(outcome, _tenant, ms) {
      outcomes.labels(outcome).inc();
      if (outcome === 'released') seconds.observe(ms / 1000);
    },
  };
}
