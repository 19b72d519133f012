// The frame layer, both directions: <FRAME-TYPE:1 byte> <FLAGS:4 bytes BE> <STREAM-ID:varint>
// <FRAME-ID:varint> <PAYLOAD> (SPOE.txt 3.2). readFrameHeader() checks the metadata of a frame body
// (WITHOUT the 4-byte length prefix, as FrameReader yields it); writeFrame() builds the complete
// wire bytes WITH the prefix from a prepared payload. Payloads are the message layer's business
// (haproxy-frames.ts, agent-frames.ts, testing/).
//
// Fragmentation is not supported: a frame without FIN, or an UNSET (continuation) frame, is rejected
// with FRAGMENTATION_NOT_SUPPORTED (the agent never announces the "fragmentation" capability).

import { ByteReader } from './byte-reader.js';
import { ByteWriter } from './byte-writer.js';
import { FRAME_FLAG, FRAME_LENGTH_PREFIX_SIZE, FRAME_TYPE, MAX_NB_ARGS, MIN_FRAME_BODY_SIZE, STATUS, UINT32_MAX } from './constants.js';
import { SpopError, invalid } from './errors.js';
import { frameKindOf } from './frames.js';
import { prepareTypedData, writeTypedData, type PreparedValue, type TypedValue } from './typed-data.js';
import { varintSize } from './varint.js';

export interface FrameHeader {
  /** The FRAME-TYPE byte (one of FRAME_TYPE, never UNSET). */
  readonly frameType: number;
  readonly flags: number;
  readonly streamId: number;
  readonly frameId: number;
}

/**
 * Reads and checks a frame body's metadata; `r` is left at the payload. Throws SpopError: INVALID
 * for truncation, unknown frame types (with `frameType` set) and non-zero ids on HELLO/DISCONNECT
 * frames; FRAGMENTATION_NOT_SUPPORTED for UNSET frames or a missing FIN.
 */
export function readFrameHeader(r: ByteReader): FrameHeader {
  if (r.remaining < MIN_FRAME_BODY_SIZE) {
    throw invalid(`frame of ${r.remaining} byte(s) is shorter than the ${MIN_FRAME_BODY_SIZE}-byte minimum (type + metadata)`, 0);
  }
  const frameType = r.u8('FRAME-TYPE');
  switch (frameType) {
    case FRAME_TYPE.HAPROXY_HELLO:
    case FRAME_TYPE.HAPROXY_DISCONNECT:
    case FRAME_TYPE.NOTIFY:
    case FRAME_TYPE.AGENT_HELLO:
    case FRAME_TYPE.AGENT_DISCONNECT:
    case FRAME_TYPE.ACK:
      break;
    case FRAME_TYPE.UNSET:
      throw new SpopError(STATUS.FRAGMENTATION_NOT_SUPPORTED, 'received an UNSET (continuation fragment) frame: fragmentation is not supported', { offset: 0, frameType });
    default:
      throw new SpopError(STATUS.INVALID, `unknown frame type ${frameType}`, { offset: 0, frameType });
  }
  const flags = r.u32be('FLAGS');
  if ((flags & FRAME_FLAG.FIN) === 0) {
    throw new SpopError(STATUS.FRAGMENTATION_NOT_SUPPORTED, `frame type ${frameType} without FIN flag (fragmented payload): fragmentation is not supported`, { offset: 1, frameType });
  }
  const idsAt = r.pos;
  const streamId = r.varint('STREAM-ID');
  const frameId = r.varint('FRAME-ID');
  // HELLO and DISCONNECT frames: "STREAM-ID and FRAME-ID are must be set 0".
  if (frameType !== FRAME_TYPE.NOTIFY && frameType !== FRAME_TYPE.ACK && (streamId !== 0 || frameId !== 0)) {
    throw invalid(`frame type ${frameType} must have STREAM-ID and FRAME-ID 0, got ${streamId}/${frameId}`, idsAt);
  }
  return { frameType, flags, streamId, frameId };
}

/** The payload reader of each frame type one peer sends; `h` is the header already read. */
export type PayloadReaders<F> = Readonly<Partial<Record<number, (r: ByteReader, h: FrameHeader) => F>>>;

/**
 * Decodes one frame body: the header, then the payload by `readers`. A frame type with no reader is
 * one only the other peer sends (`otherPeer` names it in the error): SpopError(INVALID).
 */
export function decodeFrame<F>(body: Buffer, readers: PayloadReaders<F>, otherPeer: string): F {
  const r = new ByteReader(body);
  const h = readFrameHeader(r);
  const read = readers[h.frameType];
  if (read === undefined) {
    throw new SpopError(STATUS.INVALID, `unexpected ${String(frameKindOf(h.frameType))} frame: only ${otherPeer} sends it`, { offset: 0, frameType: h.frameType });
  }
  return read(r, h);
}

