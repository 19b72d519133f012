// A bounds-checked reader over one packet, with the convention of the agent's SPOP reader
// (spop/byte-reader.ts): every read checks the remaining length first and throws on truncation,
// so no Buffer method ever sees an out-of-range offset. A decoder that names its malformations
// checks the lengths it relies on before reading (as pg-protocol's parser does), so a throw from
// here means input that no such check covers.

import { INT32_BYTES, NUL } from './constants.js';

/** A read ran past the end of the packet. Offsets count from the reader's start. */
export class PacketTruncatedError extends RangeError {
  override readonly name = 'PacketTruncatedError';
}

export class BufferReader {
  private offset: number;

  /** Reads `buffer` from `start` up to (not including) `end`. */
  constructor(
    private readonly buffer: Buffer,
    private readonly start = 0,
    private readonly end = buffer.length,
  ) {
    this.offset = start;
  }

  get position(): number {
    return this.offset;
  }

  get remaining(): number {
    return this.end - this.offset;
  }

  private need(n: number, what: string): void {
    if (n < 0 || this.remaining < n) {
      throw new PacketTruncatedError(
        `truncated ${what}: need ${n} byte(s) at offset ${this.offset - this.start}, ${this.remaining} left`,
      );
    }
  }

  /** Big-endian signed Int32. */
  int32(what: string): number {
    this.need(INT32_BYTES, what);
    const value = this.buffer.readInt32BE(this.offset);
    this.offset += INT32_BYTES;
    return value;
  }

  /** Big-endian unsigned Int32. */
  uint32(what: string): number {
    this.need(INT32_BYTES, what);
    const value = this.buffer.readUInt32BE(this.offset);
    this.offset += INT32_BYTES;
    return value;
  }

  byte(what: string): number {
    this.need(1, what);
    return this.buffer[this.offset++]!;
  }

  /** The next `length` bytes (a view, not a copy). */
  bytes(length: number, what: string): Buffer {
    this.need(length, what);
    const view = this.buffer.subarray(this.offset, this.offset + length);
    this.offset += length;
    return view;
  }

  /** The raw bytes of a NUL-terminated string (terminator consumed, not included). */
  cstringBytes(what: string): Buffer {
    const nul = this.buffer.indexOf(NUL, this.offset);
    if (nul === -1 || nul >= this.end) {
      throw new PacketTruncatedError(
        `truncated ${what}: no \\0 between offset ${this.offset - this.start} and the end of the packet`,
      );
    }
    const view = this.buffer.subarray(this.offset, nul);
    this.offset = nul + 1;
    return view;
  }
}
