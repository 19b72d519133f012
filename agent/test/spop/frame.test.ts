import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  FRAME_FLAG,
  SpopError,
  STATUS,
  agentDisconnect,
  type Frame,
  type NotifyFrame,
} from '../../src/spop/index.js';
import { decodeHaproxyFrame } from '../../src/spop/haproxy-frames.js';
import { decodeAgentFrame, decodeFrame, encodeFrame } from '../../src/spop/testing/index.js';
import { frame as frameArb } from './arbitraries.js';
import { hex, withLength } from './hex.js';
import { normFrame } from './normalize.js';

/** A HAPROXY-HELLO as HAProxy 2.6 sends it (spoe_prepare_hahello_frame), engine-id included. */
const HAPROXY_HELLO = hex(`
  00 00 00 81                                  # FRAME-LENGTH = 129
  01                                           # HAPROXY-HELLO
  00 00 00 01                                  # FLAGS = FIN
  00 00                                        # STREAM-ID 0, FRAME-ID 0
  12 "supported-versions"  08 03 "2.0"         # STRING "2.0"
  0e "max-frame-size"      03 fc f0 06         # UINT32 16380
  0c "capabilities"        08 10 "pipelining,async"
  09 "engine-id"           08 24 "0A1B2C3D-4E5F-4A6B-8C7D-9E0F1A2B3C4D"
`);

/** The health-check variant appends "healthcheck" = BOOL true (spoe_prepare_healthcheck_request). */
const HAPROXY_HELLO_HEALTHCHECK = hex(`
  01 00 00 00 01 00 00
  12 "supported-versions"  08 03 "2.0"
  0e "max-frame-size"      03 fc f0 06
  0c "capabilities"        08 00                # empty capabilities
  0b "healthcheck"         11                   # BOOL true
`);

/** NOTIFY for stream 300, frame 1: message check-client(src=ipv4, preamble=binary, <unnamed>=int64). */
const NOTIFY_BODY = hex(`
  03                                           # NOTIFY
  00 00 00 01                                  # FLAGS = FIN
  fc 03                                        # STREAM-ID 300
  01                                           # FRAME-ID 1
  0c "check-client"  03                        # message name, NB-ARGS 3
    03 "src"       06 c0 00 02 0a              # IPV4 192.0.2.10
    08 "preamble"  09 08 00 00 00 08 04 d2 16 2f  # BINARY, 8 bytes (an SSLRequest)
    00             04 f8 c4 01                 # unnamed arg: INT64 5432
`);

const ACK = hex(`
  00 00 00 28                                  # FRAME-LENGTH = 40
  67                                           # ACK (103)
  00 00 00 01                                  # FLAGS = FIN
  fc 03 01                                     # STREAM-ID 300, FRAME-ID 1
  01 03 02 07 "backend" 08 0b "be_tenant_a"    # set-var txn.backend = STRING
  02 02 01 04 "auth"                           # unset-var sess.auth
`);

const AGENT_DISCONNECT = hex(`
  66 00 00 00 01 00 00                         # AGENT-DISCONNECT, FIN, ids 0
  0b "status-code"  03 08                      # UINT32 8
  07 "message"      08 13 "unsupported version"
`);

function statusOf(fn: () => unknown): number | string {
  try {
    fn();
  } catch (e) {
    if (e instanceof SpopError) return e.status;
    return `non-SpopError: ${String(e)}`;
  }
  return 'no error';
}

