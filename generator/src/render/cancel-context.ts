// The cancel records' tables and the words the templates place for them (docs/cancel.md): one
// table per replica, written only by the replica that owns it (single writer: the peers protocol
// replicates whole entries, so two writers of one entry lose updates), all declared on every
// replica and replicated through the peers section; the cancel message carries the address's
// record from each of them. Pure.

import { CANCEL_KEY_MAX_BYTES, CANCEL_KEY_MIN_BYTES, CANCEL_RECORDS, cancelTableArgNames } from '../../../agent/src/index.js';

/** A CancelRequest before its key: the length, the cancel code and the process id (4 bytes each). */
const CANCEL_FIXED_BYTES = 12;
import { type Replicas, peerNameProblem } from '../replicas/peers.js';

/** The cancel table of a pgroute with no peer list (one replica). */
export const CANCEL_TABLE = 'pgroute-cancels';

/**
 * The handover table (docs/cancel.md, "Across a reload"; not `pgroute-cancels-<x>`, which a replica named x
 * would take): a worker that has not yet learned the
 * replicated tables from the old worker (or from its peers) writes the record of an address its own
 * table holds nothing of here, not into its own table, where what it learns next would overwrite it
 * (the peers protocol replaces whole entries) after it had been pushed to the other replicas. Local:
 * not replicated, so never overwritten by a lesson; read by the cancel message like the others.
 */
export const CANCEL_HANDOVER_TABLE = 'pgroute-cancel-handover';

/**
 * The worker's "learned" mark: empty in a new worker (local, so never handed over); pgroute writes
 * key 0 once the worker's peers section reports its resync done (haproxy/learned-mark.ts).
 */
export const LEARNED_TABLE = 'pgroute-learned';

/**
 * Without the mark, a worker stops using the handover table this long after its configuration was
 * read: beyond HAProxy's 5 s wait for the old worker's lesson plus 5 s for a peer's, with margin.
 */
export const HANDOVER_LIMIT_SECONDS = 30;

/**
 * A replica's cancel table: `pgroute-cancels-<name>`. A peer name (validated by peers.ts: letters,
 * digits, '.', '_', '-') is also valid in an HAProxy proxy name, and the name (unlike an index in
 * the peer list) stays the same when other replicas join or leave, so a reload keeps its records.
 */
export function cancelTableOf(replicaName: string): string {
  const problem = peerNameProblem(replicaName);
  if (problem !== undefined) throw new Error(`cancel table for replica "${replicaName}": the name must be ${problem}`);
  return `${CANCEL_TABLE}-${replicaName}`;
}

export interface CancelContext {
  /** A CancelRequest's length in bytes: 12 and a key of 4 (protocol 3.0) to 256 bytes (3.2), as the agent reads it. */
  readonly packetBytes: { readonly min: number; readonly max: number };
  readonly records: number;
  readonly words: number;
  readonly lastWord: number;
  /** The last slot's index: (written count + lastSlot) mod records is the newest slot. */
  readonly lastSlot: number;
  /** The word after the ids: the hour (Unix time / 3600) the entry was last refreshed. */
  readonly stampWord: number;
  /** Words stored per entry: the ids' and the stamp. */
  readonly storedWords: number;
  readonly tableSize: string;
  readonly expire: string;
  readonly slots: readonly { readonly slot: number; readonly a: number; readonly b: number }[];
  /** The table this replica writes. */
  readonly own: string;
  /** Every replica's table (this one's included), declared here and replicated. */
  readonly tables: readonly string[];
  /** This worker's handover table and learned mark (local tables), and the mark's time limit. */
  readonly handover: string;
  readonly learned: string;
  readonly handoverLimitSeconds: number;
  /**
   * Where a record is written, each with the rule condition that selects it: the own table, or the
   * handover table while this worker has not learned the replicated tables.
   */
  readonly writes: readonly { readonly table: string; readonly when: string }[];
  /** The cancel message's arguments: `n<j>=...` and `g<j>_<i>=...` of every table read (the handover table last). */
  readonly args: readonly string[];
}

/**
 * 100k addresses per table, each forgotten 23 to 24 h after its last routed startup through that
 * replica (24 h after the last refresh of its entry, which is at most once an hour).
 */
export function cancelContext(r: Replicas): CancelContext {
  const tables = r.peers.length === 0 ? [CANCEL_TABLE] : r.peers.map((p) => cancelTableOf(p.name));
  const own = r.peers.length === 0 ? CANCEL_TABLE : cancelTableOf(r.self);
  return {
    packetBytes: { min: CANCEL_FIXED_BYTES + CANCEL_KEY_MIN_BYTES, max: CANCEL_FIXED_BYTES + CANCEL_KEY_MAX_BYTES },
    records: CANCEL_RECORDS,
    words: 2 * CANCEL_RECORDS,
    lastWord: 2 * CANCEL_RECORDS - 1,
    lastSlot: CANCEL_RECORDS - 1,
    stampWord: 2 * CANCEL_RECORDS,
    storedWords: 2 * CANCEL_RECORDS + 1,
    tableSize: '100k',
    expire: '24h',
    slots: Array.from({ length: CANCEL_RECORDS }, (_, slot) => ({ slot, a: 2 * slot, b: 2 * slot + 1 })),
    own,
    tables,
    handover: CANCEL_HANDOVER_TABLE,
    learned: LEARNED_TABLE,
    handoverLimitSeconds: HANDOVER_LIMIT_SECONDS,
    writes: [
      { table: own, when: '!pgr_cancel_handover' },
      { table: CANCEL_HANDOVER_TABLE, when: 'pgr_cancel_handover' },
    ],
    args: [...tables, CANCEL_HANDOVER_TABLE].flatMap((table, j) => {
      const names = cancelTableArgNames(j);
      return [`${names.written}=src_get_gpc(0,${table})`, ...names.words.map((name, i) => `${name}=src_get_gpt(${i},${table})`)];
    }),
  };
}
