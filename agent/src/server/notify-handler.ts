// One SPOE message in, the verdict's actions out. Knows the message and argument names of
// haproxy/spoe.conf.hbs; knows nothing of frames or sockets.

import type { CancelRouter } from '../decision/cancel-router.js';
import { decide } from '../decision/decide.js';
import type { ConnectionFacts, RefuseVerdict, Verdict } from '../decision/types.js';
import { decodePreamble, decodePreambleAt } from '../pg/preamble.js';
import type { SpoeMessage } from '../spop/frame.js';
import type { TypedValue } from '../spop/typed-data.js';
import type { RouteStore } from '../routes-store.js';

export const STARTUP_MESSAGE = 'pgroute-startup';

export interface DecisionContext {
  readonly store: RouteStore;
  readonly cancels: CancelRouter;
  readonly now: () => number;
}

/** The verdict for one `pgroute-startup` message, or undefined for a message this agent does not know. */
export function handleMessage(ctx: DecisionContext, message: SpoeMessage): Verdict | undefined {
  if (message.name !== STARTUP_MESSAGE) return undefined;
  let pkt: Buffer | undefined;
  let src = '';
  let dport = 0;
  let tls = false;
  let sni: string | undefined;
  for (const arg of message.args) {
    if (arg.name === 'pkt') pkt = binaryOf(arg.value);
    else if (arg.name === 'src') src = addressOf(arg.value);
    else if (arg.name === 'dport') dport = integerOf(arg.value);
    else if (arg.name === 'tls') tls = arg.value.type === 'bool' && arg.value.value;
    else if (arg.name === 'sni') sni = arg.value.type === 'string' && arg.value.value !== '' ? arg.value.value : undefined;
  }
  if (pkt === undefined) return missingPacket;
  const facts: ConnectionFacts =
    sni === undefined
      ? { preamble: decodePreamble(pkt), clientAddress: src, frontendPort: dport, tls }
      : { preamble: decodePreamble(pkt), clientAddress: src, frontendPort: dport, tls, sni };
  return decide(ctx.store.table, facts, ctx.cancels, ctx.now());
}

/**
 * handleMessage() for a pgroute-startup message already read by the NOTIFY fast path
 * (notify-fast.ts): the packet is buf[pktStart, pktEnd).
 */
export function decideStartupPacket(ctx: DecisionContext, buf: Buffer, n: { pktStart: number; pktEnd: number; src: string; dport: number; tls: boolean; sni: string }): Verdict {
  const preamble = decodePreambleAt(buf, n.pktStart, n.pktEnd);
  const facts: ConnectionFacts =
    n.sni === ''
      ? { preamble, clientAddress: n.src, frontendPort: n.dport, tls: n.tls }
      : { preamble, clientAddress: n.src, frontendPort: n.dport, tls: n.tls, sni: n.sni };
  return decide(ctx.store.table, facts, ctx.cancels, ctx.now());
}

const missingPacket: RefuseVerdict = {
  kind: 'refuse',
  reason: 'malformed',
  sqlstate: '08P01',
  message: 'the startup packet did not reach the router',
  logDetail: 'SPOE message pgroute-startup had no binary "pkt" argument: check spoe.conf',
};

function binaryOf(v: TypedValue): Buffer | undefined {
  if (v.type === 'binary') return v.value;
  if (v.type === 'string') return Buffer.from(v.value, 'latin1');
  return undefined;
}

function addressOf(v: TypedValue): string {
  return v.type === 'ipv4' || v.type === 'ipv6' || v.type === 'string' ? v.value : '';
}

function integerOf(v: TypedValue): number {
  switch (v.type) {
    case 'int32':
    case 'uint32':
      return v.value;
    case 'int64':
    case 'uint64':
      return Number(v.value);
    default:
      return 0;
  }
}
