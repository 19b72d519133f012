// perScrape: the series of one scrape share one read; the next scrape reads again. The policy
// series through it: each count once, however many scrapes run at once.

import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { createGeneratorMetrics } from '../src/metrics.js';
import { perScrape } from '../src/scrape-read.js';
import type { TenantCounters } from '../src/status/show-table.js';

describe('perScrape', () => {
  it('shares a read while it is in flight, reads again once it settled, and turns a failure into undefined', async () => {
    let reads = 0;
    let fail = false;
    const read = perScrape(async () => {
      reads += 1;
      await new Promise((r) => setTimeout(r, 10));
      if (fail) throw new Error('no answer');
      return reads;
    });
    // One scrape: every series asks in the same pass.
    expect(await Promise.all([read(), read(), read()])).toEqual([1, 1, 1]);
    // The next scrape, right after: a fresh read.
    expect(await read()).toBe(2);
    fail = true;
    expect(await read()).toBeUndefined();
    fail = false;
    expect(await read()).toBe(4);
  });
});

describe('the policy series read at scrape time', () => {
  it('two scrapes at once both show each count once; a scrape right after another shows the new counts', async () => {
    let refused = 3;
    const counters = (): TenantCounters => ({ open: 2, admittedPerSecond: 0, admitted: 10, refusedCap: refused, refusedRate: 0, refusedClientRate: 0, refusedQueue: 0 });
    const registry = new Registry();
    createGeneratorMetrics(registry, async () => {
      await new Promise((r) => setTimeout(r, 10));
      return new Map([['acme', counters()]]);
    });
    const series = (text: string): string[] => text.split('\n').filter((l) => l.startsWith('pgroute_tenant_') && l.includes('acme') && (l.includes('limit="cap"') || l.includes('connections_open')));
    const [a, b] = await Promise.all([registry.metrics(), registry.metrics()]);
    for (const text of [a, b]) expect(series(text ?? '')).toEqual(['pgroute_tenant_connections_open{tenant="acme"} 2', 'pgroute_tenant_policy_refusals_total{tenant="acme",limit="cap"} 3']);
    refused = 4;
    expect(series(await registry.metrics())).toEqual(['pgroute_tenant_connections_open{tenant="acme"} 2', 'pgroute_tenant_policy_refusals_total{tenant="acme",limit="cap"} 4']);
  });
});
