// Bounds-checked cursor over a frame body. Every read checks the remaining length first and throws
// SpopError(INVALID) on truncation, so no Buffer method ever sees an out-of-range offset (no RangeError);
// pg/buffer-reader.ts follows the same convention for PostgreSQL packets.
// Byte strings come back as subarray views (zero copy); text is decoded as UTF-8.

import { invalid } from './errors.js';
import { VARINT_TRUNCATED, readVarint, readVarintBigInt, varintEnd } from './varint.js';

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
   */
  varintOrOverflow(what: string): number {
    const at = this.pos;
    const v = readVarint(this.buf, at, this.end);
    if (v >= 0) {
      this.pos = varintEnd();
      return v;
    }
    if (v === VARINT_TRUNCATED) {
      throw invalid(at >= this.end ? `truncated ${what}: varint missing at offset ${at}` : `truncated ${what}: varint starting at offset ${at} runs past the end`, at);
    }
    return -1;
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
    const v = readVarintBigInt(this.buf, this.pos, this.end, what);
    this.pos = varintEnd();
    return v;
  }

  /** <LENGTH:varint><BYTES> as a view (no copy). */
  lengthPrefixedView(what: string): Buffer {
    const start = this.skipLengthPrefixed(what);
    return this.buf.subarray(start, this.pos);
  }

  /** <LENGTH:varint><BYTES> decoded as UTF-8 text. */
  lengthPrefixedString(what: string): string {
    const start = this.skipLengthPrefixed(what);
    return start === this.pos ? '' : this.buf.toString('utf8', start, this.pos);
  }

  /** Steps over <LENGTH:varint><BYTES> and returns where the bytes start (they end at `pos`). */
  private skipLengthPrefixed(what: string): number {
    const at = this.pos;
    const len = this.varintOrOverflow(what);
    if (len < 0 || len > this.end - this.pos) {
      this.pos = at;
      throw invalid(`${what} at offset ${at}: length runs past the end of the frame (${this.end - at} byte(s) left)`, at);
    }
    const start = this.pos;
    this.pos += len;
    return start;
  }
}
