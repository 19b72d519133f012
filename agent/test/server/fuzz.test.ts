// Property: whatever bytes HAProxy (or anything else) sends after a valid HELLO, the agent answers
// only with well-formed frames (ACKs, at most one AGENT-DISCONNECT, last), never crashes, and
// keeps serving fresh connections.

import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningAgent } from '../../src/agent.js';
import { encodeStartupMessage } from '../../src/pg/frontend.js';
import { STATUS, type Frame, FrameReader, type SpoeArg, type SpoeMessage } from '../../src/spop/index.js';
import { decodeFrame, encodeFrame } from '../../src/spop/testing/index.js';
import { STARTUP_MESSAGE } from '../../src/server/spoe-contract.js';
import { frame as frameArb, typedValue } from '../spop/arbitraries.js';
import { startTestAgent, startupFor } from './harness.js';
import { SpopClient, ackVars, notify, startupMessage, routeVar } from './spop-client.js';

let agent: RunningAgent;
const unhandled: unknown[] = [];
const onUnhandled = (err: unknown): void => {
  unhandled.push(err);
};

beforeAll(async () => {
  agent = await startTestAgent();
  process.on('uncaughtException', onUnhandled);
  process.on('unhandledRejection', onUnhandled);
});

afterAll(async () => {
  process.off('uncaughtException', onUnhandled);
  process.off('unhandledRejection', onUnhandled);
  await agent.close();
});

const bytes = (max: number): fc.Arbitrary<Buffer> => fc.uint8Array({ maxLength: max }).map((a) => Buffer.from(a));

/** pgroute-startup messages with arbitrary packets and arbitrarily typed (or misnamed) arguments. */
const startupArg: fc.Arbitrary<SpoeArg> = fc.oneof(
  bytes(120).map((b): SpoeArg => ({ name: 'pkt', value: { type: 'binary', value: b } })),
  fc
    .record({ user: fc.string({ maxLength: 12 }), database: fc.constantFrom('acme', 'initech', 'nope', ''), options: fc.string({ maxLength: 30 }) })
    .map((p): SpoeArg => ({ name: 'pkt', value: { type: 'binary', value: encodeStartupMessage(p) } })),
  fc.record({ name: fc.constantFrom('pkt', 'src', 'dport', '', 'x'), value: typedValue }),
);
const fuzzStartup: fc.Arbitrary<SpoeMessage> = fc.array(startupArg, { maxLength: 4 }).map((args) => ({ name: STARTUP_MESSAGE, args }));

/** A valid frame's encoding with a few bytes changed, and maybe cut short. */
const mutatedFrame = fc
  .tuple(frameArb, fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 3 }), fc.nat(), fc.boolean())
  .map(([f, edits, cut, truncate]: [Frame, Array<[number, number]>, number, boolean]) => {
    const b = Buffer.from(encodeFrame(f));
    for (const [pos, val] of edits) b[4 + (pos % Math.max(1, b.length - 4))] = val;
    return truncate ? b.subarray(0, cut % (b.length + 1)) : b;
  });

/** A right length prefix, a known (or not) frame type and FIN-or-not flags, then random bytes. */
const plausibleFrame = fc
  .tuple(fc.constantFrom(0, 1, 2, 3, 101, 102, 103, 7), fc.constantFrom(0, 1, 3), bytes(60))
  .map(([type, flags, rest]) => {
    const body = Buffer.concat([Buffer.from([type, 0, 0, 0, flags]), rest]);
    const len = Buffer.alloc(4);
    len.writeUInt32BE(body.length);
    return Buffer.concat([len, body]);
  });

const piece: fc.Arbitrary<Buffer> = fc.oneof(
  { weight: 3, arbitrary: bytes(64) },
  { weight: 3, arbitrary: plausibleFrame },
  { weight: 4, arbitrary: fc.tuple(fc.nat({ max: 0xffff }), fc.nat({ max: 0xffff }), fc.array(fc.oneof(fuzzStartup, fc.constant(startupMessage(startupFor('acme')))), { maxLength: 3 })).map(([s, f, m]) => encodeFrame(notify(s, f, m))) },
  { weight: 2, arbitrary: frameArb.map((f) => encodeFrame(f)) },
  { weight: 3, arbitrary: mutatedFrame },
);

/** The stream split into chunks at arbitrary points. */
const chunked = fc.tuple(fc.array(piece, { minLength: 1, maxLength: 6 }), fc.array(fc.nat(), { maxLength: 5 })).map(([pieces, cuts]) => {
  const all = Buffer.concat(pieces);
  const points = [...new Set(cuts.map((c) => (all.length === 0 ? 0 : c % all.length)))].sort((a, b) => a - b);
  const chunks: Buffer[] = [];
  let from = 0;
  for (const p of points) {
    chunks.push(all.subarray(from, p));
    from = p;
  }
  chunks.push(all.subarray(from));
  return chunks.filter((c) => c.length > 0);
});

const KNOWN_STATUSES = new Set<number>(Object.values(STATUS));

async function probeHealthy(): Promise<void> {
  const c = await SpopClient.connect(agent.port);
  try {
    await c.hello();
    expect(routeVar(ackVars(await c.request(77, 78, [startupMessage(startupFor('acme'))])), 'be')).toBe('be_acme_primary');
  } finally {
    c.destroy();
  }
}

describe('fuzz: arbitrary bytes after a valid HELLO', () => {
  it('never crash the agent; replies stay well-formed; a fresh connection is served', async () => {
    await fc.assert(
      fc.asyncProperty(chunked, fc.constantFrom(256, 1024, 16380), async (chunks, maxFrameSize) => {
        const c = await SpopClient.connect(agent.port);
        try {
          await c.hello({ maxFrameSize });
          for (const chunk of chunks) c.socket.write(chunk);
          c.socket.end(); // half-close: the agent answers what it got, then closes (no half-open)
          await c.waitClosed(3_000);

          // Everything after the AGENT-HELLO must be ACKs and at most one final AGENT-DISCONNECT.
          const reader = new FrameReader(16 * 1024 * 1024);
          const frames = reader.feed(Buffer.concat(c.received)).map((b) => decodeFrame(b));
          expect(reader.idle).toBe(true);
          expect(frames[0]?.type).toBe('agent-hello');
          const rest = frames.slice(1);
          rest.forEach((f, i) => {
            if (f.type === 'agent-disconnect') {
              expect(i).toBe(rest.length - 1);
              expect(KNOWN_STATUSES.has(f.statusCode)).toBe(true);
              expect(f.statusCode).not.toBe(STATUS.UNKNOWN); // 99 would mean an internal error, not a peer error
            } else {
              expect(f.type).toBe('ack');
            }
          });
        } finally {
          c.destroy();
        }
        await probeHealthy();
        expect(unhandled).toEqual([]);
      }),
      { numRuns: 200 },
    );
    // The error counter never saw an internal failure.
    const internal = (await agent.metrics.errors.get()).values.find((v) => v.labels.kind === 'internal');
    expect(internal?.value ?? 0).toBe(0);
  }, 30_000);
});
