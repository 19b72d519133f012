// Test-only byte builder, in the manner of node-postgres's test BufferList: packets are written
// out field by field so every test shows its bytes. Deliberately independent of src/pg's writer.

export class Bytes {
  private readonly parts: Buffer[] = [];

  int32(value: number): this {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(value >>> 0);
    this.parts.push(b);
    return this;
  }

  /** A NUL-terminated UTF-8 string. */
  cstring(text: string): this {
    this.parts.push(Buffer.from(text, 'utf8'), Buffer.from([0]));
    return this;
  }

  /** UTF-8 text without a terminator. */
  text(text: string): this {
    this.parts.push(Buffer.from(text, 'utf8'));
    return this;
  }

  byte(...values: number[]): this {
    this.parts.push(Buffer.from(values));
    return this;
  }

  raw(bytes: Uint8Array): this {
    this.parts.push(Buffer.from(bytes));
    return this;
  }

  /** The bytes as they stand, no length. */
  body(): Buffer {
    return Buffer.concat(this.parts);
  }

  /** Prefixed with an Int32 length counting itself (StartupMessage framing); `length` overrides it. */
  packet(length?: number): Buffer {
    const body = this.body();
    const header = Buffer.alloc(4);
    header.writeUInt32BE((length ?? body.length + 4) >>> 0);
    return Buffer.concat([header, body]);
  }
}

export const bytes = (): Bytes => new Bytes();

/** Hex with spaces removed, so fixtures can be written grouped: hex('00 00 00 08 04 d2 16 2f'). */
export function hex(text: string): Buffer {
  return Buffer.from(text.replace(/\s+/g, ''), 'hex');
}

/** A StartupMessage from [name, value] pairs, built by hand. */
export function startup(pairs: ReadonlyArray<readonly [string, string]>, protocol = 0x00030000): Buffer {
  const b = bytes().int32(protocol);
  for (const [name, value] of pairs) b.cstring(name).cstring(value);
  return b.byte(0).packet();
}
