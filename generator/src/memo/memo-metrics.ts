// The verdict memo's series (docs/memo.md, docs/monitoring.md): hits counted by HAProxy (read from
// its hits table at scrape time), misses (routed startups the agent decided), entries, and verdicts
// withdrawn by route-table changes.

import { Counter, Gauge, type Registry } from 'prom-client';
import { haproxyCli } from '../haproxy/master.js';
import { perScrape } from '../scrape-read.js';
import { MEMO_HITS_TABLE, MEMO_TABLE } from '../render/haproxy-config.js';

export interface MemoMetricsSources {
  readonly adminSocket: string;
  /** Routed startups the agent decided (the memo did not know them, or may not serve them). */
  readonly misses: () => number;
  /** Verdicts withdrawn from the memo map by route-table changes. */
  readonly invalidations: () => number;
}

/** The memo's counts as HAProxy shows them: hits (conn_cnt of the hits table) and entries (`used`). */
export interface MemoCounts {
  readonly hits: number;
  readonly entries: number;
  readonly size: number;
}

/** Parses `show table pgroute-memo-hits` and `show table` (every table's header line, no entries). */
export function parseMemoCounts(hitsAnswer: string, tables: string): MemoCounts | undefined {
  const used = new RegExp(`^# table: ${MEMO_TABLE}, type: \\w+, size:(\\d+), used:(\\d+)`, 'm').exec(tables);
  if (used === null || !hitsAnswer.startsWith(`# table: ${MEMO_HITS_TABLE},`)) return undefined;
  const hits = /\bconn_cnt=(\d+)/.exec(hitsAnswer);
  return { hits: hits === null ? 0 : Number(hits[1]), entries: Number(used[2]), size: Number(used[1]) };
}

async function readCounts(adminSocket: string): Promise<MemoCounts | undefined> {
  // `show table` alone lists every table's header (size, used), never the memo's entries.
  const [hits, tables] = await Promise.all([haproxyCli(adminSocket, `show table ${MEMO_HITS_TABLE}`, 1_000), haproxyCli(adminSocket, 'show table', 1_000)]);
  return parseMemoCounts(hits, tables);
}

export function registerMemoMetrics(registry: Registry, src: MemoMetricsSources): void {
  const registers = [registry];
  const read = perScrape(() => readCounts(src.adminSocket));
  new Counter({
    name: 'pgroute_memo_hits_total',
    help: 'Startups HAProxy routed from the verdict memo without asking the agent (counted by HAProxy; starts over at a reload)',
    registers,
    async collect() {
      const c = await read();
      this.reset(); // after the read (perScrape)
      if (c !== undefined) this.inc(c.hits);
    },
  });
  new Counter({
    name: 'pgroute_memo_misses_total',
    help: 'Routed startups the agent decided (not in the verdict memo, or not memoizable); hit ratio = hits / (hits + misses)',
    registers,
    collect() {
      this.reset();
      this.inc(src.misses());
    },
  });
  new Counter({
    name: 'pgroute_memo_invalidations_total',
    help: 'Tenant-target verdicts withdrawn from the verdict memo because the route table changed (removed, moved to another backend, disabled, new limits)',
    registers,
    collect() {
      this.reset();
      this.inc(src.invalidations());
    },
  });
  new Gauge({
    name: 'pgroute_memo_entries',
    help: 'Entries in the verdict memo table now (at most --memo-size)',
    registers,
    async collect() {
      const c = await read();
      this.set(c?.entries ?? 0);
    },
  });
}
