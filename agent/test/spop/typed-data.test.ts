import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { SpopError, STATUS, decodeTypedData, encodeTypedData, type TypedValue } from '../../src/spop/index.js';
import { ipv6Bytes, typedValue } from './arbitraries.js';
import { hex } from './hex.js';
import { normValue } from './normalize.js';

describe('typed data: vectors (SPOE.txt 3.1)', () => {
  const vectors: Array<[string, TypedValue, string]> = [
    ['NULL', { type: 'null' }, '00'],
    ['BOOL false', { type: 'bool', value: false }, '01'],
    ['BOOL true (flag bit 0 of FLAGS = 0x10)', { type: 'bool', value: true }, '11'],
    ['INT32 5', { type: 'int32', value: 5 }, '02 05'],
    ['INT32 -1 (64-bit two\'s complement)', { type: 'int32', value: -1 }, '02 ff f0 fe fe fe fe fe fe fe 0e'],
    ['INT32 max', { type: 'int32', value: 0x7fffffff }, '02 ff f0 fe fe 3e'],
    ['INT32 min', { type: 'int32', value: -0x80000000 }, '02 f0 f1 fe fe be fe fe fe fe 0e'],
    ['UINT32 max', { type: 'uint32', value: 0xffffffff }, '03 ff f0 fe fe 7e'],
    ['UINT32 16380', { type: 'uint32', value: 16380 }, '03 fc f0 06'],
    ['INT64 -2', { type: 'int64', value: -2n }, '04 fe f0 fe fe fe fe fe fe fe 0e'],
    ['INT64 5432', { type: 'int64', value: 5432n }, '04 f8 c4 01'],
    ['UINT64 239', { type: 'uint64', value: 239n }, '05 ef'],
    ['IPV4', { type: 'ipv4', value: '192.0.2.10' }, '06 c0 00 02 0a'],
    ['IPV6 ::1', { type: 'ipv6', value: '::1' }, '07 00000000 00000000 00000000 00000001'],
    ['IPV6 2001:db8::2:1', { type: 'ipv6', value: '2001:db8::2:1' }, '07 20010db8 00000000 00000000 00020001'],
    ['IPV6 v4-mapped', { type: 'ipv6', value: '::ffff:192.0.2.1' }, '07 00000000 00000000 0000ffff c0000201'],
    ['STRING', { type: 'string', value: 'pg' }, '08 02 "pg"'],
    ['STRING utf-8', { type: 'string', value: 'é' }, '08 02 c3 a9'],
    ['STRING empty', { type: 'string', value: '' }, '08 00'],
    ['BINARY', { type: 'binary', value: hex('00 01 ff') }, '09 03 00 01 ff'],
  ];

  it.each(vectors)('%s', (_name, value, bytes) => {
    const wire = hex(bytes);
    expect(encodeTypedData(value)).toEqual(wire);
    expect(decodeTypedData(wire)).toEqual(value);
  });

  it('ignores FLAGS bits on non-boolean types, reads only bit 0 for booleans', () => {
    expect(decodeTypedData(hex('f8 01 "x"'))).toEqual({ type: 'string', value: 'x' });
    expect(decodeTypedData(hex('21'))).toEqual({ type: 'bool', value: false });
    expect(decodeTypedData(hex('31'))).toEqual({ type: 'bool', value: true });
  });

  it('formats IPv6 per RFC 5952: longest zero run, first on ties, no single-group "::"', () => {
    expect(decodeTypedData(hex('07 00010000 00000001 00000000 00000001'))).toEqual({ type: 'ipv6', value: '1:0:0:1::1' });
    expect(decodeTypedData(hex('07 00010000 00010000 00010000 00010000'))).toEqual({ type: 'ipv6', value: '1:0:1:0:1:0:1:0' });
    expect(decodeTypedData(hex('07 00000000 00000000 00000000 00000000'))).toEqual({ type: 'ipv6', value: '::' });
    expect(decodeTypedData(hex('07 00010000 00000002 00000000 00030004'))).toEqual({ type: 'ipv6', value: '1::2:0:0:3:4' });
  });

  it('binary values are views into the input, not copies', () => {
    const wire = hex('09 03 aa bb cc');
    const v = decodeTypedData(wire);
    if (v.type !== 'binary') throw new Error('expected binary');
    expect(v.value.buffer).toBe(wire.buffer);
    expect(v.value.byteOffset).toBe(wire.byteOffset + 2);
  });
});

