// A bounds-checked reader over one packet. Unlike Buffer's own read methods it never throws:
// every read that would run past `end` returns undefined and leaves the offset where it was.

import { INT32_BYTES, NUL } from './constants.js';

export class BufferReader {
  private offset: number;

  /** Reads `buffer` from `start` up to (not including) `end`. */
  constructor(
    private readonly buffer: Buffer,
    start = 0,
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

  /** Big-endian signed Int32, or undefined when fewer than 4 bytes remain. */
  int32(): number | undefined {
    if (this.remaining < INT32_BYTES) return undefined;
    const value = this.buffer.readInt32BE(this.offset);
    this.offset += INT32_BYTES;
    return value;
  }

  /** Big-endian unsigned Int32, or undefined when fewer than 4 bytes remain. */
  uint32(): number | undefined {
    if (this.remaining < INT32_BYTES) return undefined;
    const value = this.buffer.readUInt32BE(this.offset);
    this.offset += INT32_BYTES;
    return value;
  }

  /** The next byte without consuming it, or undefined at the end. */
  peekByte(): number | undefined {
    return this.remaining > 0 ? this.buffer[this.offset] : undefined;
  }

  byte(): number | undefined {
    const value = this.peekByte();
    if (value !== undefined) this.offset += 1;
    return value;
  }

  /** The next `length` bytes (a view, not a copy), or undefined when fewer remain. */
  bytes(length: number): Buffer | undefined {
    if (length < 0 || this.remaining < length) return undefined;
    const view = this.buffer.subarray(this.offset, this.offset + length);
    this.offset += length;
    return view;
  }

  /** Everything up to `end`. */
  rest(): Buffer {
    return this.bytes(this.remaining) ?? Buffer.alloc(0);
  }

  /**
   * The raw bytes of a NUL-terminated string (terminator consumed, not included), or undefined
   * when no NUL occurs before `end` (the offset is then left unchanged).
   */
  cstringBytes(): Buffer | undefined {
    const nul = this.buffer.indexOf(NUL, this.offset);
    if (nul === -1 || nul >= this.end) return undefined;
    const view = this.buffer.subarray(this.offset, nul);
    this.offset = nul + 1;
    return view;
  }
}
