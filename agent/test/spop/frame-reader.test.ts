import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { FrameReader, SpopError, STATUS } from '../../src/spop/index.js';
import { decodeFrame, encodeFrame } from '../../src/spop/testing/index.js';
import { frame as frameArb } from './arbitraries.js';
import { hex, withLength } from './hex.js';

/** Splits `buf` at the given cut points (sorted, deduplicated, within bounds). */
function split(buf: Buffer, cuts: number[]): Buffer[] {
  const points = [...new Set(cuts.map((c) => c % (buf.length + 1)))].sort((a, b) => a - b);
  const out: Buffer[] = [];
  let prev = 0;
  for (const p of points) {
    out.push(buf.subarray(prev, p));
    prev = p;
  }
  out.push(buf.subarray(prev));
  return out;
}

const F1 = hex('03 00 00 00 01 01 02 01 "a" 00');
const F2 = hex('67 00 00 00 01 01 02');

describe('FrameReader', () => {
  it('yields whole frames from one chunk as zero-copy views', () => {
    const wire = Buffer.concat([withLength(F1), withLength(F2)]);
    const r = new FrameReader();
    const frames = r.feed(wire);
    expect(frames).toEqual([F1, F2]);
    expect(frames[0]!.buffer).toBe(wire.buffer);
    expect(r.idle).toBe(true);
  });

  it('reassembles frames split byte by byte', () => {
    const wire = Buffer.concat([withLength(F1), withLength(F2)]);
    const r = new FrameReader();
    const frames: Buffer[] = [];
    let returned = 0;
    for (let i = 0; i < wire.length; i++) {
      for (const f of r.feed(wire.subarray(i, i + 1))) {
        frames.push(f);
        returned += 4 + f.length;
      }
      expect(r.bufferedBytes).toBe(i + 1 - returned);
    }
    expect(frames).toEqual([F1, F2]);
    expect(r.bufferedBytes).toBe(0);
  });

  it('returns undefined until a frame is complete, and ignores empty chunks', () => {
    const r = new FrameReader();
    r.push(Buffer.alloc(0));
    expect(r.next()).toBeUndefined();
    r.push(withLength(F1).subarray(0, 6));
    expect(r.next()).toBeUndefined();
    r.push(withLength(F1).subarray(6));
    expect(r.next()).toEqual(F1);
    expect(r.next()).toBeUndefined();
  });

  it('rejects an oversized length as soon as the 4 length bytes arrive', () => {
    const r = new FrameReader(256);
    r.push(hex('00 00'));
    expect(r.next()).toBeUndefined();
    r.push(hex('01 01')); // 257 > 256, no body bytes sent yet
    let err: unknown;
    try {
      r.next();
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(SpopError);
    expect((err as SpopError).status).toBe(STATUS.TOO_BIG);
    expect((err as SpopError).message).toMatch(/257.*256/);
    // The reader stays failed.
    expect(() => r.push(hex('00'))).toThrow(err as Error);
    expect(() => r.next()).toThrow(err as Error);
  });

  it('accepts a frame of exactly maxFrameSize and honours a lowered limit', () => {
    const body = Buffer.concat([hex('03 00 00 00 01 01 01'), Buffer.alloc(249)]);
    expect(body.length).toBe(256);
    const r = new FrameReader(256);
    expect(r.feed(withLength(body))).toHaveLength(1);
    r.maxFrameSize = 100;
    expect(() => r.feed(withLength(body))).toThrow(SpopError);
  });

  it('rejects a length shorter than a frame header with INVALID', () => {
    const r = new FrameReader();
    try {
      r.feed(hex('00 00 00 03 01 02 03'));
      expect.unreachable();
    } catch (e) {
      expect((e as SpopError).status).toBe(STATUS.INVALID);
    }
  });

  it('rejects a bad configuration with RangeError (programmer error, not wire input)', () => {
    expect(() => new FrameReader(0)).toThrow(RangeError);
    expect(() => new FrameReader(2 ** 32)).toThrow(RangeError);
  });

  it('property: any split of any frame sequence yields the same frames', () => {
    fc.assert(
      fc.property(fc.array(frameArb, { minLength: 1, maxLength: 5 }), fc.array(fc.nat(), { maxLength: 12 }), (frames, cuts) => {
        const wires = frames.map((f) => encodeFrame(f));
        const stream = Buffer.concat(wires);
        const r = new FrameReader(0xffff_ffff);
        const out: Buffer[] = [];
        for (const chunk of split(stream, cuts)) out.push(...r.feed(chunk));
        expect(out).toEqual(wires.map((w) => w.subarray(4)));
        expect(out.map((b) => encodeFrame(decodeFrame(b)))).toEqual(wires);
        expect(r.idle).toBe(true);
      }),
      { numRuns: 500 },
    );
  }, 30_000);

  it('property: nextRange() finds the bodies next() returns, in the chunk or an assembled buffer', () => {
    fc.assert(
      fc.property(fc.array(frameArb, { minLength: 1, maxLength: 5 }), fc.array(fc.nat(), { maxLength: 12 }), (frames, cuts) => {
        const wires = frames.map((f) => encodeFrame(f));
        const r = new FrameReader(0xffff_ffff);
        const out: Buffer[] = [];
        for (const chunk of split(Buffer.concat(wires), cuts)) {
          r.push(chunk);
          while (r.nextRange()) {
            // A body wholly inside the chunk is read in place there; only a straddling one is copied.
            if (r.frameBuf !== chunk) expect([r.frameStart, r.frameEnd]).toEqual([0, r.frameBuf.length]);
            out.push(Buffer.from(r.frameBuf.subarray(r.frameStart, r.frameEnd)));
          }
        }
        expect(out).toEqual(wires.map((w) => w.subarray(4)));
        expect(r.idle).toBe(true);
      }),
      { numRuns: 500 },
    );
  }, 30_000);
});
