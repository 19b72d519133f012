// Test helper: literal byte vectors written as hex, with optional "quoted ASCII" runs and # comments.
//   hex(`0c "check-client"  # message name`) -> <Buffer 0c 63 68 65 ...>

export function hex(spec: string): Buffer {
  const parts: Buffer[] = [];
  const withoutComments = spec
    .split('\n')
    .map((line) => line.replace(/#.*$/, ''))
    .join(' ');
  const re = /"([^"]*)"|([0-9a-fA-F\s]+)/gy;
  let m: RegExpExecArray | null;
  let last = 0;
  while ((m = re.exec(withoutComments)) !== null && m[0].length > 0) {
    if (m[1] !== undefined) parts.push(Buffer.from(m[1], 'latin1'));
    else {
      const digits = (m[2] ?? '').replace(/\s+/g, '');
      if (digits.length % 2 !== 0) throw new Error(`odd number of hex digits near ${JSON.stringify(m[0])}`);
      parts.push(Buffer.from(digits, 'hex'));
    }
    last = re.lastIndex;
  }
  if (last !== withoutComments.length) throw new Error(`bad hex spec at ${JSON.stringify(withoutComments.slice(last, last + 20))}`);
  return Buffer.concat(parts);
}

/** Prefixes a frame body with its 4-byte big-endian length. */
export function withLength(body: Buffer): Buffer {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(body.length, 0);
  return Buffer.concat([len, body]);
}

export function toHex(buf: Buffer): string {
  return buf.toString('hex').replace(/(..)(?!$)/g, '$1 ');
}
