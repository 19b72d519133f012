// HAProxy's variable-length integer ("Peers encoding", SPOE.txt 3.1): the one varint of the codec.
// Everything that reads or writes a varint (ByteReader, ByteWriter, the NOTIFY fast path, the test
// encoders) calls the functions below.
//
//        0  <= X < 240        : 1 byte  [ XXXX XXXX ]
//      240  <= X < 2288       : 2 bytes [ 1111 XXXX ] [ 0XXX XXXX ]
//     2288  <= X < 264432     : 3 bytes [ 1111 XXXX ] [ 1XXX XXXX ] [ 0XXX XXXX ]
//   ...
// Encoding: if X >= 240, emit (X | 0xF0) & 0xFF, then X = (X - 240) >> 4; while X >= 128 emit
// (X | 0x80) & 0xFF and X = (X - 128) >> 7; finally emit X.
// Decoding: value = b0 + sum(b_k * 2^(4 + 7(k-1))), with the raw byte values (continuation bits
// included) added, which is what undoes the encoder's -240 / -128 offsets.
// Values are unsigned 64-bit; negative signed integers travel as their 64-bit two's complement.

import { invalid } from './errors.js';

/** First byte values below this are the value itself (0 <= X < 240). */
const ONE_BYTE_LIMIT = 240;
/** Marker of the first byte of a multi-byte varint. */
const FIRST_BYTE_MARK = 0xf0;
/** The first byte holds 4 value bits, so the second byte is weighted 2^4. */
const FIRST_BYTE_WEIGHT = 16;
/** Continuation bit (and offset) of the 2nd..nth bytes. */
const CONTINUATION = 0x80;
/** Each continuation byte holds 7 value bits. */
const GROUP_WEIGHT = 128;
const BYTE_MODULUS = 256;
/** A uint64 needs at most 10 bytes (4 + 9*7 = 67 bits >= 64); an 11th byte always overflows. */
export const VARINT_MAX_BYTES = 10;
/** Largest value a varint may carry (HAProxy decodes into a uint64_t). */
export const VARINT_MAX_VALUE = 0xffff_ffff_ffff_ffffn;

/** readVarint(): the bytes end before the varint does. */
export const VARINT_TRUNCATED = -1;
/** readVarint(): a well-started varint whose value exceeds Number.MAX_SAFE_INTEGER (or its bytes). */
export const VARINT_UNSAFE = -2;

/** Offset after the varint read last (the codec is synchronous; see varintEnd()). */
let next = 0;

/**
 * The offset just after the varint the last successful readVarint() / readVarintBigInt() read.
 * A module variable rather than a cursor object: ByteReader and the NOTIFY fast path both call
 * readVarint(), and one call site per argument shape keeps it monomorphic and allocation-free.
 */
export function varintEnd(): number {
  return next;
}

/**
 * Reads the varint at `pos` (bytes before `end`) as a number; varintEnd() is then the offset after
 * it. Returns VARINT_TRUNCATED or VARINT_UNSAFE instead of throwing: the hot path must not pay for
 * exceptions. Every partial sum below 2^53 is exact, and a true sum above MAX_SAFE_INTEGER can never
 * round down to it, so the overflow test is sound.
 */
export function readVarint(buf: Buffer, pos: number, end: number): number {
  // The one-byte case here and the rest apart: this stays small enough for the compiler to inline
  // at each of the NOTIFY fast path's call sites.
  if (pos < end) {
    const b = buf[pos]!;
    if (b < ONE_BYTE_LIMIT) {
      next = pos + 1;
      return b;
    }
  }
  return readLongVarint(buf, pos, end);
}

/** readVarint() of a varint of two bytes or more (or none). */
function readLongVarint(buf: Buffer, pos: number, end: number): number {
  if (pos >= end) return VARINT_TRUNCATED;
  let b = buf[pos++]!;
  let value = b;
  let weight = FIRST_BYTE_WEIGHT;
  for (;;) {
    if (pos >= end) return VARINT_TRUNCATED;
    b = buf[pos++]!;
    value += b * weight;
    if (value > Number.MAX_SAFE_INTEGER) return VARINT_UNSAFE;
    if (b < CONTINUATION) break;
    weight *= GROUP_WEIGHT;
  }
  next = pos;
  return value;
}

/**
 * Reads the varint at `start` over the full uint64 range; varintEnd() is then the offset after it.
 * Throws SpopError(INVALID) naming `what` on truncation, encodings longer than 10 bytes, or values
 * above 2^64-1.
 */
