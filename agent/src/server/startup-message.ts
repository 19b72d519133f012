// The startup message of the SPOE contract (spoe-contract.ts) -> the connection's facts -> a
// verdict. Knows the message and argument names; knows nothing of sockets, and decodes frames only
// through spop/.
//
// Two readers of one message, giving the same facts:
//  - startupFacts(message): from a message decoded by the one decoder of HAProxy's frames
//    (spop/haproxy-frames.ts). Takes any message; applies every protocol check there.
//  - readStartupNotify(body): the hot path. Reads the NOTIFY HAProxy sends for every connection in
//    place (names compared as bytes, the packet left where it is, no TypedValue or message objects)
//    when it has exactly the shape HAProxy sends: one startup message with pkt (BINARY), src
//    (IPV4/IPV6), dport (an integer below 2^31), tls (BOOL) and sni (STRING, or NULL), in any order
//    (a repeated arg: the last one wins, as in startupFacts). It never throws and never decides on
//    its own: anything else returns false and the caller takes the decoder. So on frames it accepts
//    it gives exactly what the decoder gives; agent/test/server/startup-message.test.ts proves it
//    over generated frames.

import type { ConnectionFacts, RefuseVerdict, Verdict } from '../decision/types.js';
import { decodePreamble, decodePreambleAt } from '../pg/preamble.js';
import { DATA_FLAG_TRUE, DATA_TYPE, DATA_TYPE_MASK, FRAME_FLAG, FRAME_TYPE, IPV4_SIZE, IPV6_SIZE, MIN_FRAME_BODY_SIZE } from '../spop/constants.js';
import type { SpoeMessage } from '../spop/frames.js';
import { formatIPv4, formatIPv6 } from '../spop/ip.js';
import type { TypedValue } from '../spop/typed-data.js';
import { readVarint, varintEnd } from '../spop/varint.js';
import { decideConnection, type DecisionContext } from './decide-connection.js';
import { cancelMessage } from './cancel-message.js';
import { CANCEL_MESSAGE, STARTUP_ARG, STARTUP_MESSAGE } from './spoe-contract.js';

/** The verdict for one startup or cancel message, or undefined for a message this agent does not know. */
export function handleMessage(ctx: DecisionContext, message: SpoeMessage): Verdict | undefined {
  if (message.name === CANCEL_MESSAGE) {
    const c = cancelMessage(message);
    return c === undefined ? missingPacket : decideConnection(ctx, c.facts, c.packet);
  }
  if (message.name !== STARTUP_MESSAGE) return undefined;
  const facts = startupFacts(message);
  return facts === undefined ? missingPacket : decideConnection(ctx, facts);
}

/** The facts a startup message carries; undefined when it has no packet. */
export function startupFacts(message: SpoeMessage): ConnectionFacts | undefined {
  let pkt: Buffer | undefined;
  let src = '';
  let dport = 0;
  let tls = false;
  let sni = '';
  for (const arg of message.args) {
    if (arg.name === STARTUP_ARG.pkt) pkt = binaryOf(arg.value);
    else if (arg.name === STARTUP_ARG.src) src = addressOf(arg.value);
    else if (arg.name === STARTUP_ARG.dport) dport = integerOf(arg.value);
    else if (arg.name === STARTUP_ARG.tls) tls = arg.value.type === 'bool' && arg.value.value;
    else if (arg.name === STARTUP_ARG.sni) sni = arg.value.type === 'string' ? arg.value.value : '';
  }
  return pkt === undefined ? undefined : facts(decodePreamble(pkt), src, dport, tls, sni);
}

/** What the hot path read from one NOTIFY (reused per connection: no allocation per frame). */
export interface StartupNotify {
  streamId: number;
  frameId: number;
  /** The StartupMessage bytes are body[pktStart, pktEnd). */
  pktStart: number;
  pktEnd: number;
  src: string;
  dport: number;
  tls: boolean;
  /** '' when none. */
  sni: string;
}

export function newStartupNotify(): StartupNotify {
  return { streamId: 0, frameId: 0, pktStart: 0, pktEnd: 0, src: '', dport: 0, tls: false, sni: '' };
}

/** startupFacts() of a NOTIFY read by readStartupNotify(): the packet is body[pktStart, pktEnd) (the buffer it read). */
export function startupNotifyFacts(body: Buffer, n: StartupNotify): ConnectionFacts {
  return facts(decodePreambleAt(body, n.pktStart, n.pktEnd), n.src, n.dport, n.tls, n.sni);
}

/** handleMessage() for a NOTIFY read by readStartupNotify(). */
export function decideStartupNotify(ctx: DecisionContext, body: Buffer, n: StartupNotify): Verdict {
  return decideConnection(ctx, startupNotifyFacts(body, n));
}

function facts(preamble: ConnectionFacts['preamble'], clientAddress: string, frontendPort: number, tls: boolean, sni: string): ConnectionFacts {
  return sni === '' ? { preamble, clientAddress, frontendPort, tls } : { preamble, clientAddress, frontendPort, tls, sni };
}

const missingPacket: RefuseVerdict = {
  kind: 'refuse',
  reason: 'malformed',
  sqlstate: '08P01',
  message: 'the startup packet did not reach the router',
  logDetail: `SPOE message ${STARTUP_MESSAGE} or ${CANCEL_MESSAGE} had no binary "${STARTUP_ARG.pkt}" argument: check spoe.conf`,
};

function binaryOf(v: TypedValue): Buffer | undefined {
  if (v.type === 'binary') return v.value;
  if (v.type === 'string') return Buffer.from(v.value, 'latin1');
  return undefined;
}

function addressOf(v: TypedValue): string {
  return v.type === 'ipv4' || v.type === 'ipv6' || v.type === 'string' ? v.value : '';
}

