// The cancel message of the SPOE contract (spoe-contract.ts): a CancelRequest with the cancel record
// HAProxy keeps for its client address -> the connection's facts and the verdict. Decoded through
// spop/ only (cancels are rare: no fast path).

import { CANCEL_RECORD_WORDS, recordIds } from '../decision/cancel-router.js';
import type { ConnectionFacts } from '../decision/types.js';
import { decodePreamble } from '../pg/preamble.js';
import type { SpoeMessage } from '../spop/frames.js';
import { CANCEL_ARG, CANCEL_WORD_ARG_PREFIX } from './spoe-contract.js';
import { integerOf } from './startup-message.js';

export interface CancelMessage {
  readonly facts: ConnectionFacts;
  /** The packet as the client sent it: what the copies carry. */
  readonly packet: Buffer;
}

/** The facts of a cancel message (cancelIds from its record); undefined when it has no packet. */
export function cancelMessage(message: SpoeMessage): CancelMessage | undefined {
  let pkt: Buffer | undefined;
  let src = '';
  let written = 0;
  const words = new Array<number>(CANCEL_RECORD_WORDS).fill(0);
  for (const arg of message.args) {
    if (arg.name === CANCEL_ARG.pkt) pkt = arg.value.type === 'binary' ? arg.value.value : undefined;
    else if (arg.name === CANCEL_ARG.src) src = arg.value.type === 'ipv4' || arg.value.type === 'ipv6' ? arg.value.value : '';
    else if (arg.name === CANCEL_ARG.written) written = integerOf(arg.value);
    else if (arg.name.startsWith(CANCEL_WORD_ARG_PREFIX)) {
      const i = Number(arg.name.slice(CANCEL_WORD_ARG_PREFIX.length));
      if (Number.isInteger(i) && i >= 0 && i < CANCEL_RECORD_WORDS && arg.name === `${CANCEL_WORD_ARG_PREFIX}${i}`) words[i] = integerOf(arg.value);
    }
  }
  if (pkt === undefined) return undefined;
  return { facts: { preamble: decodePreamble(pkt), clientAddress: src, frontendPort: 0, cancelIds: recordIds(words, written) }, packet: pkt };
}
