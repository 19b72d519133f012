// The decision with its effects. decide() is pure; here a CancelRequest's record (handed over by
// HAProxy) is read against the route table and the address's token bucket before deciding, and a
// routed cancel's copies to the address's further backends are sent after.

import { CancelRateLimiter, routeCancel } from '../decision/cancel-router.js';
import { cancelTargetAccepted, decide } from '../decision/decide.js';
import type { ConnectionFacts, Verdict } from '../decision/types.js';
import type { RouteStore } from '../routes-store.js';
import type { CancelCopies } from './cancel-copies.js';
import type { HoldQueue } from '../decision/hold.js';

export interface DecisionContext {
  readonly store: RouteStore;
  readonly cancelRate: CancelRateLimiter;
  readonly now: () => number;
  /** Sends the copies of a fanned-out cancel; without it only `backend` gets the cancel. */
  readonly copies?: CancelCopies;
  /** Where connections of paused tenants wait (server/hold-notify.ts); without it they are decided at once. */
  readonly hold?: HoldQueue;
}

export function decideConnection(ctx: DecisionContext, facts: ConnectionFacts, packet?: Buffer): Verdict {
  const table = ctx.store.table;
  if (facts.preamble.kind !== 'cancel') return decide(table, facts);
  const routing =
    facts.cancelIds === undefined
      ? ({
          kind: 'unroutable',
          detail: 'the CancelRequest came without its client address\'s cancel record (in the startup message, not pgroute-cancel): regenerate the HAProxy configuration with this pgroute version',
        } as const)
      : routeCancel(facts.clientAddress, facts.cancelIds, table, ctx.cancelRate, ctx.now(), cancelTargetAccepted(table, facts.clientAddress));
  const verdict = decide(table, facts, routing);
  if (verdict.kind === 'route' && verdict.copies !== undefined && packet !== undefined && ctx.copies !== undefined) {
    void ctx.copies.send(verdict.copies, packet, facts.clientAddress);
  }
  return verdict;
}
