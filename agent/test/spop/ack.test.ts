import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { SpopError, STATUS, encodeAck, type Frame, type TxnSetVar } from '../../src/spop/index.js';
import { decodeFrame, encodeFrame } from '../../src/spop/testing/index.js';
import { hex } from './hex.js';

describe('encodeAck (hot path)', () => {
  it('writes the expected bytes', () => {
    expect(encodeAck(300, 1, [{ name: 'backend', value: 'be_tenant_a' }])).toEqual(
      hex(`00 00 00 20  67 00 00 00 01 fc 03 01  01 03 02 07 "backend" 08 0b "be_tenant_a"`),
    );
    expect(encodeAck(7, 9, [])).toEqual(hex('00 00 00 07 67 00 00 00 01 07 09'));
    expect(encodeAck(1, 2, [{ name: Buffer.from('k'), value: hex('00 ff') }])).toEqual(hex(`00 00 00 10 67 00 00 00 01 01 02  01 03 02 01 "k" 09 02 00 ff`));
  });

  it('property: identical to the generic encoder', () => {
    const text = fc.string({ unit: 'binary', maxLength: 300 });
    const bytes = fc.uint8Array({ maxLength: 300 }).map((a) => Buffer.from(a));
    const act = fc.record({ name: fc.oneof(text, text.map((s) => Buffer.from(s))), value: fc.oneof(text, bytes) });
    fc.assert(
      fc.property(fc.maxSafeNat(), fc.maxSafeNat(), fc.array(act, { maxLength: 5 }), (sid, fid, actions: TxnSetVar[]) => {
        const generic: Frame = {
          type: 'ack',
          streamId: sid,
          frameId: fid,
          actions: actions.map((a) => ({
            type: 'set-var',
            scope: 'transaction',
            name: typeof a.name === 'string' ? a.name : a.name.toString('utf8'),
            value: typeof a.value === 'string' ? { type: 'string', value: a.value } : { type: 'binary', value: a.value },
          })),
        };
        const fast = encodeAck(sid, fid, actions);
        expect(fast).toEqual(encodeFrame(generic));
        expect(decodeFrame(fast.subarray(4)).type).toBe('ack');
      }),
      { numRuns: 1000 },
    );
  }, 30_000);

  it('enforces an optional max frame size and validates ids', () => {
    try {
      encodeAck(1, 1, [{ name: 'v', value: Buffer.alloc(300) }], 256);
      expect.unreachable();
    } catch (e) {
      expect((e as SpopError).status).toBe(STATUS.TOO_BIG);
    }
    expect(() => encodeAck(-1, 1, [])).toThrow(SpopError);
    expect(() => encodeAck(1, 2 ** 53, [])).toThrow(SpopError);
  });
});