describe('decodeFrame: literal vectors', () => {
  it('decodes a real HAProxy 2.6 HAPROXY-HELLO', () => {
    expect(HAPROXY_HELLO.readUInt32BE(0)).toBe(HAPROXY_HELLO.length - 4);
    expect(decodeFrame(HAPROXY_HELLO.subarray(4))).toEqual({
      type: 'haproxy-hello',
      supportedVersions: ['2.0'],
      maxFrameSize: 16380,
      capabilities: ['pipelining', 'async'],
      healthcheck: false,
      engineId: '0A1B2C3D-4E5F-4A6B-8C7D-9E0F1A2B3C4D',
    });
  });

  it('re-encodes that HELLO to the same bytes', () => {
    expect(encodeFrame(decodeFrame(HAPROXY_HELLO.subarray(4)))).toEqual(HAPROXY_HELLO);
  });

  it('decodes a health-check HELLO', () => {
    expect(decodeFrame(HAPROXY_HELLO_HEALTHCHECK)).toEqual({
      type: 'haproxy-hello',
      supportedVersions: ['2.0'],
      maxFrameSize: 16380,
      capabilities: [],
      healthcheck: true,
    });
  });

  it('ignores spaces and unknown keys in a HELLO', () => {
    const body = hex(`01 00 00 00 01 00 00
      12 "supported-versions" 08 09 " 2.0, 1.5"
      0e "max-frame-size" 05 fc f0 06              # UINT64 accepted too (any integer type)
      07 "x-extra" 09 02 ff ff                     # unknown item, skipped
      0c "capabilities" 08 12 "async , pipelining"`);
    expect(decodeFrame(body)).toMatchObject({ supportedVersions: ['2.0', '1.5'], maxFrameSize: 16380, capabilities: ['async', 'pipelining'] });
  });

  it('decodes a NOTIFY with a binary argument as a zero-copy view', () => {
    const f = decodeFrame(NOTIFY_BODY) as NotifyFrame;
    expect(f).toEqual({
      type: 'notify',
      streamId: 300,
      frameId: 1,
      flags: FRAME_FLAG.FIN,
      messages: [
        {
          name: 'check-client',
          args: [
            { name: 'src', value: { type: 'ipv4', value: '192.0.2.10' } },
            { name: 'preamble', value: { type: 'binary', value: hex('00 00 00 08 04 d2 16 2f') } },
            { name: '', value: { type: 'int64', value: 5432n } },
          ],
        },
      ],
    });
    const bin = f.messages[0]!.args[1]!.value;
    if (bin.type !== 'binary') throw new Error('expected binary');
    expect(bin.value.buffer).toBe(NOTIFY_BODY.buffer);
    expect(encodeFrame(f)).toEqual(withLength(NOTIFY_BODY));
  });

  it('decodes a NOTIFY with several messages and the ABORT flag kept', () => {
    const body = hex(`03 00 00 00 03 05 07  01 "a" 00  01 "b" 01 00 00`);
    expect(decodeFrame(body)).toEqual({
      type: 'notify',
      streamId: 5,
      frameId: 7,
      flags: FRAME_FLAG.FIN | FRAME_FLAG.ABORT,
      messages: [
        { name: 'a', args: [] },
        { name: 'b', args: [{ name: '', value: { type: 'null' } }] },
      ],
    });
  });

  it('encodes an ACK (set-var) and decodes one with every action kind', () => {
    const ack: Frame = {
      type: 'ack',
      streamId: 300,
      frameId: 1,
      actions: [{ type: 'set-var', scope: 'transaction', name: 'backend', value: { type: 'string', value: 'be_tenant_a' } }],
    };
    expect(encodeFrame(ack)).toEqual(withLength(ACK.subarray(4, 4 + 32))); // the vector without its unset-var
    // The agent sends set-var only; the test decoder reads what HAProxy would, unset-var included.
    expect(decodeFrame(ACK.subarray(4))).toEqual({
      ...ack,
      flags: FRAME_FLAG.FIN,
      actions: [...ack.actions, { type: 'unset-var', scope: 'session', name: 'auth' }],
    });
  });

  it('the production decoder refuses frames only an agent sends, and the test decoder the reverse', () => {
    expect(statusOf(() => decodeHaproxyFrame(ACK.subarray(4)))).toBe(STATUS.INVALID);
    expect(statusOf(() => decodeAgentFrame(NOTIFY_BODY))).toBe(STATUS.INVALID);
  });

  it('encodes an AGENT-DISCONNECT with the default message', () => {
    expect(encodeFrame(agentDisconnect(STATUS.BAD_VERSION))).toEqual(withLength(AGENT_DISCONNECT));
    expect(decodeFrame(AGENT_DISCONNECT)).toEqual({ type: 'agent-disconnect', statusCode: 8, message: 'unsupported version' });
  });

  it('decodes a HAPROXY-DISCONNECT', () => {
    const body = hex(`02 00 00 00 01 00 00  0b "status-code" 03 02  07 "message" 08 12 "a timeout occurred"`);
    expect(decodeFrame(body)).toEqual({ type: 'haproxy-disconnect', statusCode: STATUS.TIMEOUT, message: 'a timeout occurred' });
  });

  it('encodes an AGENT-HELLO', () => {
    expect(encodeFrame({ type: 'agent-hello', version: '2.0', maxFrameSize: 16380, capabilities: ['pipelining'] })).toEqual(
      withLength(hex(`65 00 00 00 01 00 00  07 "version" 08 03 "2.0"  0e "max-frame-size" 03 fc f0 06  0c "capabilities" 08 0a "pipelining"`)),
    );
  });
});

