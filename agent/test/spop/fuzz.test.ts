// Fuzzing: whatever bytes arrive, the codec either decodes them or throws SpopError — never a
// RangeError, TypeError or any other crash.
import fc from 'fast-check';
import { describe, it } from 'vitest';
import { FrameReader, SpopError, decodeTypedData, decodeVarint, type Frame } from '../../src/spop/index.js';
import { decodeFrame, encodeFrame } from '../../src/spop/testing/index.js';
import { frame as frameArb } from './arbitraries.js';

function onlySpopErrors(fn: () => unknown): void {
  try {
    fn();
  } catch (e) {
    if (!(e instanceof SpopError)) throw new Error(`non-SpopError thrown: ${String(e)}`, { cause: e });
    if (!Number.isInteger(e.status) || e.message.length === 0) throw new Error(`malformed SpopError: ${e.status} ${e.message}`);
  }
}

const bytes = fc.uint8Array({ maxLength: 256 }).map((a) => Buffer.from(a));

/** Bytes that start like a plausible frame (known type, FIN) so the fuzzer reaches the payload parsers. */
const plausibleBody = fc
  .tuple(fc.constantFrom(0, 1, 2, 3, 101, 102, 103, 7), fc.constantFrom(0, 1, 3), fc.uint8Array({ maxLength: 200 }))
  .map(([type, flags, rest]) => Buffer.concat([Buffer.from([type, 0, 0, 0, flags]), Buffer.from(rest)]));

/** Valid frames with random bytes mutated, inserted, or cut off. */
const mutated = fc
  .tuple(frameArb, fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 4 }), fc.nat(), fc.boolean())
  .map(([f, edits, cut, truncate]: [Frame, Array<[number, number]>, number, boolean]) => {
    const body = Buffer.from(encodeFrame(f).subarray(4));
    for (const [pos, val] of edits) if (body.length > 0) body[pos % body.length] = val;
    return truncate ? body.subarray(0, cut % (body.length + 1)) : body;
  });

describe('fuzz: decoders only ever throw SpopError', () => {
  it('decodeFrame on arbitrary bytes', () => {
    fc.assert(fc.property(bytes, (b) => onlySpopErrors(() => decodeFrame(b))), { numRuns: 10_000 });
  }, 30_000);

  it('decodeFrame on plausible frame headers with random payloads', () => {
    fc.assert(fc.property(plausibleBody, (b) => onlySpopErrors(() => decodeFrame(b))), { numRuns: 20_000 });
  }, 30_000);

  it('decodeFrame on mutated and truncated valid frames', () => {
    fc.assert(fc.property(mutated, (b) => onlySpopErrors(() => decodeFrame(b))), { numRuns: 5_000 });
  }, 30_000);

  it('decodeTypedData and decodeVarint on arbitrary bytes', () => {
    fc.assert(
      fc.property(bytes, fc.nat({ max: 300 }), (b, off) => {
        onlySpopErrors(() => decodeTypedData(b));
        onlySpopErrors(() => decodeVarint(b, off));
      }),
      { numRuns: 10_000 },
    );
  }, 30_000);

  it('FrameReader + decodeFrame on arbitrary chunk streams', () => {
    fc.assert(
      fc.property(fc.array(bytes, { maxLength: 8 }), fc.integer({ min: 7, max: 300 }), (chunks, max) => {
        const r = new FrameReader(max);
        onlySpopErrors(() => {
          for (const c of chunks) {
            for (const body of r.feed(c)) {
              if (body.length > max) throw new Error(`frame of ${body.length} bytes passed a ${max}-byte limit`);
              onlySpopErrors(() => decodeFrame(body));
            }
          }
        });
      }),
      { numRuns: 5_000 },
    );
  }, 30_000);

  it('a successfully decoded fuzz frame re-encodes without crashing (or with SpopError)', () => {
    fc.assert(
      fc.property(plausibleBody, (b) => {
        let f: Frame;
        try {
          f = decodeFrame(b);
        } catch {
          return;
        }
        onlySpopErrors(() => encodeFrame(f));
      }),
      { numRuns: 10_000 },
    );
  }, 30_000);
});
