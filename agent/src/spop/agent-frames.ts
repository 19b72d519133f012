// The encoder of what the agent sends (SPOE.txt 3.2): AGENT-HELLO, ACK and AGENT-DISCONNECT, as
// complete wire bytes (4-byte length prefix included).
//
// ACKs are the hot path: set-var actions in TRANSACTION scope with STRING or BINARY values. The
// exact size is computed first, then one Buffer.allocUnsafe, written in place; no intermediate
// objects. Names may be given pre-encoded (Buffer) to skip UTF-8 work, and a route's actions may be
// encoded once (encodeAckPayload) and sent again and again (encodeAckWithPayload).
//
//   <LEN:4> <ACK:1> <FLAGS:4 = FIN> <STREAM-ID:varint> <FRAME-ID:varint>
//   { <SET-VAR:1> <NB-ARGS:1 = 3> <SCOPE:1 = TRANSACTION> <NAME-LEN:varint><NAME> <TYPE:1><LEN:varint><BYTES> }*

import { ACTION_NB_ARGS, ACTION_TYPE, DATA_TYPE, FRAME_FLAG, FRAME_LENGTH_PREFIX_SIZE, FRAME_TYPE, KV_KEY, MAX_DISCONNECT_MESSAGE_BYTES, VAR_SCOPE } from './constants.js';
import { invalid } from './errors.js';
import { Payload, checkBodySize, checkCommaItems, checkFlags, checkId, checkUint32, frameBodySize, writeFrame } from './frame-codec.js';
import type { AckFrame, AgentDisconnectFrame, AgentFrame, AgentHelloFrame } from './frames.js';
import { varintSize, writeVarint } from './varint.js';

export interface TxnSetVar {
  /** Variable name without HAProxy's "txn.<prefix>." (HAProxy adds it). A Buffer is taken as UTF-8 bytes. */
  readonly name: string | Buffer;
  /** A string is sent as STRING (UTF-8), a Buffer as BINARY. */
  readonly value: string | Buffer;
}

export function encodeAgentHello(frame: AgentHelloFrame, maxFrameSize?: number): Buffer {
  checkUint32(frame.maxFrameSize, 'max-frame-size');
  const p = new Payload();
  p.kv(KV_KEY.VERSION, { type: 'string', value: frame.version });
  p.kv(KV_KEY.MAX_FRAME_SIZE, { type: 'uint32', value: frame.maxFrameSize });
  p.kv(KV_KEY.CAPABILITIES, { type: 'string', value: checkCommaItems(frame.capabilities, 'capabilities') });
  return writeFrame(FRAME_TYPE.AGENT_HELLO, FRAME_FLAG.FIN, 0, 0, p, maxFrameSize);
}

/** A DISCONNECT payload (either direction: testing/ encodes HAPROXY-DISCONNECT with it too). */
export function disconnectPayload(statusCode: number, message: string): Payload {
  checkUint32(statusCode, 'status-code');
  if (typeof message !== 'string') throw invalid('DISCONNECT message must be a string');
  const len = Buffer.byteLength(message, 'utf8');
  if (len > MAX_DISCONNECT_MESSAGE_BYTES) {
    throw invalid(`DISCONNECT message is ${len} bytes; HAProxy accepts at most ${MAX_DISCONNECT_MESSAGE_BYTES}`);
  }
  const p = new Payload();
  p.kv(KV_KEY.STATUS_CODE, { type: 'uint32', value: statusCode });
  p.kv(KV_KEY.MESSAGE, { type: 'string', value: message });
  return p;
}

export function encodeAgentDisconnect(frame: AgentDisconnectFrame, maxFrameSize?: number): Buffer {
  return writeFrame(FRAME_TYPE.AGENT_DISCONNECT, FRAME_FLAG.FIN, 0, 0, disconnectPayload(frame.statusCode, frame.message), maxFrameSize);
}

// ---------------------------------------------------------------------------------------------
// ACK

/** ACTION-TYPE + NB-ARGS + VAR-SCOPE */
const SET_VAR_FIXED = 3;
/** The TYPED-DATA type byte. */
const TYPE_BYTE = 1;
/** Short ASCII strings are copied char by char: cheaper than Buffer#write's native call for tiny inputs. */
const SMALL_ASCII_MAX = 32;

/** Byte lengths of the last measured actions (name, value, name, value, ...): the encoder is synchronous. */
const lens: number[] = [];

function byteLen(v: string | Buffer): number {
  return typeof v === 'string' ? Buffer.byteLength(v, 'utf8') : v.length;
}