describe('decodeFrame: errors carry the right status', () => {
  const cases: Array<[string, string, number]> = [
    ['empty body', '', STATUS.INVALID],
    ['shorter than type + metadata', '03 00 00 00 01 00', STATUS.INVALID],
    ['unknown frame type 4', '04 00 00 00 01 00 00', STATUS.INVALID],
    ['unknown frame type 255', 'ff 00 00 00 01 00 00', STATUS.INVALID],
    ['UNSET continuation fragment', '00 00 00 00 01 05 01', STATUS.FRAGMENTATION_NOT_SUPPORTED],
    ['NOTIFY without FIN', '03 00 00 00 00 05 01 01 "a" 00', STATUS.FRAGMENTATION_NOT_SUPPORTED],
    ['HELLO without FIN', '01 00 00 00 02 00 00', STATUS.FRAGMENTATION_NOT_SUPPORTED],
    ['truncated STREAM-ID varint', '03 00 00 00 01 f0 80', STATUS.INVALID],
    ['STREAM-ID above 2^53-1', '03 00 00 00 01 ff ff ff ff ff ff ff ff 7f 00', STATUS.INVALID],
    ['HELLO with non-zero STREAM-ID', '01 00 00 00 01 01 00', STATUS.INVALID],
    ['HELLO without supported-versions', '01 00 00 00 01 00 00 0e "max-frame-size" 03 fc f0 06 0c "capabilities" 08 00', STATUS.NO_VERSION],
    ['HELLO without max-frame-size', '01 00 00 00 01 00 00 12 "supported-versions" 08 03 "2.0" 0c "capabilities" 08 00', STATUS.NO_FRAME_SIZE],
    ['HELLO without capabilities', '01 00 00 00 01 00 00 12 "supported-versions" 08 03 "2.0" 0e "max-frame-size" 03 fc f0 06', STATUS.NO_CAPABILITIES],
    ['HELLO with max-frame-size as a string', '01 00 00 00 01 00 00 0e "max-frame-size" 08 01 "9"', STATUS.INVALID],
    ['HELLO with supported-versions as an int', '01 00 00 00 01 00 00 12 "supported-versions" 03 02', STATUS.INVALID],
    ['HELLO with a negative max-frame-size', '01 00 00 00 01 00 00 0e "max-frame-size" 04 ff f0 fe fe fe fe fe fe fe 0e', STATUS.INVALID],
    ['HELLO with an empty KV name', '01 00 00 00 01 00 00 00 08 00', STATUS.INVALID],
    ['HELLO KV value missing', '01 00 00 00 01 00 00 03 "abc"', STATUS.INVALID],
    ['NOTIFY message name past the end', '03 00 00 00 01 01 01 09 "abc"', STATUS.INVALID],
    ['NOTIFY NB-ARGS missing', '03 00 00 00 01 01 01 01 "a"', STATUS.INVALID],
    ['NOTIFY fewer args than NB-ARGS', '03 00 00 00 01 01 01 01 "a" 02 00 00', STATUS.INVALID],
    ['NOTIFY arg with unknown type', '03 00 00 00 01 01 01 01 "a" 01 00 0c', STATUS.INVALID],
    ['NOTIFY binary length past end', '03 00 00 00 01 01 01 01 "a" 01 00 09 ff 7f 00', STATUS.INVALID],
    ['ACK unknown action', '67 00 00 00 01 01 01 07 00', STATUS.INVALID],
    ['ACK set-var with 2 args', '67 00 00 00 01 01 01 01 02 02 01 "x" 00', STATUS.INVALID],
    ['ACK unknown scope', '67 00 00 00 01 01 01 02 02 05 01 "x"', STATUS.INVALID],
    ['DISCONNECT without message', '66 00 00 00 01 00 00 0b "status-code" 03 00', STATUS.INVALID],
    ['DISCONNECT status-code above 32 bits', '02 00 00 00 01 00 00 0b "status-code" 05 f0 f1 fe fe 7e 07 "message" 08 00', STATUS.INVALID],
  ];
  it.each(cases)('%s', (_name, bytes, status) => {
    expect(statusOf(() => decodeFrame(hex(bytes)))).toBe(status);
  });

  it('unknown frame types expose the type byte so a caller may skip them', () => {
    try {
      decodeFrame(hex('2a 00 00 00 01 00 00'));
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(SpopError);
      expect((e as SpopError).frameType).toBe(42);
      expect((e as SpopError).message).toContain('unknown frame type 42');
    }
  });
});

