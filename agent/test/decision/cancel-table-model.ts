// A model of HAProxy's cancel records (haproxy/partials/cancel-record.hbs, cancel-table.hbs) for the
// agent's tests: one table per replica (each written only by its replica), per address gpt0..gpt7
// and gpc0, written as those rules write them; a cancel carries the address's record of every table. The e2e tests
// prove the real rules (test/e2e/cancel-fanout.test.ts); here the agent's side is tested against
// the same behaviour without HAProxy.

import { CANCEL_RECORDS, cancelId } from '../../src/contract.js';
import { mergeRecords, normalizeAddress, recordIds } from '../../src/decision/cancel-router.js';
import type { CancelId, ConnectionFacts, Verdict } from '../../src/decision/types.js';

interface Entry {
  readonly words: number[];
  written: number;
}

export class CancelTableModel {
  /** Replica index -> its table (address -> entry). */
  readonly #tables: Map<string, Entry>[];

  constructor(replicas = 1) {
    this.#tables = Array.from({ length: replicas }, () => new Map<string, Entry>());
  }

  /** What the rules of replica `replica` do after a routed startup to (tenant, target) through it. */
  record(address: string, tenant: string, target: string, replica = 0): void {
    const entries = this.#tables[replica];
    if (entries === undefined) throw new RangeError(`CancelTableModel: no replica ${replica} of ${this.#tables.length}`);
    const key = normalizeAddress(address);
    let e = entries.get(key);
    if (e === undefined) {
      e = { words: new Array<number>(2 * CANCEL_RECORDS).fill(0), written: 0 };
      entries.set(key, e);
    }
    const [a, b] = cancelId(tenant, target);
    for (let s = 0; s < CANCEL_RECORDS; s++) if (e.words[2 * s] === a && e.words[2 * s + 1] === b) return;
    const slot = e.written % CANCEL_RECORDS;
    e.words[2 * slot] = a;
    e.words[2 * slot + 1] = b;
    e.written++;
  }

  /** Records a verdict the way HAProxy does: routed startups only. */
  recordVerdict(address: string, v: Verdict, replica = 0): void {
    if (typeof address === 'string' && address !== '' && v.kind === 'route' && !v.cancel) this.record(address, v.tenant, v.target, replica);
  }

  /** The ids a CancelRequest from `address` carries (every table's record, merged; none: empty). */
  ids(address: string): CancelId[] {
    if (typeof address !== 'string') return [];
    const key = normalizeAddress(address);
    return mergeRecords(
      this.#tables.map((entries) => {
        const e = entries.get(key);
        return e === undefined ? [] : recordIds(e.words, e.written);
      }),
    );
  }

  /** `f` as the cancel message carries it: with the address's record. */
  cancelFacts(f: ConnectionFacts): ConnectionFacts {
    return { ...f, cancelIds: this.ids(f.clientAddress) };
  }
}
