// Keeps HAProxy's maps in step with the agent's route table at every publish (map-sync.ts): the
// limits map always, the verdict memo's map with --memo on. Commands of the first phase go before
// the agent learns the table, the rest after. Every route-table change goes through the publish step
// (source changes, the operator's access switch, switches learned from other replicas: all are
// snapshots the pipeline applies), on the runtime path and around a reload alike, so this is the one
// place the maps change while HAProxy runs; a reload loads them from the files of its generation.

import type { RouteTableDocument } from '../../../agent/src/index.js';
import { haproxyCli } from './master.js';
import { mapPhases, type MapOrder } from './map-sync.js';
import { batchLines, RuntimeApiError } from './runtime.js';

/** HAProxy's answers to map commands that mean a failure (an absent key on `del map` is not one). */
const FAILURE = /Unknown map|Unknown command|not allowed|Permission denied|failed|Out of memory|Invalid|can't|cannot/i;

/** One map HAProxy loads from `file`, with its entries for a route table. */
export interface PublishedMap {
  readonly file: string;
  readonly order: MapOrder;
  entries(routes: RouteTableDocument): ReadonlyMap<string, string>;
}

export interface MapsPublisher {
  /**
   * Sends the first phase, lets `agent` give the agent the table, then sends the second. `live`:
   * HAProxy runs on the map files (else it loads them at start). `interim`: a table that holds
   * only until HAProxy's change is made (a tenant moving may be absent from it): 'add-first' maps
   * keep their keys through it, so the final table's publish need not add them back before the agent
   * learns it (a round trip longer without the tenant).
   */
  publish(routes: RouteTableDocument, at: { readonly live: boolean; readonly interim?: boolean }, agent: () => void): Promise<void>;
  /** Entries of 'withdraw-first' maps withdrawn since the start (pgroute_memo_invalidations_total). */
  readonly invalidations: number;
}

export function mapsPublisher(adminSocket: string, maps: readonly PublishedMap[]): MapsPublisher {
  /** What HAProxy's maps hold; undefined: not known (first sync with a running HAProxy, or after a failure). */
  let held: readonly ReadonlyMap<string, string>[] | undefined;
  let invalidations = 0;
  return {
    get invalidations() {
      return invalidations;
    },
    async publish(routes, { live, interim = false }, agent) {
      const after = maps.map((m, i) => {
        const entries = m.entries(routes);
        const kept = held?.[i];
        return interim && m.order === 'add-first' && kept !== undefined ? new Map([...kept, ...entries]) : entries;
      });
      if (!live) {
        // HAProxy starts (or restarts) from the map files written with this generation.
        agent();
        held = after;
        return;
      }
      const phases = maps.map((m, i) => mapPhases({ file: m.file, order: m.order, before: held?.[i], after: after[i] as ReadonlyMap<string, string> }));
      // Until the first phase is confirmed the maps' content is unknown: a failure clears them next time.
      held = undefined;
      try {
        await run(adminSocket, phases.flatMap((p) => p.before));
      } catch (err) {
        // The agent learns the table anyway (its verdicts are right; HAProxy's refusal rules fall back
        // to a generic 53300 for a missing message); the apply fails and is retried, and the retry,
        // with the maps' content unknown, clears them first.
        agent();
        throw err;
      }
      invalidations += phases.reduce((n, p) => n + p.invalidated, 0);
      agent();
      await run(adminSocket, phases.flatMap((p) => p.after));
      held = after;
    },
  };
}

async function run(adminSocket: string, commands: readonly string[]): Promise<void> {
  for (const line of batchLines(commands)) {
    let answer: string;
    try {
      answer = await haproxyCli(adminSocket, line);
    } catch (err) {
      throw new RuntimeApiError(`HAProxy's maps could not be updated (runtime API unreachable: ${(err as Error).message})`);
    }
    const bad = answer.split('\n').find((l) => FAILURE.test(l));
    if (bad !== undefined) throw new RuntimeApiError(`HAProxy refused a map command (${bad.trim()}) in: ${line.slice(0, 200)}`);
  }
}
