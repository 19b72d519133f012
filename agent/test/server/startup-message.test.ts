// The NOTIFY fast path (readStartupNotify in server/startup-message.ts) is an optimisation of the
// one decoder of HAProxy's frames: on every frame it accepts it must give exactly what
// decodeHaproxyFrame + startupFacts/handleMessage give (the same ids, facts and verdict), and hand
// everything else back.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CancelRateLimiter } from '../../src/decision/cancel-router.js';
import { encodeStartupMessage } from '../../src/pg/frontend.js';
import { decodePreamble, decodePreambleAt } from '../../src/pg/preamble.js';
import { RouteStore } from '../../src/routes-store.js';
import type { DecisionContext } from '../../src/server/decide-connection.js';
import { STARTUP_MESSAGE } from '../../src/server/spoe-contract.js';
import { decideStartupNotify, handleMessage, newStartupNotify, readStartupNotify, startupFacts, startupNotifyFacts } from '../../src/server/startup-message.js';
import { encodeAck, encodeAckPayload, encodeAckWithPayload } from '../../src/spop/agent-frames.js';
import { routeAckPayload, verdictActions } from '../../src/server/verdict-actions.js';
import type { SpoeArg } from '../../src/spop/frames.js';
import { decodeHaproxyFrame } from '../../src/spop/haproxy-frames.js';
import { encodeFrame } from '../../src/spop/testing/index.js';
import type { TypedValue } from '../../src/spop/typed-data.js';
import { testTable } from './harness.js';

const NOW = 1_700_000_000_000;

function ctx(): DecisionContext {
  return { store: new RouteStore(testTable()), cancelRate: new CancelRateLimiter(), now: () => NOW };
}

/** A NOTIFY frame body (no length prefix). */
function notifyBody(streamId: number, frameId: number, args: SpoeArg[], name = STARTUP_MESSAGE): Buffer {
  return encodeFrame({ type: 'notify', streamId, frameId, flags: 1, messages: [{ name, args }] }).subarray(4);
}

function generic(body: Buffer): { verdict: unknown; facts: unknown; streamId: number; frameId: number } | { error: string } {
  try {
    const f = decodeHaproxyFrame(body);
    if (f.type !== 'notify' || f.messages.length !== 1) return { error: 'shape' };
    const m = f.messages[0]!;
    return { verdict: handleMessage(ctx(), m), facts: startupFacts(m), streamId: f.streamId, frameId: f.frameId };
  } catch (err) {
    return { error: String(err) };
  }
}

const packet = fc.oneof(
  fc.constantFrom('acme', 'globex', 'initech', 'nope', '').map((database) => encodeStartupMessage({ user: 'app', database })),
  fc.record({ user: fc.string(), database: fc.string(), options: fc.string() }).map((p) => encodeStartupMessage(p)),
  fc.uint8Array({ maxLength: 64 }).map((a) => Buffer.from(a)),
);
const src: fc.Arbitrary<TypedValue> = fc.oneof(
  fc.ipV4().map((value) => ({ type: 'ipv4' as const, value })),
  fc.constantFrom('::1', '2001:db8::7', '::ffff:10.0.0.1').map((value) => ({ type: 'ipv6' as const, value })),
);
const dport: fc.Arbitrary<TypedValue> = fc.oneof(
  fc.integer({ min: 0, max: 65535 }).map((value) => ({ type: 'int32' as const, value })),
  fc.integer({ min: 0, max: 65535 }).map((value) => ({ type: 'uint32' as const, value })),
  fc.integer({ min: 0, max: 65535 }).map((value) => ({ type: 'int64' as const, value: BigInt(value) })),
  fc.integer({ min: 0, max: 65535 }).map((value) => ({ type: 'uint64' as const, value: BigInt(value) })),
);
const tls: fc.Arbitrary<TypedValue> = fc.boolean().map((value) => ({ type: 'bool' as const, value }));
// HAProxy sends NULL for ssl_fc_sni on a connection without TLS or without a server name.
const sni: fc.Arbitrary<TypedValue> = fc.oneof(
  fc.constant({ type: 'null' as const }),
  fc.domain().map((value) => ({ type: 'string' as const, value })),
);
const id = fc.oneof(fc.integer({ min: 0, max: 300 }), fc.integer({ min: 0, max: 0x7fff_ffff }));

