// HAProxy's variable-length integer ("Peers encoding", SPOE.txt 3.1).
//
//        0  <= X < 240        : 1 byte  [ XXXX XXXX ]
//      240  <= X < 2288       : 2 bytes [ 1111 XXXX ] [ 0XXX XXXX ]
//     2288  <= X < 264432     : 3 bytes [ 1111 XXXX ] [ 1XXX XXXX ] [ 0XXX XXXX ]
//   ...
// Encoding: if X >= 240, emit (X | 0xF0) & 0xFF, then X = (X - 240) >> 4; while X >= 128 emit
// (X | 0x80) & 0xFF and X = (X - 128) >> 7; finally emit X. Decoding lives in ByteReader (hot path).
// Values are unsigned 64-bit; negative signed integers travel as their 64-bit two's complement.

import { ByteReader, VARINT_MAX_VALUE } from './byte-reader.js';
import { invalid } from './errors.js';

/** First byte values below this are the value itself. */
const ONE_BYTE_LIMIT = 240;
/** Marker/offset of the first byte of a multi-byte varint. */
const FIRST_BYTE_MARK = 0xf0;
/** The first byte holds 4 value bits. */
const FIRST_BYTE_DIVISOR = 16;
/** Continuation marker/offset of the following bytes. */
const CONTINUATION = 0x80;
/** The following bytes hold 7 value bits each. */
const GROUP_DIVISOR = 128;
const BYTE_MODULUS = 256;

export { VARINT_MAX_VALUE, VARINT_MAX_BYTES } from './byte-reader.js';

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
  let rest = Math.floor((value - ONE_BYTE_LIMIT) / FIRST_BYTE_DIVISOR);
  while (rest >= GROUP_DIVISOR) {
    size++;
    rest = Math.floor((rest - GROUP_DIVISOR) / GROUP_DIVISOR);
  }
  return size;
}

/** Encoded size in bytes of a uint64. */
export function varintSizeBigInt(value: bigint): number {
  if (value <= BigInt(Number.MAX_SAFE_INTEGER)) return varintSize(Number(value));
  let size = 2;
  let rest = (value - BigInt(ONE_BYTE_LIMIT)) >> 4n;
  while (rest >= BigInt(GROUP_DIVISOR)) {
    size++;
    rest = (rest - BigInt(GROUP_DIVISOR)) >> 7n;
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
  let rest = Math.floor((value - ONE_BYTE_LIMIT) / FIRST_BYTE_DIVISOR);
  while (rest >= GROUP_DIVISOR) {
    buf[offset++] = (rest % GROUP_DIVISOR) | CONTINUATION;
    rest = Math.floor((rest - GROUP_DIVISOR) / GROUP_DIVISOR);
  }
  buf[offset++] = rest;
  return offset;
}

/** Writes a uint64 at `offset`; returns the offset after it. */
export function writeVarintBigInt(buf: Buffer, offset: number, value: bigint): number {
  if (value <= BigInt(Number.MAX_SAFE_INTEGER)) return writeVarint(buf, offset, Number(value));
  buf[offset++] = Number(value & 0xffn) | FIRST_BYTE_MARK;
  let rest = (value - BigInt(ONE_BYTE_LIMIT)) >> 4n;
  while (rest >= BigInt(GROUP_DIVISOR)) {
    buf[offset++] = Number(rest & 0x7fn) | CONTINUATION;
    rest = (rest - BigInt(GROUP_DIVISOR)) >> 7n;
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
  const reader = new ByteReader(buf, offset);
  const value = reader.varintBigInt('varint');
  return { value, size: reader.pos - offset };
}

export { assertUint as assertVarintNumber, assertUint64 as assertVarintBigInt };
