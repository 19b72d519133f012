// The cancel message of the SPOE contract (spoe-contract.ts): a CancelRequest with the cancel record
// HAProxy keeps for its client address -> the connection's facts and the verdict. Decoded through
// spop/ only (cancels are rare: no fast path).

import { CANCEL_RECORD_WORDS, mergeRecords, recordIds } from '../decision/cancel-router.js';
import type { ConnectionFacts } from '../decision/types.js';
import { decodePreamble } from '../pg/preamble.js';
import type { SpoeMessage } from '../spop/frames.js';
import { CANCEL_ARG, CANCEL_WORD_ARG_PREFIX, CANCEL_WRITTEN_ARG_PREFIX } from './spoe-contract.js';
import { integerOf } from './startup-message.js';

export interface CancelMessage {
  readonly facts: ConnectionFacts;
  /** The packet as the client sent it: what the copies carry. */
  readonly packet: Buffer;
}

/** Cancel tables a message may carry records of (one per replica): more are ignored. */
const MAX_TABLES = 64;

const WRITTEN_ARG = new RegExp(`^${CANCEL_WRITTEN_ARG_PREFIX}(0|[1-9][0-9]?)$`);
const WORD_ARG = new RegExp(`^${CANCEL_WORD_ARG_PREFIX}(0|[1-9][0-9]?)_([0-9])$`);

/**
 * The facts of a cancel message (cancelIds: the union of the records of every replica's table);
 * undefined when it has no packet.
 */
export function cancelMessage(message: SpoeMessage): CancelMessage | undefined {
  let pkt: Buffer | undefined;
  let src = '';
  const tables = new Map<number, { written: number; words: number[] }>();
  const table = (j: number): { written: number; words: number[] } => {
    let t = tables.get(j);
    if (t === undefined) {
      t = { written: 0, words: new Array<number>(CANCEL_RECORD_WORDS).fill(0) };
      tables.set(j, t);
    }
    return t;
  };
  for (const arg of message.args) {
    if (arg.name === CANCEL_ARG.pkt) pkt = arg.value.type === 'binary' ? arg.value.value : undefined;
    else if (arg.name === CANCEL_ARG.src) src = arg.value.type === 'ipv4' || arg.value.type === 'ipv6' ? arg.value.value : '';
    else {
      const n = WRITTEN_ARG.exec(arg.name);
      const w = n === null ? WORD_ARG.exec(arg.name) : null;
      const j = Number((n ?? w)?.[1]);
      if (!(j < MAX_TABLES)) continue;
      if (n !== null) table(j).written = integerOf(arg.value);
      else if (w !== null && Number(w[2]) < CANCEL_RECORD_WORDS) table(j).words[Number(w[2])] = integerOf(arg.value);
    }
  }
  if (pkt === undefined) return undefined;
  const ordered = [...tables.entries()].sort(([a], [b]) => a - b).map(([, t]) => recordIds(t.words, t.written));
  return { facts: { preamble: decodePreamble(pkt), clientAddress: src, frontendPort: 0, cancelIds: mergeRecords(ordered) }, packet: pkt };
}
