// Hot-path ACK encoder: set-var actions in TRANSACTION scope with STRING or BINARY values.
// Computes the exact size first, then does a single Buffer.allocUnsafe and writes in place; no
// intermediate objects or buffers. Names may be given pre-encoded (Buffer) to skip UTF-8 work.
//
//   <LEN:4> <ACK:1> <FLAGS:4 = FIN> <STREAM-ID:varint> <FRAME-ID:varint>
//   { <SET-VAR:1> <NB-ARGS:1 = 3> <SCOPE:1 = TRANSACTION> <NAME-LEN:varint><NAME> <TYPE:1><LEN:varint><BYTES> }*

import { ACTION_NB_ARGS, ACTION_TYPE, DATA_TYPE, FRAME_FLAG, FRAME_LENGTH_PREFIX_SIZE, FRAME_TYPE, STATUS, VAR_SCOPE } from './constants.js';
import { SpopError, invalid } from './errors.js';
import { varintSize, writeVarint } from './varint.js';

export interface TxnSetVar {
  /** Variable name without HAProxy's "txn.<prefix>." (HAProxy adds it). A Buffer is taken as UTF-8 bytes. */
  readonly name: string | Buffer;
  /** A string is sent as STRING (UTF-8), a Buffer as BINARY. */
  readonly value: string | Buffer;
}

/** TYPE + FLAGS + STREAM-ID/FRAME-ID start: fixed part of the body before the ids. */
const ACK_FIXED_HEADER = 1 + 4;
/** ACTION-TYPE + NB-ARGS + VAR-SCOPE */
const SET_VAR_FIXED = 3;
/** The TYPED-DATA type byte. */
const TYPE_BYTE = 1;

function byteLen(v: string | Buffer): number {
  return typeof v === 'string' ? Buffer.byteLength(v, 'utf8') : v.length;
}

/** Short ASCII strings are copied char by char: cheaper than Buffer#write's native call for tiny inputs. */
const SMALL_ASCII_MAX = 32;

function writeText(buf: Buffer, o: number, s: string, byteLength: number): void {
  if (byteLength === s.length && byteLength <= SMALL_ASCII_MAX) {
    // byteLength === length only when every char is ASCII (anything else takes >= 2 UTF-8 bytes).
    for (let i = 0; i < byteLength; i++) buf[o + i] = s.charCodeAt(i);
  } else {
    buf.write(s, o, byteLength, 'utf8');
  }
}

function checkId(id: number, what: string): void {
  if (!Number.isSafeInteger(id) || id < 0) throw invalid(`${what} must be a non-negative safe integer, got ${String(id)}`);
}

/**
 * Encodes an ACK (length prefix included) setting each variable in TRANSACTION scope.
 * `maxFrameSize`, when given, turns an oversized result into SpopError(TOO_BIG).
 */
export function encodeAck(streamId: number, frameId: number, actions: readonly TxnSetVar[], maxFrameSize?: number): Buffer {
  checkId(streamId, 'STREAM-ID');
  checkId(frameId, 'FRAME-ID');
  const n = actions.length;
  // Pass 1: sizes. Byte lengths are cached in a small array only when there are several actions.
  let body = ACK_FIXED_HEADER + varintSize(streamId) + varintSize(frameId);
  const lens = n <= 1 ? null : new Array<number>(2 * n);
  let nameLen0 = 0;
  let valueLen0 = 0;
  for (let i = 0; i < n; i++) {
    const a = actions[i]!;
    const nameLen = byteLen(a.name);
    const valueLen = byteLen(a.value);
    if (lens === null) {
      nameLen0 = nameLen;
      valueLen0 = valueLen;
    } else {
      lens[2 * i] = nameLen;
      lens[2 * i + 1] = valueLen;
    }
    body += SET_VAR_FIXED + varintSize(nameLen) + nameLen + TYPE_BYTE + varintSize(valueLen) + valueLen;
  }
  if (maxFrameSize !== undefined && body > maxFrameSize) {
    throw new SpopError(STATUS.TOO_BIG, `ACK is ${body} bytes, max-frame-size is ${maxFrameSize}`);
  }

  // Pass 2: one allocation, write in place.
  const buf = Buffer.allocUnsafe(FRAME_LENGTH_PREFIX_SIZE + body);
  buf.writeUInt32BE(body, 0);
  let o = FRAME_LENGTH_PREFIX_SIZE;
  buf[o++] = FRAME_TYPE.ACK;
  buf.writeUInt32BE(FRAME_FLAG.FIN, o);
  o += 4;
  o = writeVarint(buf, o, streamId);
  o = writeVarint(buf, o, frameId);
  for (let i = 0; i < n; i++) {
    const a = actions[i]!;
    const nameLen = lens === null ? nameLen0 : lens[2 * i]!;
    const valueLen = lens === null ? valueLen0 : lens[2 * i + 1]!;
    buf[o++] = ACTION_TYPE.SET_VAR;
    buf[o++] = ACTION_NB_ARGS.SET_VAR;
    buf[o++] = VAR_SCOPE.TRANSACTION;
    o = writeVarint(buf, o, nameLen);
    if (typeof a.name === 'string') writeText(buf, o, a.name, nameLen);
    else a.name.copy(buf, o);
    o += nameLen;
    const value = a.value;
    if (typeof value === 'string') {
      buf[o++] = DATA_TYPE.STRING;
      o = writeVarint(buf, o, valueLen);
      writeText(buf, o, value, valueLen);
    } else {
      buf[o++] = DATA_TYPE.BINARY;
      o = writeVarint(buf, o, valueLen);
      value.copy(buf, o);
    }
    o += valueLen;
  }
  return buf;
}

/** Bytes of an ACK body before its actions when both ids are 0 (TYPE, FLAGS, two 1-byte varints). */
const ACK_HEADER_WITH_ZERO_IDS = ACK_FIXED_HEADER + 2;

/**
 * The encoded actions of encodeAck(…, actions): the bytes after the ids, to be sent again and again
 * with encodeAckWithPayload(). Throws like encodeAck on values it cannot encode.
 */
export function encodeAckPayload(actions: readonly TxnSetVar[]): Buffer {
  const full = encodeAck(0, 0, actions);
  return Buffer.from(full.subarray(FRAME_LENGTH_PREFIX_SIZE + ACK_HEADER_WITH_ZERO_IDS));
}

/** encodeAck() with the actions already encoded by encodeAckPayload(): the same bytes, one copy. */
export function encodeAckWithPayload(streamId: number, frameId: number, payload: Buffer, maxFrameSize?: number): Buffer {
  checkId(streamId, 'STREAM-ID');
  checkId(frameId, 'FRAME-ID');
  const body = ACK_FIXED_HEADER + varintSize(streamId) + varintSize(frameId) + payload.length;
  if (maxFrameSize !== undefined && body > maxFrameSize) {
    throw new SpopError(STATUS.TOO_BIG, `ACK is ${body} bytes, max-frame-size is ${maxFrameSize}`);
  }
  const buf = Buffer.allocUnsafe(FRAME_LENGTH_PREFIX_SIZE + body);
  buf.writeUInt32BE(body, 0);
  let o = FRAME_LENGTH_PREFIX_SIZE;
  buf[o++] = FRAME_TYPE.ACK;
  buf[o++] = 0;
  buf[o++] = 0;
  buf[o++] = 0;
  buf[o++] = FRAME_FLAG.FIN;
  o = writeVarint(buf, o, streamId);
  o = writeVarint(buf, o, frameId);
  buf.set(payload, o);
  return buf;
}