/** Payload size of `actions`; leaves their byte lengths in `lens` for writeActions(). */
function measureActions(actions: readonly TxnSetVar[]): number {
  let size = 0;
  for (let i = 0; i < actions.length; i++) {
    const a = actions[i]!;
    const nameLen = byteLen(a.name);
    const valueLen = byteLen(a.value);
    lens[2 * i] = nameLen;
    lens[2 * i + 1] = valueLen;
    size += SET_VAR_FIXED + varintSize(nameLen) + nameLen + TYPE_BYTE + varintSize(valueLen) + valueLen;
  }
  return size;
}

function writeText(buf: Buffer, o: number, s: string, byteLength: number): void {
  if (byteLength === s.length && byteLength <= SMALL_ASCII_MAX) {
    // byteLength === length only when every char is ASCII (anything else takes >= 2 UTF-8 bytes).
    for (let i = 0; i < byteLength; i++) buf[o + i] = s.charCodeAt(i);
  } else {
    buf.write(s, o, byteLength, 'utf8');
  }
}

function writeBytes(buf: Buffer, o: number, v: string | Buffer, byteLength: number): void {
  if (typeof v === 'string') writeText(buf, o, v, byteLength);
  else v.copy(buf, o);
}

/** Writes the actions measured last by measureActions() at `o`; returns the offset after them. */
function writeActions(buf: Buffer, o: number, actions: readonly TxnSetVar[]): number {
  for (let i = 0; i < actions.length; i++) {
    const a = actions[i]!;
    const nameLen = lens[2 * i]!;
    const valueLen = lens[2 * i + 1]!;
    buf[o++] = ACTION_TYPE.SET_VAR;
    buf[o++] = ACTION_NB_ARGS.SET_VAR;
    buf[o++] = VAR_SCOPE.TRANSACTION;
    o = writeVarint(buf, o, nameLen);
    writeBytes(buf, o, a.name, nameLen);
    o += nameLen;
    buf[o++] = typeof a.value === 'string' ? DATA_TYPE.STRING : DATA_TYPE.BINARY;
    o = writeVarint(buf, o, valueLen);
    writeBytes(buf, o, a.value, valueLen);
    o += valueLen;
  }
  return o;
}

/** Writes an ACK's length prefix and metadata at `o` (its payload, `bodySize` - metadata bytes, follows); returns the offset after them. */
function writeAckHeader(buf: Buffer, o: number, bodySize: number, streamId: number, frameId: number, flags: number): number {
  o = writeUint32BE(buf, o, bodySize);
  buf[o++] = FRAME_TYPE.ACK;
  o = writeUint32BE(buf, o, flags);
  return writeVarint(buf, writeVarint(buf, o, streamId), frameId);
}

/** Buffer#writeUInt32BE for a value already checked (checkBodySize, checkFlags), without its checks; returns the offset after it. */
function writeUint32BE(buf: Buffer, o: number, v: number): number {
  buf[o] = v >>> 24;
  buf[o + 1] = (v >>> 16) & 0xff;
  buf[o + 2] = (v >>> 8) & 0xff;
  buf[o + 3] = v & 0xff;
  return o + 4;
}

/** The body size of an ACK with this payload, its ids and size checked. */
function ackBodySize(streamId: number, frameId: number, payloadSize: number, maxFrameSize: number | undefined): number {
  checkId(streamId, 'STREAM-ID');
  checkId(frameId, 'FRAME-ID');
  const bodySize = frameBodySize(streamId, frameId, payloadSize);
  checkBodySize(bodySize, maxFrameSize, 'ACK');
  return bodySize;
}

/**
 * A new ACK buffer (length prefix included) with its metadata written; the payload, `payloadSize`
 * bytes, goes at its end. Written in place rather than through ByteWriter: this runs once per
 * connection HAProxy routes.
 */
function ackBuffer(streamId: number, frameId: number, payloadSize: number, maxFrameSize: number | undefined, flags: number = FRAME_FLAG.FIN): Buffer {
  const bodySize = ackBodySize(streamId, frameId, payloadSize, maxFrameSize);
  const buf = Buffer.allocUnsafe(FRAME_LENGTH_PREFIX_SIZE + bodySize);
  writeAckHeader(buf, 0, bodySize, streamId, frameId, flags);
  return buf;
}

function encodeAckFlags(streamId: number, frameId: number, actions: readonly TxnSetVar[], maxFrameSize: number | undefined, flags?: number): Buffer {
  const payloadSize = measureActions(actions);
  const buf = ackBuffer(streamId, frameId, payloadSize, maxFrameSize, flags);
  writeActions(buf, buf.length - payloadSize, actions);
  return buf;
}

