// The pgroute-hold message (haproxy/partials/pause-frontend.hbs): a connection of a paused tenant
// asks again from HAProxy's hold frontend, and its ACK is written only when the hold queue lets it
// go (decision/hold.ts), or at once when it need not wait. Sent in its own SPOE engine, whose
// `timeout processing` is longer than the hold, so the startup engine's stays short.

import type { Verdict } from '../decision/types.js';
import type { Waiter } from '../decision/hold.js';
import { encodeAck } from '../spop/agent-frames.js';
import type { NotifyFrame } from '../spop/frames.js';
import { decideConnection, type DecisionContext } from './decide-connection.js';
import { HOLD_MESSAGE } from './spoe-contract.js';
import { startupFacts } from './startup-message.js';
import { verdictActions } from './verdict-actions.js';

export function isHoldNotify(frame: NotifyFrame): boolean {
  return frame.messages.length === 1 && frame.messages[0]?.name === HOLD_MESSAGE;
}

const noPacket: Verdict = {
  kind: 'refuse',
  reason: 'malformed',
  sqlstate: '08P01',
  message: 'the startup packet did not reach the router',
  logDetail: `SPOE message ${HOLD_MESSAGE} had no binary "pkt" argument: check spoe.conf`,
};

/**
 * Answers a pgroute-hold NOTIFY through `write`, now or once released. The Waiter (while held)
 * lets the SPOP connection stop the wait when HAProxy closes it.
 */
export function answerHold(
  ctx: DecisionContext,
  frame: NotifyFrame,
  maxFrameSize: number,
  onVerdict: (v: Verdict) => void,
  write: (ack: Buffer) => void,
): Waiter | undefined {
  const answer = (v: Verdict): void => {
    onVerdict(v);
    write(encodeAck(frame.streamId, frame.frameId, verdictActions(v), maxFrameSize));
  };
  const message = frame.messages[0];
  const facts = message === undefined ? undefined : startupFacts(message);
  if (facts === undefined) {
    answer(noPacket);
    return undefined;
  }
  const redecide = (): Verdict => decideConnection(ctx, facts);
  if (ctx.hold === undefined) {
    answer(redecide());
    return undefined;
  }
  return ctx.hold.wait(redecide, answer);
}