const goodBody = fc
  .record({ streamId: id, frameId: id, pkt: packet, src, dport, tls, sni, order: fc.constantFrom([0, 1, 2, 3, 4], [4, 3, 2, 1, 0], [1, 0, 2, 4, 3]) })
  .map(({ streamId, frameId, pkt, src: s, dport: d, tls: t, sni: n, order }) => {
    const args: SpoeArg[] = [
      { name: 'pkt', value: { type: 'binary', value: pkt } },
      { name: 'src', value: s },
      { name: 'dport', value: d },
      { name: 'tls', value: t },
      { name: 'sni', value: n },
    ];
    return notifyBody(
      streamId,
      frameId,
      order.map((i) => args[i]!),
    );
  });

/** Bytes around a frame body in a chunk (other frames, their length prefixes): never read. */
const JUNK = Buffer.from([0x03, 0x00, 0x00, 0x00, 0x01, 0xff, 0x0f, 0x70, 0x6b, 0x74]);

function expectSameAsGeneric(body: Buffer): boolean {
  const n = newStartupNotify();
  const fast = readStartupNotify(body, n);
  // In a chunk, as the connection reads it (FrameReader.nextRange()): the same answer, offsets shifted.
  const before = JUNK.subarray(0, body.length % (JUNK.length + 1));
  const chunk = Buffer.concat([before, body, JUNK]);
  const inChunk = newStartupNotify();
  expect(readStartupNotify(chunk, inChunk, before.length, before.length + body.length)).toBe(fast);
  if (!fast) return false;
  expect(inChunk).toEqual({ ...n, pktStart: n.pktStart + before.length, pktEnd: n.pktEnd + before.length });
  const g = generic(body);
  expect(g).not.toHaveProperty('error');
  if ('error' in g) return true;
  expect({ streamId: n.streamId, frameId: n.frameId }).toEqual({ streamId: g.streamId, frameId: g.frameId });
  expect(startupNotifyFacts(body, n)).toEqual(g.facts);
  expect(startupNotifyFacts(chunk, inChunk)).toEqual(g.facts);
  expect(decideStartupNotify(ctx(), body, n)).toEqual(g.verdict);
  expect(decideStartupNotify(ctx(), chunk, inChunk)).toEqual(g.verdict);
  return true;
}

describe('NOTIFY fast path', () => {
  it('reads every HAProxy-shaped pgroute-startup NOTIFY, with the generic verdict', () => {
    fc.assert(
      fc.property(goodBody, (body) => {
        expect(expectSameAsGeneric(body)).toBe(true);
      }),
      { numRuns: 500 },
    );
  });

  it('on mutated, truncated or extended frames: either hands back, or agrees with the generic path', () => {
    const mutated = fc
      .tuple(goodBody, fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 4 }), fc.integer({ min: -8, max: 4 }))
      .map(([body, edits, cut]) => {
        const b = Buffer.from(body);
        for (const [at, v] of edits) b[at % b.length] = v;
        if (cut < 0) return b.subarray(0, Math.max(0, b.length + cut));
        return Buffer.concat([b, Buffer.alloc(cut, 0x41)]);
      });
    fc.assert(
      fc.property(mutated, (body) => {
        expectSameAsGeneric(body);
      }),
      { numRuns: 3000 },
    );
  });

  it('hands back what it does not handle', () => {
    const pkt: SpoeArg = { name: 'pkt', value: { type: 'binary', value: encodeStartupMessage({ user: 'a', database: 'acme' }) } };
    const n = newStartupNotify();
    const cases: Buffer[] = [
      notifyBody(1, 1, [pkt], 'other-message'),
      notifyBody(1, 1, [{ name: 'pkt', value: { type: 'string', value: 'x' } }]),
      notifyBody(1, 1, [pkt, { name: 'extra', value: { type: 'null' } }]),
      notifyBody(1, 1, [pkt, { name: 'dport', value: { type: 'int32', value: -1 } }]),
      notifyBody(1, 1, [pkt, { name: 'src', value: { type: 'string', value: '1.2.3.4' } }]),
      notifyBody(1, 1, []),
      notifyBody(2 ** 40, 1, [pkt]),
      encodeFrame({ type: 'notify', streamId: 1, frameId: 1, flags: 1, messages: [] }).subarray(4),
      encodeFrame({
        type: 'notify',
        streamId: 1,
        frameId: 1,
        flags: 1,
        messages: [
          { name: STARTUP_MESSAGE, args: [pkt] },
          { name: STARTUP_MESSAGE, args: [pkt] },
        ],
      }).subarray(4),
    ];
    for (const body of cases) expect(readStartupNotify(body, n)).toBe(false);
    // A good frame cut short by `end` (the next frame's bytes after it in the chunk are not its own).
    const good = notifyBody(1, 1, [pkt]);
    expect(readStartupNotify(good, n)).toBe(true);
    expect(readStartupNotify(good, n, 0, good.length - 1)).toBe(false);
    expect(readStartupNotify(Buffer.concat([JUNK, good]), n, JUNK.length + 1, JUNK.length + good.length)).toBe(false);
    // A frame without FIN (flags 0) cannot be encoded; craft it.
    const noFin = Buffer.from(notifyBody(1, 1, [pkt]));
    noFin[4] = 0;
    expect(readStartupNotify(noFin, n)).toBe(false);
  });
});