describe('encodeFrame: validation', () => {
  it('rejects what cannot be put on the wire', () => {
    const bad: unknown[] = [
      { type: 'notify', streamId: -1, frameId: 0, flags: 1, messages: [] },
      { type: 'notify', streamId: 2 ** 53, frameId: 0, flags: 1, messages: [] },
      { type: 'notify', streamId: 1, frameId: 1, flags: 0, messages: [] },
      { type: 'notify', streamId: 1, frameId: 1, flags: 1, messages: [{ name: 'm', args: new Array(256).fill({ name: '', value: { type: 'null' } }) }] },
      { type: 'agent-disconnect', statusCode: 1, message: 'x'.repeat(256) },
      { type: 'agent-hello', version: '2.0', maxFrameSize: 2 ** 32, capabilities: [] },
      { type: 'agent-hello', version: '2.0', maxFrameSize: 1000, capabilities: ['a,b'] },
      { type: 'ack', streamId: 1, frameId: 1, actions: [{ type: 'set-var', scope: 'global', name: 'x', value: { type: 'null' } }] },
      { type: 'bogus' },
    ];
    for (const f of bad) expect(statusOf(() => encodeFrame(f as Frame))).toBe(STATUS.INVALID);
  });

  it('accepts 255 arguments (NB-ARGS is one byte)', () => {
    const f: Frame = { type: 'notify', streamId: 1, frameId: 1, flags: 1, messages: [{ name: 'm', args: new Array(255).fill({ name: '', value: { type: 'null' } }) }] };
    expect((decodeFrame(encodeFrame(f).subarray(4)) as NotifyFrame).messages[0]!.args).toHaveLength(255);
  });

  it('enforces maxFrameSize with TOO_BIG', () => {
    const f: Frame = { type: 'ack', streamId: 1, frameId: 1, actions: [{ type: 'set-var', scope: 'transaction', name: 'v', value: { type: 'binary', value: Buffer.alloc(300) } }] };
    expect(statusOf(() => encodeFrame(f, { maxFrameSize: 256 }))).toBe(STATUS.TOO_BIG);
    expect(encodeFrame(f, { maxFrameSize: 400 }).length).toBeGreaterThan(300);
  });
});

describe('frames: round-trip properties', () => {
  it('decode(encode(f)) == f for every frame type, and the length prefix is right', () => {
    fc.assert(
      fc.property(frameArb, (f) => {
        const wire = encodeFrame(f);
        expect(wire.readUInt32BE(0)).toBe(wire.length - 4);
        const back = decodeFrame(wire.subarray(4));
        expect(normFrame(back)).toEqual(normFrame(f));
        expect(encodeFrame(back)).toEqual(wire);
      }),
      { numRuns: 1000 },
    );
  }, 30_000);
});
