// Cursor over a pre-sized output Buffer. Encoders compute the exact size first, allocate once
// (Buffer.allocUnsafe) and fill it through this writer; `finish()` checks the size was right.

import { writeVarint, writeVarintBigInt } from './varint.js';

export class ByteWriter {
  readonly buf: Buffer;
  pos: number;

  constructor(size: number) {
    this.buf = Buffer.allocUnsafe(size);
    this.pos = 0;
  }

  u8(v: number): void {
    this.buf[this.pos++] = v;
  }

  u32be(v: number): void {
    this.buf.writeUInt32BE(v, this.pos);
    this.pos += 4;
  }

  varint(v: number): void {
    this.pos = writeVarint(this.buf, this.pos, v);
  }

  varintBigInt(v: bigint): void {
    this.pos = writeVarintBigInt(this.buf, this.pos, v);
  }

  bytes(src: Uint8Array): void {
    this.buf.set(src, this.pos);
    this.pos += src.length;
  }

  /** Writes `s` as UTF-8; `byteLength` must be Buffer.byteLength(s) (already computed for sizing). */
  utf8(s: string, byteLength: number): void {
    if (byteLength > 0) this.buf.write(s, this.pos, byteLength, 'utf8');
    this.pos += byteLength;
  }

  /** <LENGTH:varint><BYTES> */
  lengthPrefixedBytes(src: Uint8Array): void {
    this.varint(src.length);
    this.bytes(src);
  }

  /** <LENGTH:varint><UTF-8 BYTES> */
  lengthPrefixedString(s: string, byteLength: number): void {
    this.varint(byteLength);
    this.utf8(s, byteLength);
  }

  /** Returns the buffer, asserting the precomputed size was exact (an internal invariant). */
  finish(): Buffer {
    if (this.pos !== this.buf.length) {
      throw new Error(`internal SPOP encoder error: wrote ${this.pos} byte(s) into a ${this.buf.length}-byte buffer`);
    }
    return this.buf;
  }
}
