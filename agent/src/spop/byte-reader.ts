// Bounds-checked cursor over a frame body. Every read checks the remaining length first and throws
// SpopError(INVALID) on truncation, so no Buffer method ever sees an out-of-range offset (no RangeError).
// Byte strings come back as subarray views (zero copy); text is decoded as UTF-8.

import { invalid } from './errors.js';

/** First byte values below this are single-byte varints (SPOE.txt 3.1: 0 <= X < 240). */
const VARINT_ONE_BYTE_LIMIT = 240;
/** Continuation bit of the 2nd..nth varint bytes. */
const VARINT_CONTINUATION = 0x80;
/** The first byte carries 4 value bits, so the second byte is weighted 2^4. */
const VARINT_FIRST_SHIFT_WEIGHT = 16;
/** Each continuation byte adds 7 value bits. */
const VARINT_GROUP_WEIGHT = 128;
/** A uint64 needs at most 10 bytes (4 + 9*7 = 67 bits >= 64); an 11th byte always overflows. */
export const VARINT_MAX_BYTES = 10;
/** Largest value a varint may carry (HAProxy decodes into a uint64_t). */
export const VARINT_MAX_VALUE = 0xffff_ffff_ffff_ffffn;

export class ByteReader {
  readonly buf: Buffer;
  pos: number;
  readonly end: number;

  constructor(buf: Buffer, start = 0, end = buf.length) {
    this.buf = buf;
    this.pos = start;
    this.end = end;
  }

  get remaining(): number {
    return this.end - this.pos;
  }

  atEnd(): boolean {
    return this.pos >= this.end;
  }

  private need(n: number, what: string): void {
    if (this.end - this.pos < n) {
      throw invalid(`truncated ${what}: need ${n} byte(s) at offset ${this.pos}, ${this.end - this.pos} left`, this.pos);
    }
  }

  u8(what: string): number {
    this.need(1, what);
    return this.buf[this.pos++]!;
  }

  u32be(what: string): number {
    this.need(4, what);
    const v = this.buf.readUInt32BE(this.pos);
    this.pos += 4;
    return v;
  }

  /** A view of the next `n` bytes (no copy). */
  view(n: number, what: string): Buffer {
    this.need(n, what);
    const start = this.pos;
    this.pos += n;
    return this.buf.subarray(start, start + n);
  }

  /**
   * Varint as a number. Returns -1 (cursor unmoved) when the value exceeds Number.MAX_SAFE_INTEGER,
   * so callers can fall back to varintBigInt(); throws SpopError on truncation.
   *
   * Decoding per HAProxy: value = b0 + sum(b_k * 2^(4 + 7(k-1))), with the raw byte values
   * (continuation bits included) added, which is what undoes the encoder's -240 / -128 offsets.
   * Every partial sum below 2^53 is exact, and a true sum above MAX_SAFE_INTEGER can never round
   * down to it, so the overflow test is sound.
   */
  varintOrOverflow(what: string): number {
    const buf = this.buf;
    const end = this.end;
    let pos = this.pos;
    if (pos >= end) throw invalid(`truncated ${what}: varint missing at offset ${pos}`, pos);
    let b = buf[pos++]!;
    if (b < VARINT_ONE_BYTE_LIMIT) {
      this.pos = pos;
      return b;
    }
    let value = b;
    let weight = VARINT_FIRST_SHIFT_WEIGHT;
    for (;;) {
      if (pos >= end) throw invalid(`truncated ${what}: varint starting at offset ${this.pos} runs past the end`, this.pos);
      b = buf[pos++]!;
      value += b * weight;
      if (value > Number.MAX_SAFE_INTEGER) return -1;
      if (b < VARINT_CONTINUATION) break;
      weight *= VARINT_GROUP_WEIGHT;
    }
    this.pos = pos;
    return value;
  }

  /** Varint as a number; values above Number.MAX_SAFE_INTEGER are rejected as INVALID. */
  varint(what: string): number {
    const start = this.pos;
    const v = this.varintOrOverflow(what);
    if (v < 0) {
      // Distinguish "truncated"/"over 64 bits" from "valid but too large for a number".
      this.varintBigInt(what);
      this.pos = start;
      throw invalid(`${what} at offset ${start} exceeds 2^53-1`, start);
    }
    return v;
  }

  /** Varint over the full uint64 range. Rejects encodings longer than 10 bytes or above 2^64-1. */
  varintBigInt(what: string): bigint {
    const fast = this.varintOrOverflow(what);
    if (fast >= 0) return BigInt(fast);
    const buf = this.buf;
    const start = this.pos;
    let pos = start;
    let value = BigInt(buf[pos++]!);
    let shift = 4n;
    for (let n = 1; ; n++) {
      if (pos >= this.end) throw invalid(`truncated ${what}: varint starting at offset ${start} runs past the end`, start);
      if (n >= VARINT_MAX_BYTES) throw invalid(`${what} at offset ${start}: varint longer than ${VARINT_MAX_BYTES} bytes`, start);
      const b = buf[pos++]!;
      value += BigInt(b) << shift;
      if (b < VARINT_CONTINUATION) break;
      shift += 7n;
    }
    if (value > VARINT_MAX_VALUE) throw invalid(`${what} at offset ${start}: varint overflows 64 bits`, start);
    this.pos = pos;
    return value;
  }

  /** <LENGTH:varint><BYTES> as a view (no copy). */
  lengthPrefixedView(what: string): Buffer {
    const at = this.pos;
    const len = this.varintOrOverflow(what);
    if (len < 0 || len > this.end - this.pos) {
      this.pos = at;
      throw invalid(`${what} at offset ${at}: length runs past the end of the frame (${this.end - at} byte(s) left)`, at);
    }
    const start = this.pos;
    this.pos += len;
    return this.buf.subarray(start, start + len);
  }

  /** <LENGTH:varint><BYTES> decoded as UTF-8 text. */
  lengthPrefixedString(what: string): string {
    const at = this.pos;
    const len = this.varintOrOverflow(what);
    if (len < 0 || len > this.end - this.pos) {
      this.pos = at;
      throw invalid(`${what} at offset ${at}: length runs past the end of the frame (${this.end - at} byte(s) left)`, at);
    }
    const start = this.pos;
    this.pos += len;
    return len === 0 ? '' : this.buf.toString('utf8', start, start + len);
  }
}
