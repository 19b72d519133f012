// A growable writer for protocol messages, in the manner of pg-protocol's Writer: append fields,
// then `flush` frames them with an optional type byte and the Int32 length that counts itself.

import { INT32_BYTES, NUL } from './constants.js';

const INITIAL_CAPACITY = 256;

export class BufferWriter {
  private buffer: Buffer = Buffer.alloc(INITIAL_CAPACITY);
  private length = 0;

  private ensure(extra: number): void {
    const needed = this.length + extra;
    if (needed <= this.buffer.length) return;
    const grown = Buffer.alloc(Math.max(needed, this.buffer.length * 2));
    this.buffer.copy(grown, 0, 0, this.length);
    this.buffer = grown;
  }

  addByte(value: number): this {
    this.ensure(1);
    this.buffer[this.length] = value & 0xff;
    this.length += 1;
    return this;
  }

  addInt32(value: number): this {
    this.ensure(INT32_BYTES);
    this.buffer.writeInt32BE(value | 0, this.length);
    this.length += INT32_BYTES;
    return this;
  }

  addUInt32(value: number): this {
    this.ensure(INT32_BYTES);
    this.buffer.writeUInt32BE(value >>> 0, this.length);
    this.length += INT32_BYTES;
    return this;
  }

  addBytes(bytes: Uint8Array): this {
    this.ensure(bytes.length);
    this.buffer.set(bytes, this.length);
    this.length += bytes.length;
    return this;
  }

  /** UTF-8 bytes of `text` followed by NUL. The caller keeps NUL out of `text`. */
  addCString(text: string): this {
    return this.addBytes(Buffer.from(text, 'utf8')).addByte(NUL);
  }

  /**
   * The finished message: [type byte] Int32 length (counting itself and the body, not the type
   * byte) then the body. Without a type byte this is the untyped framing of a StartupMessage.
   */
  flush(type?: number): Buffer {
    const header = type === undefined ? INT32_BYTES : 1 + INT32_BYTES;
    const out = Buffer.alloc(header + this.length);
    let at = 0;
    if (type !== undefined) at = out.writeUInt8(type, at);
    out.writeInt32BE(INT32_BYTES + this.length, at);
    this.buffer.copy(out, header, 0, this.length);
    this.buffer = Buffer.alloc(INITIAL_CAPACITY);
    this.length = 0;
    return out;
  }
}
