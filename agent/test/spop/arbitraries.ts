// fast-check arbitraries for SPOP values and frames.
import fc from 'fast-check';
import type { Action, Frame, SpoeMessage, TypedValue, VarScope } from '../../src/spop/index.js';

export const UINT64_MAX = (1n << 64n) - 1n;

/** Unsigned 64-bit values, biased towards the varint length boundaries. */
export const uint64 = fc.oneof(
  fc.bigInt({ min: 0n, max: UINT64_MAX }),
  fc.integer({ min: 0, max: 17 }).chain((bytes) => {
    // Boundaries from SPOE.txt 3.1: 240, 2288, 264432, ... (each step adds 7 bits after the first 4).
    let lo = 0n;
    let hi = 240n;
    for (let i = 1; i <= bytes; i++) {
      lo = hi;
      hi = lo + (1n << BigInt(4 + 7 * i));
    }
    const max = hi - 1n > UINT64_MAX ? UINT64_MAX : hi - 1n;
    const min = lo > UINT64_MAX ? UINT64_MAX : lo;
    return fc.constantFrom(min, max, min + 1n > max ? max : min + 1n);
  }),
);

const text = fc.string({ unit: 'binary', maxLength: 40 });
const buffer = fc.uint8Array({ maxLength: 64 }).map((a) => Buffer.from(a));

/** IPv6 as 16 random bytes rendered through Node's URL parser (an independent formatter). */
export const ipv6Bytes = fc.uint8Array({ minLength: 16, maxLength: 16 }).map((a) => Buffer.from(a));

export const typedValue: fc.Arbitrary<TypedValue> = fc.oneof(
  fc.constant<TypedValue>({ type: 'null' }),
  fc.boolean().map((value): TypedValue => ({ type: 'bool', value })),
  fc.integer({ min: -0x8000_0000, max: 0x7fff_ffff }).map((value): TypedValue => ({ type: 'int32', value })),
  fc.integer({ min: 0, max: 0xffff_ffff }).map((value): TypedValue => ({ type: 'uint32', value })),
  fc.bigInt({ min: -(1n << 63n), max: (1n << 63n) - 1n }).map((value): TypedValue => ({ type: 'int64', value })),
  uint64.map((value): TypedValue => ({ type: 'uint64', value })),
  fc.ipV4().map((value): TypedValue => ({ type: 'ipv4', value })),
  fc.ipV6().map((value): TypedValue => ({ type: 'ipv6', value })),
  text.map((value): TypedValue => ({ type: 'string', value })),
  buffer.map((value): TypedValue => ({ type: 'binary', value })),
);

const id = fc.oneof(fc.nat({ max: 300 }), fc.nat(), fc.maxSafeNat());
const finFlags = fc.integer({ min: 0, max: 0xffff_ffff }).map((f) => (f | 1) >>> 0);
const token = fc.stringMatching(/^[0-9A-Za-z._-]{1,12}$/);

export const message: fc.Arbitrary<SpoeMessage> = fc.record({
  name: text,
  args: fc.array(fc.record({ name: text, value: typedValue }), { maxLength: 6 }),
});

/** What the agent sends: set-var in transaction scope, STRING or BINARY values. */
export const agentAction: fc.Arbitrary<Action> = fc.record({
  type: fc.constant('set-var' as const),
  scope: fc.constant<VarScope>('transaction'),
  name: text,
  value: fc.oneof(text.map((value): TypedValue => ({ type: 'string', value })), buffer.map((value): TypedValue => ({ type: 'binary', value }))),
});

/** Disconnect messages stay within HAProxy's 255-byte limit (40 code points * 4 bytes max). */
const discMessage = fc.string({ unit: 'binary', maxLength: 60 }).filter((s) => Buffer.byteLength(s) <= 255);

export const frame: fc.Arbitrary<Frame> = fc.oneof(
  fc
    .record({
      supportedVersions: fc.array(token, { maxLength: 4 }),
      maxFrameSize: fc.integer({ min: 0, max: 0xffff_ffff }),
      capabilities: fc.array(token, { maxLength: 4 }),
      healthcheck: fc.boolean(),
      engineId: fc.option(text, { nil: undefined }),
    })
    .map(({ engineId, ...rest }): Frame => (engineId === undefined ? { type: 'haproxy-hello', ...rest } : { type: 'haproxy-hello', ...rest, engineId })),
  fc.record({
    type: fc.constant('agent-hello' as const),
    version: token,
    maxFrameSize: fc.integer({ min: 0, max: 0xffff_ffff }),
    capabilities: fc.array(token, { maxLength: 4 }),
  }),
  fc.record({ type: fc.constant('haproxy-disconnect' as const), statusCode: fc.integer({ min: 0, max: 0xffff_ffff }), message: discMessage }),
  fc.record({ type: fc.constant('agent-disconnect' as const), statusCode: fc.integer({ min: 0, max: 0xffff_ffff }), message: discMessage }),
  fc.record({ type: fc.constant('notify' as const), streamId: id, frameId: id, flags: finFlags, messages: fc.array(message, { maxLength: 4 }) }),
  fc.record({ type: fc.constant('ack' as const), streamId: id, frameId: id, flags: finFlags, actions: fc.array(agentAction, { maxLength: 4 }) }),
);