export function readVarintBigInt(buf: Buffer, start: number, end: number, what: string): bigint {
  const fast = readVarint(buf, start, end);
  if (fast >= 0) return BigInt(fast);
  if (fast === VARINT_TRUNCATED) {
    throw invalid(
      start >= end ? `truncated ${what}: varint missing at offset ${start}` : `truncated ${what}: varint starting at offset ${start} runs past the end`,
      start,
    );
  }
  let pos = start;
  let value = BigInt(buf[pos++]!);
  let shift = 4n;
  for (let n = 1; ; n++) {
    if (pos >= end) throw invalid(`truncated ${what}: varint starting at offset ${start} runs past the end`, start);
    if (n >= VARINT_MAX_BYTES) throw invalid(`${what} at offset ${start}: varint longer than ${VARINT_MAX_BYTES} bytes`, start);
    const b = buf[pos++]!;
    value += BigInt(b) << shift;
    if (b < CONTINUATION) break;
    shift += 7n;
  }
  if (value > VARINT_MAX_VALUE) throw invalid(`${what} at offset ${start}: varint overflows 64 bits`, start);
  next = pos;
  return value;
}

function assertUint(value: number): void {
  if (!Number.isSafeInteger(value) || value < 0) {
    throw invalid(`varint value must be a non-negative safe integer, got ${String(value)}`);
  }
}

function assertUint64(value: bigint): void {
  if (value < 0n || value > VARINT_MAX_VALUE) {
    throw invalid(`varint value must be within 0..2^64-1, got ${value.toString()}`);
  }
}

/** Encoded size in bytes of a non-negative safe integer. */
export function varintSize(value: number): number {
  if (value < ONE_BYTE_LIMIT) return 1;
  let size = 2;
  let rest = Math.floor((value - ONE_BYTE_LIMIT) / FIRST_BYTE_WEIGHT);
  while (rest >= GROUP_WEIGHT) {
    size++;
    rest = Math.floor((rest - GROUP_WEIGHT) / GROUP_WEIGHT);
  }
  return size;
}

/** Encoded size in bytes of a uint64. */
export function varintSizeBigInt(value: bigint): number {
  if (value <= BigInt(Number.MAX_SAFE_INTEGER)) return varintSize(Number(value));
  let size = 2;
  let rest = (value - BigInt(ONE_BYTE_LIMIT)) >> 4n;
  while (rest >= BigInt(GROUP_WEIGHT)) {
    size++;
    rest = (rest - BigInt(GROUP_WEIGHT)) >> 7n;
  }
  return size;
}

/**
 * Writes a non-negative safe integer at `offset`; returns the offset after it. The caller guarantees
 * room (see varintSize). Uses arithmetic, not bit operators, so values above 2^32 are exact.
 */
export function writeVarint(buf: Buffer, offset: number, value: number): number {
  if (value < ONE_BYTE_LIMIT) {
    buf[offset++] = value;
    return offset;
  }
  buf[offset++] = (value % BYTE_MODULUS) | FIRST_BYTE_MARK;
  let rest = Math.floor((value - ONE_BYTE_LIMIT) / FIRST_BYTE_WEIGHT);
  while (rest >= GROUP_WEIGHT) {
    buf[offset++] = (rest % GROUP_WEIGHT) | CONTINUATION;
    rest = Math.floor((rest - GROUP_WEIGHT) / GROUP_WEIGHT);
  }
  buf[offset++] = rest;
  return offset;
}

/** Writes a uint64 at `offset`; returns the offset after it. */
export function writeVarintBigInt(buf: Buffer, offset: number, value: bigint): number {
  if (value <= BigInt(Number.MAX_SAFE_INTEGER)) return writeVarint(buf, offset, Number(value));
  buf[offset++] = Number(value & 0xffn) | FIRST_BYTE_MARK;
  let rest = (value - BigInt(ONE_BYTE_LIMIT)) >> 4n;
  while (rest >= BigInt(GROUP_WEIGHT)) {
    buf[offset++] = Number(rest & 0x7fn) | CONTINUATION;
    rest = (rest - BigInt(GROUP_WEIGHT)) >> 7n;
  }
  buf[offset++] = Number(rest);
  return offset;
}

/** Standalone encoder: number (safe integer) or bigint (0..2^64-1). */
export function encodeVarint(value: number | bigint): Buffer {
  if (typeof value === 'number') {
    assertUint(value);
    const out = Buffer.allocUnsafe(varintSize(value));
    writeVarint(out, 0, value);
    return out;
  }
  assertUint64(value);
  const out = Buffer.allocUnsafe(varintSizeBigInt(value));
  writeVarintBigInt(out, 0, value);
  return out;
}

/** Standalone decoder over the full uint64 range; `size` is the number of bytes consumed. */
export function decodeVarint(buf: Buffer, offset = 0): { value: bigint; size: number } {
  if (!Number.isSafeInteger(offset) || offset < 0 || offset > buf.length) {
    throw invalid(`varint offset ${String(offset)} is outside the buffer (length ${buf.length})`);
  }
  const value = readVarintBigInt(buf, offset, buf.length, 'varint');
  return { value, size: next - offset };
}