// ---------------------------------------------------------------------------------------------
// Writing: a payload is "prepared" (validated, sized) first, then written into one buffer.

interface PreparedString {
  readonly s: string;
  readonly len: number;
}

type Item = { kind: 'str'; p: PreparedString } | { kind: 'val'; p: PreparedValue } | { kind: 'u8'; v: number };

/** A list of prepared items; the frame payload is their concatenation. */
export class Payload {
  readonly items: Item[] = [];
  size = 0;
  str(s: string, what: string): void {
    if (typeof s !== 'string') throw invalid(`${what} must be a string, got ${typeof s}`);
    const p = { s, len: Buffer.byteLength(s, 'utf8') };
    this.items.push({ kind: 'str', p });
    this.size += varintSize(p.len) + p.len;
  }
  val(v: TypedValue): void {
    const p = prepareTypedData(v);
    this.items.push({ kind: 'val', p });
    this.size += p.size;
  }
  u8(v: number): void {
    this.items.push({ kind: 'u8', v });
    this.size += 1;
  }
  kv(key: string, v: TypedValue): void {
    this.str(key, 'KV name');
    this.val(v);
  }
  write(w: ByteWriter): void {
    for (const it of this.items) {
      if (it.kind === 'str') w.lengthPrefixedString(it.p.s, it.p.len);
      else if (it.kind === 'val') writeTypedData(w, it.p);
      else w.u8(it.v);
    }
  }
}

export function checkId(id: number, what: string): void {
  if (typeof id !== 'number' || !Number.isSafeInteger(id) || id < 0) {
    throw invalid(`${what} must be a non-negative safe integer, got ${String(id)}`);
  }
}

export function checkUint32(v: number, what: string): void {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > UINT32_MAX) {
    throw invalid(`${what} must be an integer within 0..${UINT32_MAX}, got ${String(v)}`);
  }
}

export function checkFlags(flags: number): void {
  checkUint32(flags, 'FLAGS');
  if ((flags & FRAME_FLAG.FIN) === 0) throw invalid('FLAGS must include FIN: fragmentation is not supported');
}

export function checkNbArgs(n: number, what: string): void {
  if (n > MAX_NB_ARGS) throw invalid(`${what} has ${n} arguments, NB-ARGS allows at most ${MAX_NB_ARGS}`);
}

/** Joins list items for a comma-separated KV value; items must be non-empty and comma-free. */
export function checkCommaItems(items: readonly string[], what: string): string {
  if (!Array.isArray(items)) throw invalid(`${what} must be an array of strings`);
  for (const it of items) {
    if (typeof it !== 'string' || it.length === 0 || it.includes(',')) {
      throw invalid(`${what} items must be non-empty strings without commas, got ${JSON.stringify(it)}`);
    }
  }
  return items.join(',');
}

/** Size of a frame body: TYPE + FLAGS + both ids + payload. */
export function frameBodySize(streamId: number, frameId: number, payloadSize: number): number {
  return 1 + 4 + varintSize(streamId) + varintSize(frameId) + payloadSize;
}

/** TOO_BIG when a body exceeds the negotiated max-frame-size (when given) or 32 bits. */
export function checkBodySize(bodySize: number, maxFrameSize: number | undefined, what = 'encoded frame'): void {
  if (maxFrameSize !== undefined && bodySize > maxFrameSize) {
    throw new SpopError(STATUS.TOO_BIG, `${what} is ${bodySize} bytes, max-frame-size is ${maxFrameSize}`);
  }
  if (bodySize > UINT32_MAX) throw new SpopError(STATUS.TOO_BIG, `${what} is ${bodySize} bytes, over the 32-bit length limit`);
}

/**
 * A writer over a new buffer holding the length prefix and the frame metadata, positioned at the
 * payload, which the caller writes (`payloadSize` bytes exactly, then ByteWriter.finish()).
 */
export function frameWriter(frameType: number, flags: number, streamId: number, frameId: number, payloadSize: number, maxFrameSize?: number, what?: string): ByteWriter {
  const bodySize = frameBodySize(streamId, frameId, payloadSize);
  checkBodySize(bodySize, maxFrameSize, what);
  const w = new ByteWriter(FRAME_LENGTH_PREFIX_SIZE + bodySize);
  w.u32be(bodySize);
  w.u8(frameType);
  w.u32be(flags);
  w.varint(streamId);
  w.varint(frameId);
  return w;
}

/** A whole frame (length prefix included) with a prepared payload. */
export function writeFrame(frameType: number, flags: number, streamId: number, frameId: number, payload: Payload, maxFrameSize?: number): Buffer {
  const w = frameWriter(frameType, flags, streamId, frameId, payload.size, maxFrameSize);
  payload.write(w);
  return w.finish();
}