/**
 * Encodes an ACK setting each variable in TRANSACTION scope.
 * `maxFrameSize`, when given, turns an oversized result into SpopError(TOO_BIG).
 */
export function encodeAck(streamId: number, frameId: number, actions: readonly TxnSetVar[], maxFrameSize?: number): Buffer {
  return encodeAckFlags(streamId, frameId, actions, maxFrameSize);
}

/** The encoded actions of encodeAck(…, actions): the bytes after the ids, to be sent again and again with encodeAckWithPayload(). */
export function encodeAckPayload(actions: readonly TxnSetVar[]): Buffer {
  const buf = Buffer.allocUnsafe(measureActions(actions));
  writeActions(buf, 0, actions);
  return buf;
}

/** encodeAck() with the actions already encoded by encodeAckPayload(): the same bytes, one copy. */
export function encodeAckWithPayload(streamId: number, frameId: number, payload: Buffer, maxFrameSize?: number): Buffer {
  const buf = ackBuffer(streamId, frameId, payload.length, maxFrameSize);
  buf.set(payload, buf.length - payload.length);
  return buf;
}

/**
 * The frames answering one read of a connection, written out as one buffer: each ACK's metadata in
 * place and its pre-encoded payload (encodeAckPayload) copied once, rather than a buffer per ACK and
 * then their concatenation. The same bytes as encodeAckWithPayload() of each, in order; other frames
 * go in whole.
 */
export class AgentFrameBatch {
  /** Per frame: [body size, STREAM-ID, FRAME-ID] of an ACK whose payload is parts[i], or [-1, 0, 0] for a whole frame. */
  readonly #meta: number[] = [];
  readonly #parts: Buffer[] = [];
  #size = 0;

  get isEmpty(): boolean {
    return this.#parts.length === 0;
  }

  /** encodeAckWithPayload(streamId, frameId, payload, maxFrameSize), added; throws as it does. */
  ack(streamId: number, frameId: number, payload: Buffer, maxFrameSize?: number): void {
    const bodySize = ackBodySize(streamId, frameId, payload.length, maxFrameSize);
    this.#meta.push(bodySize, streamId, frameId);
    this.#parts.push(payload);
    this.#size += FRAME_LENGTH_PREFIX_SIZE + bodySize;
  }

  /** A whole encoded frame (length prefix included), added. */
  frame(wire: Buffer): void {
    this.#meta.push(-1, 0, 0);
    this.#parts.push(wire);
    this.#size += wire.length;
  }

  /** Every frame added since the last take(), in order, in one buffer; undefined when none. */
  take(): Buffer | undefined {
    const parts = this.#parts;
    const meta = this.#meta;
    const n = parts.length;
    if (n === 0) return undefined;
    let buf: Buffer;
    if (n === 1 && meta[0]! < 0) buf = parts[0]!;
    else {
      buf = Buffer.allocUnsafe(this.#size);
      let o = 0;
      for (let i = 0; i < n; i++) {
        const part = parts[i]!;
        const bodySize = meta[3 * i]!;
        if (bodySize >= 0) o = writeAckHeader(buf, o, bodySize, meta[3 * i + 1]!, meta[3 * i + 2]!, FRAME_FLAG.FIN);
        buf.set(part, o);
        o += part.length;
      }
    }
    parts.length = 0;
    meta.length = 0;
    this.#size = 0;
    return buf;
  }
}

/** The set-vars of an ACK frame value, or INVALID for actions this agent never sends. */
function txnSetVars(frame: AckFrame): TxnSetVar[] {
  return frame.actions.map((a) => {
    if (a.type === 'set-var' && a.scope === 'transaction' && (a.value.type === 'string' || a.value.type === 'binary')) {
      return { name: a.name, value: a.value.value };
    }
    throw invalid(`the agent only sends set-var actions in transaction scope with STRING or BINARY values, got ${JSON.stringify({ type: a.type, scope: a.scope })}`);
  });
}

/** Encodes any frame the agent sends. */
export function encodeAgentFrame(frame: AgentFrame, maxFrameSize?: number): Buffer {
  switch (frame.type) {
    case 'agent-hello':
      return encodeAgentHello(frame, maxFrameSize);
    case 'agent-disconnect':
      return encodeAgentDisconnect(frame, maxFrameSize);
    case 'ack':
      if (frame.flags !== undefined) checkFlags(frame.flags);
      return encodeAckFlags(frame.streamId, frame.frameId, txnSetVars(frame), maxFrameSize, frame.flags);
    default: {
      const unknown: { type?: unknown } = frame;
      throw invalid(`unknown agent frame type ${JSON.stringify(unknown.type)}`);
    }
  }
}
