import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { SpopError, STATUS, decodeVarint, encodeVarint, varintSize, varintSizeBigInt } from '../../src/spop/index.js';
import { hex } from './hex.js';
import { UINT64_MAX, uint64 } from './arbitraries.js';

/**
 * Independent reference decoder, written straight from the SPOE.txt 3.1 table / HAProxy's decode:
 * value = b0 + sum(b_k << (4 + 7 * (k - 1))) over the raw bytes, stopping after a byte < 0x80.
 */
function referenceDecode(bytes: Buffer): bigint {
  const b0 = bytes[0]!;
  if (b0 < 240) return BigInt(b0);
  let v = BigInt(b0);
  let shift = 4n;
  for (let i = 1; i < bytes.length; i++) {
    v += BigInt(bytes[i]!) << shift;
    shift += 7n;
  }
  return v;
}

describe('varint: vectors from the SPOE.txt 3.1 table', () => {
  // [value, bytes]: each range boundary of the table, both sides.
  const vectors: Array<[bigint, string]> = [
    [0n, '00'],
    [1n, '01'],
    [239n, 'ef'], // 0 <= X < 240 : 1 byte
    [240n, 'f0 00'], // 240 <= X < 2288 : 2 bytes [1111 XXXX] [0XXX XXXX]
    [241n, 'f1 00'],
    [255n, 'ff 00'],
    [256n, 'f0 01'],
    [2287n, 'ff 7f'],
    [2288n, 'f0 80 00'], // 2288 <= X < 264432 : 3 bytes
    [264431n, 'ff ff 7f'],
    [264432n, 'f0 80 80 00'], // 264432 <= X < 33818864 : 4 bytes
    [33818863n, 'ff ff ff 7f'],
    [33818864n, 'f0 80 80 80 00'], // 33818864 <= X < 4328786160 : 5 bytes
    [4328786159n, 'ff ff ff ff 7f'],
    [4328786160n, 'f0 80 80 80 80 00'], // 6 bytes
    [16380n, 'fc f0 06'], // HAProxy's default max-frame-size
    [300n, 'fc 03'],
    [5432n, 'f8 c4 01'],
    [UINT64_MAX, 'ff f0 fe fe fe fe fe fe fe 0e'], // computed with HAProxy's algorithm in Python,
  ];

  it.each(vectors)('%s <-> %s', (value, bytes) => {
    const wire = hex(bytes);
    expect(encodeVarint(value)).toEqual(wire);
    if (value <= BigInt(Number.MAX_SAFE_INTEGER)) expect(encodeVarint(Number(value))).toEqual(wire);
    expect(decodeVarint(wire)).toEqual({ value, size: wire.length });
    expect(referenceDecode(wire)).toBe(value);
    expect(varintSizeBigInt(value)).toBe(wire.length);
  });

  it('sizes follow the table: 1 byte below 240, then one more byte per 7 bits', () => {
    const boundaries = [240n, 2288n, 264432n, 33818864n, 4328786160n];
    boundaries.forEach((b, i) => {
      expect(varintSizeBigInt(b - 1n)).toBe(i + 1);
      expect(varintSizeBigInt(b)).toBe(i + 2);
    });
    expect(varintSize(Number.MAX_SAFE_INTEGER)).toBe(encodeVarint(Number.MAX_SAFE_INTEGER).length);
  });

  it('decodes at an offset and reports consumed size', () => {
    expect(decodeVarint(hex('aa bb fc 03 99'), 2)).toEqual({ value: 300n, size: 2 });
  });
});

describe('varint: properties', () => {
  it('round-trips the full uint64 range (bigint)', () => {
    fc.assert(
      fc.property(uint64, (v) => {
        const wire = encodeVarint(v);
        expect(wire.length).toBe(varintSizeBigInt(v));
        expect(wire.length).toBeLessThanOrEqual(10);
        expect(decodeVarint(wire)).toEqual({ value: v, size: wire.length });
        expect(referenceDecode(wire)).toBe(v);
        // Shape from the spec: continuation bits on all but the last byte of a multi-byte varint.
        if (wire.length > 1) {
          expect(wire[0]! & 0xf0).toBe(0xf0);
          for (let i = 1; i < wire.length - 1; i++) expect(wire[i]! & 0x80).toBe(0x80);
          expect(wire[wire.length - 1]! & 0x80).toBe(0);
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('number and bigint encoders agree on safe integers', () => {
    fc.assert(
      fc.property(fc.maxSafeNat(), (n) => {
        expect(encodeVarint(n)).toEqual(encodeVarint(BigInt(n)));
        expect(varintSize(n)).toBe(encodeVarint(n).length);
      }),
      { numRuns: 1000 },
    );
  });

  it('every well-formed byte sequence decodes to the value that re-encodes to it (bijection)', () => {
    const wellFormed = fc
      .tuple(fc.integer({ min: 0, max: 255 }), fc.array(fc.integer({ min: 0x80, max: 0xff }), { maxLength: 7 }), fc.integer({ min: 0, max: 0x7f }))
      .map(([b0, mid, last]) => (b0 < 240 ? Buffer.from([b0]) : Buffer.from([b0, ...mid, last])));
    fc.assert(
      fc.property(wellFormed, (wire) => {
        const { value, size } = decodeVarint(wire);
        expect(size).toBe(wire.length);
        expect(encodeVarint(value)).toEqual(wire);
      }),
      { numRuns: 2000 },
    );
  });
});

describe('varint: errors are SpopError(INVALID)', () => {
  const bad: Array<[string, string]> = [
    ['empty input', ''],
    ['truncated 2-byte', 'f0'],
    ['truncated 3-byte', 'f0 80'],
    ['11 bytes long', 'ff ff ff ff ff ff ff ff ff ff 00'],
    ['10 bytes over 2^64-1', 'ff ff ff ff ff ff ff ff ff 0f'],
    ['10 bytes, continuation on the last', 'ff ff ff ff ff ff ff ff ff ff'],
  ];
  it.each(bad)('%s', (_name, bytes) => {
    let err: unknown;
    try {
      decodeVarint(hex(bytes));
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(SpopError);
    expect((err as SpopError).status).toBe(STATUS.INVALID);
  });

  it('rejects values outside 0..2^64-1 and non-integers when encoding', () => {
    for (const v of [-1, 1.5, Number.MAX_SAFE_INTEGER + 1, Number.NaN, -1n, UINT64_MAX + 1n]) {
      expect(() => encodeVarint(v)).toThrow(SpopError);
    }
  });
});
