// Keeps HAProxy's verdict memo map in step with the agent's route table (docs/memo.md), at every
// publish: entries whose verdict changes leave the map BEFORE the agent learns the new table, new
// ones join AFTER. Every route-table change goes through the publish step (source changes, the
// operator's access switch, switches learned from other replicas: all are snapshots the pipeline
// applies), so this is the one place the memo is invalidated.

import { batchLines, RuntimeApiError } from '../haproxy/runtime.js';
import { haproxyCli } from '../haproxy/master.js';
import type { RouteTableDocument } from '../../../agent/src/index.js';
import { memoCommands, memoEntries, memoSync } from './memo-map.js';

/** HAProxy's answers to map commands that mean a failure (an absent key on `del map` is not one). */
const FAILURE = /Unknown map|Unknown command|not allowed|Permission denied|failed|Out of memory|Invalid|can't|cannot/i;

export interface MemoPublisher {
  /** Withdraws what changes, lets `publish` give the agent the table, then adds what is new. */
  publish(routes: RouteTableDocument, live: boolean, agent: () => void): Promise<void>;
  /** Verdicts withdrawn from the memo since the start (pgroute_memo_invalidations_total). */
  readonly invalidations: number;
}

export function memoPublisher(adminSocket: string, mapFile: string): MemoPublisher {
  /** What HAProxy's map holds; undefined: not known (first sync with a running HAProxy). */
  let held: ReadonlyMap<string, string> | undefined;
  let invalidations = 0;
  return {
    get invalidations() {
      return invalidations;
    },
    async publish(routes, live, agent) {
      const after = memoEntries(routes);
      if (!live) {
        // HAProxy starts (or restarts) from the map file written with this generation.
        agent();
        held = after;
        return;
      }
      const sync = memoSync(held, after);
      const commands = memoCommands(mapFile, sync);
      // Until the withdrawal is confirmed the map's content is unknown: a failure clears it next time.
      held = undefined;
      try {
        await run(adminSocket, commands.withdraw);
      } catch (err) {
        // The agent learns the table anyway (its misses decide right); the apply fails and is
        // retried, and the retry, with the map's content unknown, empties it first.
        agent();
        throw err;
      }
      invalidations += sync.invalidated;
      agent();
      await run(adminSocket, commands.add);
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
      throw new RuntimeApiError(`the verdict memo map could not be updated (runtime API unreachable: ${(err as Error).message})`);
    }
    const bad = answer.split('\n').find((l) => FAILURE.test(l));
    if (bad !== undefined) throw new RuntimeApiError(`HAProxy refused a verdict memo map command (${bad.trim()}) in: ${line.slice(0, 200)}`);
  }
}
