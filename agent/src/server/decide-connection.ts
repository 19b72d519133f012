// The decision with its one effect: the cancel records. decide() is pure; here the records are read
// for a CancelRequest before deciding, and a routed startup is recorded after, so a later
// CancelRequest from the same address can follow it.

import type { CancelRouter } from '../decision/cancel-router.js';
import { cancelTargetAccepted, decide } from '../decision/decide.js';
import type { ConnectionFacts, Verdict } from '../decision/types.js';
import type { RouteStore } from '../routes-store.js';

export interface DecisionContext {
  readonly store: RouteStore;
  readonly cancels: CancelRouter;
  readonly now: () => number;
}

export function decideConnection(ctx: DecisionContext, facts: ConnectionFacts): Verdict {
  const table = ctx.store.table;
  const now = ctx.now();
  const cancel = facts.preamble.kind === 'cancel' ? ctx.cancels.route(facts.clientAddress, now, cancelTargetAccepted(table, facts.clientAddress)) : undefined;
  const verdict = decide(table, facts, cancel);
  if (verdict.kind === 'route' && !verdict.cancel) ctx.cancels.record(facts.clientAddress, verdict, now);
  return verdict;
}