describe('typed data: properties', () => {
  it('round-trips every type', () => {
    fc.assert(
      fc.property(typedValue, (v) => {
        const wire = encodeTypedData(v);
        const back = decodeTypedData(wire);
        expect(normValue(back)).toEqual(normValue(v));
        expect(encodeTypedData(back)).toEqual(wire);
      }),
      { numRuns: 3000 },
    );
  });

  it('IPv6 formatting agrees with the WHATWG URL serializer on every 16-byte address', () => {
    fc.assert(
      fc.property(ipv6Bytes, (bytes) => {
        const v = decodeTypedData(Buffer.concat([Buffer.from([7]), bytes]));
        if (v.type !== 'ipv6') throw new Error('expected ipv6');
        const url = new URL(`http://[${bytes.toString('hex').replace(/(....)(?!$)/g, '$1:')}]/`).hostname;
        const mapped = bytes.subarray(0, 12).equals(Buffer.from('00000000000000000000ffff', 'hex'));
        if (!mapped) expect(`[${v.value}]`).toBe(url);
        expect(encodeTypedData(v).subarray(1)).toEqual(bytes);
      }),
      { numRuns: 2000 },
    );
  });
});

describe('typed data: errors', () => {
  const bad: Array<[string, string]> = [
    ['empty', ''],
    ['unknown type 10', '0a'],
    ['unknown type 15', '0f'],
    ['truncated int32', '02 f0'],
    ['int32 above 2^31-1 (2^31)', '02 f0 f1 fe fe 3e'],
    ['int32 below -2^31 (2^64-2^31-1)', '02 ff f0 fe fe be fe fe fe fe 0e'],
    ['uint32 above 2^32-1 (2^32)', '03 f0 f1 fe fe 7e'],
    ['uint64 above 2^64-1', '05 ff ff ff ff ff ff ff ff ff 0f'],
    ['truncated ipv4', '06 7f 00 00'],
    ['truncated ipv6', '07 00 00'],
    ['string length past end', '08 05 "abc"'],
    ['binary length past end', '09 f0 10 00'],
    ['binary length varint truncated', '09 f0'],
    ['trailing bytes', '00 00'],
  ];
  it.each(bad)('%s -> SpopError(INVALID)', (_name, bytes) => {
    expect(() => decodeTypedData(hex(bytes))).toThrow(SpopError);
    try {
      decodeTypedData(hex(bytes));
    } catch (e) {
      expect((e as SpopError).status).toBe(STATUS.INVALID);
    }
  });

  it('rejects unencodable values with SpopError', () => {
    const values: unknown[] = [
      { type: 'int32', value: 2 ** 31 },
      { type: 'int32', value: 1.5 },
      { type: 'uint32', value: -1 },
      { type: 'int64', value: 1n << 63n },
      { type: 'uint64', value: -1n },
      { type: 'ipv4', value: '256.0.0.1' },
      { type: 'ipv4', value: '01.2.3.4' },
      { type: 'ipv6', value: '1::2::3' },
      { type: 'ipv6', value: 'fe80::1%eth0' },
      { type: 'ipv6', value: '12345::' },
      { type: 'string', value: 42 },
      { type: 'binary', value: 'not a buffer' },
      { type: 'float', value: 1 },
    ];
    for (const v of values) expect(() => encodeTypedData(v as TypedValue)).toThrow(SpopError);
  });

  it('parses IPv6 text forms with embedded IPv4', () => {
    expect(encodeTypedData({ type: 'ipv6', value: '::1.2.3.4' })).toEqual(hex('07 00000000 00000000 00000000 01020304'));
    expect(encodeTypedData({ type: 'ipv6', value: '1:2:3:4:5:6:1.2.3.4' })).toEqual(hex('07 00010002 00030004 00050006 01020304'));
    expect(encodeTypedData({ type: 'ipv6', value: 'ABCD::EF' })).toEqual(hex('07 abcd0000 00000000 00000000 000000ef'));
  });
});
