import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { AgentFrameBatch, encodeAckPayload, encodeAckWithPayload, encodeAgentFrame } from '../../src/spop/agent-frames.js';
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

describe('AgentFrameBatch', () => {
  const payload = fc.uint8Array({ maxLength: 300 }).map((a) => encodeAckPayload([{ name: 'v', value: Buffer.from(a) }]));
  const entry = fc.oneof(
    fc.record({ ack: fc.tuple(fc.maxSafeNat(), fc.maxSafeNat(), payload) }),
    fc.record({ frame: fc.constantFrom<Frame>({ type: 'agent-hello', version: '2.0', maxFrameSize: 16380, capabilities: ['pipelining'] }, { type: 'agent-disconnect', statusCode: 0, message: 'bye' }) }),
  );

  it('property: take() is every frame added, in order, as encodeAckWithPayload / the encoder write them', () => {
    fc.assert(
      fc.property(fc.array(entry, { maxLength: 8 }), fc.array(entry, { maxLength: 3 }), (first, second) => {
        const batch = new AgentFrameBatch();
        for (const entries of [first, second]) {
          const expected: Buffer[] = [];
          for (const e of entries) {
            if ('ack' in e) {
              batch.ack(...e.ack);
              expected.push(encodeAckWithPayload(...e.ack));
            } else {
              const wire = encodeAgentFrame(e.frame as Parameters<typeof encodeAgentFrame>[0]);
              batch.frame(wire);
              expected.push(wire);
            }
          }
          expect(batch.isEmpty).toBe(entries.length === 0);
          const out = batch.take();
          if (entries.length === 0) expect(out).toBeUndefined();
          else expect(out).toEqual(Buffer.concat(expected));
          expect(batch.isEmpty).toBe(true);
        }
      }),
      { numRuns: 500 },
    );
  });

  it('refuses what encodeAckWithPayload refuses, and adds nothing then', () => {
    const batch = new AgentFrameBatch();
    const p = encodeAckPayload([{ name: 'be', value: 'x'.repeat(300) }]);
    expect(() => batch.ack(1, 1, p, 256)).toThrow(/max-frame-size/);
    expect(() => batch.ack(-1, 1, p)).toThrow(/STREAM-ID/);
    expect(() => batch.ack(1, 2 ** 53, p)).toThrow(/FRAME-ID/);
    expect(batch.take()).toBeUndefined();
  });
});
