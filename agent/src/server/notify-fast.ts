// Fast path for the one NOTIFY shape HAProxy sends this agent: a single `pgroute-startup` message
// whose args are pkt (BINARY), src (IPV4/IPV6), dport (an integer below 2^31), tls (BOOL) and sni
// (STRING, or NULL when the connection has none), in any order
// (a repeated arg: the last one wins, as in handleMessage). It reads the frame
// body in place: names are compared as bytes, the packet stays where it is (start/end offsets),
// no TypedValue or message objects are built.
//
// It never throws and never decides on its own: anything else (another message, another type, an
// unknown arg, a truncation, an id or integer out of the simple range, trailing bytes) returns
// false, and the caller takes the generic decodeFrame() + handleMessage() path, which applies every
// protocol check and names every malformation. So on frames it accepts, the fast path gives exactly
// what the generic path gives.

import { DATA_FLAG_TRUE, DATA_TYPE, DATA_TYPE_MASK, FRAME_FLAG, FRAME_TYPE, IPV4_SIZE, IPV6_SIZE, MIN_FRAME_BODY_SIZE } from '../spop/constants.js';
import { formatIPv4, formatIPv6 } from '../spop/ip.js';
import { STARTUP_MESSAGE } from './notify-handler.js';

/** What the fast path read from one NOTIFY (reused per connection: no allocation per frame). */
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

const MESSAGE_NAME = Buffer.from(STARTUP_MESSAGE, 'latin1');
/** Arg name bytes: "pkt", "src", "dport". */
const P = 0x70;
const K = 0x6b;
const T = 0x74;
const S = 0x73;
const R = 0x72;
const C = 0x63;
const D = 0x64;
const O = 0x6f;
const L = 0x6c;
const N = 0x6e;
const I = 0x69;
/** Longest server name taken on the fast path (DNS names are at most 253 bytes). */
const SNI_MAX = 253;

/** Largest value the fast varint accepts (2^31 - 1): ids, lengths and ports are far below. */
const FAST_VARINT_MAX = 0x7fff_ffff;

/** Cursor of the last readVarint() (module state: the parser is synchronous). */
let cursor = 0;

/**
 * SPOP varint at body[pos] (see spop/byte-reader.ts), or -1 when truncated or above FAST_VARINT_MAX.
 * Sets `cursor` to the byte after it.
 */
function readVarint(body: Buffer, pos: number, end: number): number {
  if (pos >= end) return -1;
  let b = body[pos++]!;
  if (b < 240) {
    cursor = pos;
    return b;
  }
  let value = b;
  let weight = 16;
  for (let n = 1; ; n++) {
    if (pos >= end || n > 4) return -1;
    b = body[pos++]!;
    value += b * weight;
    if (value > FAST_VARINT_MAX) return -1;
    if (b < 128) break;
    weight *= 128;
  }
  cursor = pos;
  return value;
}

/**
 * Reads `body` (a frame body without its length prefix) into `out` when it is a NOTIFY of the
 * simple shape described above; false means "take the generic path" (nothing is half-done).
 */
export function readStartupNotify(body: Buffer, out: StartupNotify): boolean {
  const end = body.length;
  if (end < MIN_FRAME_BODY_SIZE || body[0] !== FRAME_TYPE.NOTIFY) return false;
  // FLAGS is big-endian: FIN is bit 0 of its last byte.
  if ((body[4]! & FRAME_FLAG.FIN) === 0) return false;
  const streamId = readVarint(body, 5, end);
  if (streamId < 0) return false;
  const frameId = readVarint(body, cursor, end);
  if (frameId < 0) return false;
  let pos = cursor;

  // Exactly one message, named pgroute-startup.
  const nameLen = readVarint(body, pos, end);
  if (nameLen !== MESSAGE_NAME.length) return false;
  pos = cursor;
  if (end - pos < nameLen + 1) return false;
  for (let i = 0; i < nameLen; i++) if (body[pos + i] !== MESSAGE_NAME[i]) return false;
  pos += nameLen;
  const nbArgs = body[pos++]!;

  let pktStart = -1;
  let pktEnd = -1;
  let src = '';
  let dport = 0;
  let tls = false;
  let sni = '';
  for (let a = 0; a < nbArgs; a++) {
    const argLen = readVarint(body, pos, end);
    if (argLen < 0) return false;
    pos = cursor;
    // name + at least the type byte
    if (end - pos < argLen + 1) return false;
    if (argLen !== 3 && argLen !== 5) return false;
    const n0 = body[pos]!;
    const n1 = body[pos + 1]!;
    const n2 = body[pos + 2]!;
    const typeAt = pos + argLen;
    const type = body[typeAt]! & DATA_TYPE_MASK;
    pos = typeAt + 1;
    if (argLen === 3 && n0 === P && n1 === K && n2 === T) {
      if (type !== DATA_TYPE.BINARY) return false;
      const len = readVarint(body, pos, end);
      if (len < 0 || len > end - cursor) return false;
      pktStart = cursor;
      pktEnd = cursor + len;
      pos = pktEnd;
    } else if (argLen === 3 && n0 === S && n1 === R && n2 === C) {
      if (type === DATA_TYPE.IPV4) {
        if (end - pos < IPV4_SIZE) return false;
        src = formatIPv4(body, pos);
        pos += IPV4_SIZE;
      } else if (type === DATA_TYPE.IPV6) {
        if (end - pos < IPV6_SIZE) return false;
        src = formatIPv6(body, pos);
        pos += IPV6_SIZE;
      } else return false;
    } else if (argLen === 3 && n0 === T && n1 === L && n2 === S) {
      if (type !== DATA_TYPE.BOOL) return false;
      tls = (body[typeAt]! & DATA_FLAG_TRUE) !== 0;
    } else if (argLen === 3 && n0 === S && n1 === N && n2 === I) {
      if (type === DATA_TYPE.NULL) sni = '';
      else if (type === DATA_TYPE.STRING) {
        const len = readVarint(body, pos, end);
        if (len < 0 || len > SNI_MAX || len > end - cursor) return false;
        // Server names are ASCII; anything else takes the generic (UTF-8) path.
        for (let i = cursor; i < cursor + len; i++) if (body[i]! >= 0x80) return false;
        sni = body.toString('latin1', cursor, cursor + len);
        pos = cursor + len;
      } else return false;
    } else if (argLen === 5 && n0 === D && n1 === P && n2 === O && body[typeAt - 2] === R && body[typeAt - 1] === T) {
      // INT32, UINT32, INT64, UINT64: a value in 0..2^31-1 reads the same under all four.
      if (type < DATA_TYPE.INT32 || type > DATA_TYPE.UINT64) return false;
      const v = readVarint(body, pos, end);
      if (v < 0) return false;
      dport = v;
      pos = cursor;
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