describe('encodeAckPayload + encodeAckWithPayload', () => {
  it('write the same bytes as encodeAck with the same set-vars', () => {
    const name = fc.oneof(
      fc.uint8Array({ minLength: 1, maxLength: 40 }).map((a) => Buffer.from(a)),
      fc.string({ minLength: 1, maxLength: 10 }),
    );
    const value = fc.oneof(fc.string({ maxLength: 300, unit: 'grapheme' }), fc.uint8Array({ maxLength: 300 }).map((a) => Buffer.from(a)));
    fc.assert(
      fc.property(fc.nat(), fc.nat(), fc.array(fc.record({ name, value }), { maxLength: 4 }), (s, f, vars) => {
        expect(encodeAckWithPayload(s, f, encodeAckPayload(vars))).toEqual(encodeAck(s, f, vars));
      }),
      { numRuns: 500 },
    );
  });

  it('enforce max-frame-size like encodeAck', () => {
    const payload = encodeAckPayload([{ name: 'be', value: 'x'.repeat(300) }]);
    expect(() => encodeAckWithPayload(1, 1, payload, 256)).toThrow(/max-frame-size/);
    expect(() => encodeAckWithPayload(-1, 1, payload)).toThrow(/STREAM-ID/);
  });

  it('routeAckPayload caches by backend but never serves another tenant or target', () => {
    const v = { kind: 'route', tenant: 'acme', target: 'primary', backend: 'be1', cancel: false } as const;
    const p1 = routeAckPayload(v);
    expect(routeAckPayload({ ...v })).toBe(p1);
    expect(encodeAckWithPayload(3, 4, routeAckPayload({ ...v, tenant: 'globex' }))).toEqual(encodeAck(3, 4, verdictActions({ ...v, tenant: 'globex' })));
    expect(encodeAckWithPayload(3, 4, routeAckPayload({ ...v, target: 'pool' }))).toEqual(encodeAck(3, 4, verdictActions({ ...v, target: 'pool' })));
    expect(encodeAckWithPayload(3, 4, routeAckPayload(v))).toEqual(encodeAck(3, 4, verdictActions(v)));
  });
});

describe('decodePreambleAt', () => {
  it('decodes a packet inside a larger buffer exactly as decodePreamble decodes it alone', () => {
    const params = fc.dictionary(fc.string({ maxLength: 20, unit: 'binary' }), fc.string({ maxLength: 30, unit: 'binary' }), { maxKeys: 5 });
    const pkt = fc.oneof(
      params.map((p) => {
        try {
          return encodeStartupMessage(p);
        } catch {
          return Buffer.from([0, 0, 0, 8, 0, 3, 0, 0]);
        }
      }),
      fc.uint8Array({ maxLength: 80 }).map((a) => Buffer.from(a)),
    );
    fc.assert(
      fc.property(pkt, fc.uint8Array({ maxLength: 8 }), fc.uint8Array({ maxLength: 8 }), (p, before, after) => {
        const buf = Buffer.concat([Buffer.from(before), p, Buffer.from(after)]);
        expect(decodePreambleAt(buf, before.length, before.length + p.length)).toEqual(decodePreamble(Buffer.from(p)));
      }),
      { numRuns: 2000 },
    );
  });
});