/** An integer argument's value; anything else (NULL included) is 0. */
export function integerOf(v: TypedValue): number {
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

// ---------------------------------------------------------------------------------------------
// The hot path

const MESSAGE_NAME = Buffer.from(STARTUP_MESSAGE, 'latin1');
const ARG_PKT = Buffer.from(STARTUP_ARG.pkt, 'latin1');
const ARG_SRC = Buffer.from(STARTUP_ARG.src, 'latin1');
const ARG_DPORT = Buffer.from(STARTUP_ARG.dport, 'latin1');
const ARG_TLS = Buffer.from(STARTUP_ARG.tls, 'latin1');
const ARG_SNI = Buffer.from(STARTUP_ARG.sni, 'latin1');
/** Longest server name taken on the fast path (DNS names are at most 253 bytes). */
const SNI_MAX = 253;
/** Largest varint the fast path takes (2^31 - 1): ids, lengths and ports are far below. */
const FAST_VARINT_MAX = 0x7fff_ffff;

/** The varint at `pos` (varintEnd() is the offset after it), or -1 when truncated or above FAST_VARINT_MAX. */
function smallVarint(body: Buffer, pos: number, end: number): number {
  const v = readVarint(body, pos, end);
  return v > FAST_VARINT_MAX ? -1 : v;
}

/** body[pos, pos + len) === name */
function nameIs(body: Buffer, pos: number, len: number, name: Buffer): boolean {
  if (len !== name.length) return false;
  for (let i = 0; i < len; i++) if (body[pos + i] !== name[i]) return false;
  return true;
}

/**
 * Reads the frame body (without its length prefix) at body[start, end) into `out` when it is a
 * NOTIFY of the shape described above; false means "take the decoder" (nothing is half-done).
 * Offsets in `out` are offsets in `body` (FrameReader.nextRange() gives a chunk and where in it).
 */
export function readStartupNotify(body: Buffer, out: StartupNotify, start = 0, end = body.length): boolean {
  if (end - start < MIN_FRAME_BODY_SIZE || body[start] !== FRAME_TYPE.NOTIFY) return false;
  // FLAGS is big-endian: FIN is bit 0 of its last byte.
  if ((body[start + 4]! & FRAME_FLAG.FIN) === 0) return false;
  const streamId = smallVarint(body, start + 5, end);
  if (streamId < 0) return false;
  const frameId = smallVarint(body, varintEnd(), end);
  if (frameId < 0) return false;

  // Exactly one message: the startup message.
  const nameLen = smallVarint(body, varintEnd(), end);
  let pos = varintEnd();
  if (nameLen < 0 || end - pos < nameLen + 1 || !nameIs(body, pos, nameLen, MESSAGE_NAME)) return false;
  pos += nameLen;
  const nbArgs = body[pos++]!;

  let pktStart = -1;
  let pktEnd = -1;
  let src = '';
  let dport = 0;
  let tls = false;
  let sni = '';
  for (let a = 0; a < nbArgs; a++) {
    const argLen = smallVarint(body, pos, end);
    if (argLen < 0) return false;
    pos = varintEnd();
    // name + at least the type byte
    if (end - pos < argLen + 1) return false;
    const typeAt = pos + argLen;
    const typeByte = body[typeAt]!;
    const type = typeByte & DATA_TYPE_MASK;
    pos = typeAt + 1;
    const nameAt = typeAt - argLen;
    if (nameIs(body, nameAt, argLen, ARG_PKT)) {
      if (type !== DATA_TYPE.BINARY) return false;
      const len = smallVarint(body, pos, end);
      if (len < 0 || len > end - varintEnd()) return false;
      pktStart = varintEnd();
      pktEnd = pktStart + len;
      pos = pktEnd;
    } else if (nameIs(body, nameAt, argLen, ARG_SRC)) {
      if (type === DATA_TYPE.IPV4) {
        if (end - pos < IPV4_SIZE) return false;
        src = formatIPv4(body, pos);
        pos += IPV4_SIZE;
      } else if (type === DATA_TYPE.IPV6) {
        if (end - pos < IPV6_SIZE) return false;
        src = formatIPv6(body, pos);
        pos += IPV6_SIZE;
      } else return false;
    } else if (nameIs(body, nameAt, argLen, ARG_TLS)) {
      if (type !== DATA_TYPE.BOOL) return false;
      tls = (typeByte & DATA_FLAG_TRUE) !== 0;
    } else if (nameIs(body, nameAt, argLen, ARG_SNI)) {
      if (type === DATA_TYPE.NULL) sni = '';
      else if (type === DATA_TYPE.STRING) {
        const len = smallVarint(body, pos, end);
        const from = varintEnd();
        if (len < 0 || len > SNI_MAX || len > end - from) return false;
        // Server names are ASCII; anything else takes the decoder (UTF-8).
        for (let i = from; i < from + len; i++) if (body[i]! >= 0x80) return false;
        sni = body.toString('latin1', from, from + len);
        pos = from + len;
      } else return false;
    } else if (nameIs(body, nameAt, argLen, ARG_DPORT)) {
      // INT32, UINT32, INT64, UINT64: a value in 0..2^31-1 reads the same under all four.
      if (type < DATA_TYPE.INT32 || type > DATA_TYPE.UINT64) return false;
      const v = smallVarint(body, pos, end);
      if (v < 0) return false;
      dport = v;
      pos = varintEnd();
    } else {
      return false;
    }
  }
  if (pos !== end || pktStart < 0) return false;
  out.streamId = streamId;
  out.frameId = frameId;
  out.pktStart = pktStart;
  out.pktEnd = pktEnd;
  out.src = src;
  out.dport = dport;
  out.tls = tls;
  out.sni = sni;
  return true;
}
