// Bad frames against the real agent: every one gets an AGENT-DISCONNECT with the SPOE.txt 3.5
// status, the socket is closed, and the agent keeps serving new connections.
//
// SPOE.txt 3.5: 0 normal, 1 I/O error, 2 timeout, 3 frame is too big, 4 invalid frame received,
// 5 version value not found, 6 max-frame-size value not found, 7 capabilities value not found,
// 8 unsupported version, 9 max-frame-size too big or too small, 10 payload fragmentation is not
// supported, 11 invalid interlaced frames, 12 frame-id not found, 13 resource allocation error,
// 99 unknown error.

import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { RunningAgent } from '../../src/agent.js';
import { STATUS } from '../../src/spop/index.js';
import { encodeFrame } from '../../src/spop/testing/index.js';
import { startTestAgent, startupFor } from './harness.js';
import { SpopClient, ackVars, notify, startupMessage, routeVar } from './spop-client.js';

let agent: RunningAgent;
const clients: SpopClient[] = [];

async function client(): Promise<SpopClient> {
  const c = await SpopClient.connect(agent.port);
  clients.push(c);
  return c;
}

async function ready(maxFrameSize?: number): Promise<SpopClient> {
  const c = await client();
  await c.hello(maxFrameSize === undefined ? {} : { maxFrameSize });
  return c;
}

/** A frame with a hand-made body: length prefix + the given bytes. */
function rawFrame(body: Buffer): Buffer {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(body.length);
  return Buffer.concat([len, body]);
}

const routedAcme = (): ReturnType<typeof startupMessage> => startupMessage(startupFor('acme'));

beforeAll(async () => {
  agent = await startTestAgent();
});

afterEach(async () => {
  // Whatever the last test did, the agent still serves a fresh connection.
  const c = await ready();
  expect(routeVar(ackVars(await c.request(1, 1, [routedAcme()])), 'be')).toBe('be_acme_primary');
  c.destroy();
});

afterAll(async () => {
  for (const c of clients) c.destroy();
  await agent.close();
});

describe('bad input -> AGENT-DISCONNECT with the right status, then close', () => {
  it('an HTTP request instead of HELLO: its first 4 bytes read as a huge length -> 3 (frame is too big)', async () => {
    const c = await client();
    c.send(Buffer.from('GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n'));
    expect((await c.expectDisconnect()).statusCode).toBe(STATUS.TOO_BIG);
  });

  it('garbage with a plausible length but an unknown frame type -> 4 (invalid frame)', async () => {
    const c = await ready();
    c.send(rawFrame(Buffer.from([0x7f, 0, 0, 0, 1, 0, 0, 0xaa, 0xbb])));
    expect((await c.expectDisconnect()).statusCode).toBe(STATUS.INVALID);
  });

  it('a length below the 7-byte minimum frame -> 4', async () => {
    const c = await ready();
    c.send(rawFrame(Buffer.from([3, 0, 0])));
    expect((await c.expectDisconnect()).statusCode).toBe(STATUS.INVALID);
  });

  it('a NOTIFY whose payload is truncated garbage -> 4', async () => {
    const c = await ready();
    const good = encodeFrame(notify(1, 1, [routedAcme()]));
    const body = good.subarray(4, good.length - 10); // cut inside the last argument
    c.send(rawFrame(body));
    expect((await c.expectDisconnect()).statusCode).toBe(STATUS.INVALID);
  });

  it('a frame larger than the negotiated max-frame-size -> 3, as soon as its length is seen', async () => {
    const c = await ready(1024);
    // Only the 4-byte length and a few body bytes: the agent must not wait for the rest.
    const len = Buffer.alloc(4);
    len.writeUInt32BE(1025);
    c.send(Buffer.concat([len, Buffer.from([3, 0, 0, 0, 1])]));
    expect((await c.expectDisconnect()).statusCode).toBe(STATUS.TOO_BIG);
  });

  it('a NOTIFY one byte over the negotiated max-frame-size -> 3', async () => {
    const c = await ready(512);
    const frameOf = (pad: number): Buffer => encodeFrame(notify(1, 1, [{ name: 'pad', args: [{ name: 'b', value: { type: 'binary', value: Buffer.alloc(pad) } }] }]));
    let pad = 400;
    while (frameOf(pad).length - 4 < 513) pad++;
    expect(frameOf(pad).length - 4).toBe(513);
    c.send(frameOf(pad));
    expect((await c.expectDisconnect()).statusCode).toBe(STATUS.TOO_BIG);
  });

  it('before HELLO the agent\'s own limit (16380) applies -> 3', async () => {
    const c = await client();
    const len = Buffer.alloc(4);
    len.writeUInt32BE(16381);
    c.send(len);
    expect((await c.expectDisconnect()).statusCode).toBe(STATUS.TOO_BIG);
  });

  it('a NOTIFY before HELLO -> 4', async () => {
    const c = await client();
    c.send(notify(1, 1, [routedAcme()]));
    expect((await c.expectDisconnect()).statusCode).toBe(STATUS.INVALID);
  });

  it('a fragmented NOTIFY (FIN clear) -> 10 (fragmentation not supported)', async () => {
    const c = await ready();
    const f = Buffer.from(encodeFrame(notify(1, 1, [routedAcme()])));
    f.writeUInt32BE(0, 5); // FLAGS: no FIN
    c.send(f);
    expect((await c.expectDisconnect()).statusCode).toBe(STATUS.FRAGMENTATION_NOT_SUPPORTED);
  });

  it('an UNSET (continuation) frame -> 10', async () => {
    const c = await ready();
    c.send(rawFrame(Buffer.from([0, 0, 0, 0, 1, 1, 1, 0xde, 0xad])));
    expect((await c.expectDisconnect()).statusCode).toBe(STATUS.FRAGMENTATION_NOT_SUPPORTED);
  });

  it('a fragmented HELLO (FIN clear) -> 10', async () => {
    const c = await client();
    const f = Buffer.from(encodeFrame({ type: 'haproxy-hello', supportedVersions: ['2.0'], maxFrameSize: 16380, capabilities: [], healthcheck: false }));
    f.writeUInt32BE(0, 5);
    c.send(f);
    expect((await c.expectDisconnect()).statusCode).toBe(STATUS.FRAGMENTATION_NOT_SUPPORTED);
  });

  it('an agent-only frame (ACK) sent by HAProxy -> 4', async () => {
    const c = await ready();
    c.send({ type: 'ack', streamId: 1, frameId: 1, actions: [] });
    expect((await c.expectDisconnect()).statusCode).toBe(STATUS.INVALID);
  });

  it('ACKs for the good frames before a bad one in the same write arrive before the AGENT-DISCONNECT', async () => {
    const c = await ready();
    const bad = Buffer.from(encodeFrame(notify(3, 3, [routedAcme()])));
    bad.writeUInt32BE(0, 5);
    const after = encodeFrame(notify(4, 4, [routedAcme()]));
    c.send(Buffer.concat([encodeFrame(notify(1, 1, [routedAcme()])), encodeFrame(notify(2, 2, [routedAcme()])), bad, after]));
    expect((await c.nextOf('ack')).frameId).toBe(1);
    expect((await c.nextOf('ack')).frameId).toBe(2);
    expect((await c.expectDisconnect()).statusCode).toBe(STATUS.FRAGMENTATION_NOT_SUPPORTED);
    expect(c.pending()).toEqual([]); // nothing for the frame after the bad one
  });

  it('nothing more is read after the disconnect: later bytes get no answer', async () => {
    const c = await ready();
    c.send(rawFrame(Buffer.from([0x7f, 0, 0, 0, 1, 0, 0])));
    const d = await c.nextOf('agent-disconnect');
    expect(d.statusCode).toBe(STATUS.INVALID);
    if (!c.socket.destroyed && c.socket.writable) c.send(notify(5, 5, [routedAcme()]));
    await c.waitClosed();
    expect(c.pending()).toEqual([]);
  });
});

describe('HAPROXY-DISCONNECT', () => {
  it('-> AGENT-DISCONNECT status 0, then the agent closes', async () => {
    const c = await ready();
    await c.request(1, 1, [routedAcme()]);
    c.send({ type: 'haproxy-disconnect', statusCode: 0, message: 'normal' });
    const d = await c.expectDisconnect();
    expect(d.statusCode).toBe(STATUS.NONE);
  });

  it('with an error status from HAProxy, still answered with status 0', async () => {
    const c = await ready();
    c.send({ type: 'haproxy-disconnect', statusCode: STATUS.TIMEOUT, message: 'a timeout occurred' });
    expect((await c.expectDisconnect()).statusCode).toBe(STATUS.NONE);
  });

  it('NOTIFYs pipelined before the HAPROXY-DISCONNECT are all ACKed first', async () => {
    const c = await ready();
    c.send(
      Buffer.concat([
        encodeFrame(notify(1, 1, [routedAcme()])),
        encodeFrame(notify(1, 2, [routedAcme()])),
        encodeFrame({ type: 'haproxy-disconnect', statusCode: 0, message: 'normal' }),
        encodeFrame(notify(1, 3, [routedAcme()])),
      ]),
    );
    expect((await c.nextOf('ack')).frameId).toBe(1);
    expect((await c.nextOf('ack')).frameId).toBe(2);
    expect((await c.expectDisconnect()).statusCode).toBe(STATUS.NONE);
    expect(c.pending()).toEqual([]);
  });

  it('a HAPROXY-DISCONNECT before HELLO -> 4 (HELLO must come first)', async () => {
    const c = await client();
    c.send({ type: 'haproxy-disconnect', statusCode: 0, message: 'normal' });
    expect((await c.expectDisconnect()).statusCode).toBe(STATUS.INVALID);
  });
});

describe('abrupt clients', () => {
  it('a client resetting mid-frame does not disturb the agent', async () => {
    const bystander = await ready();
    const c = await ready();
    const f = encodeFrame(notify(1, 1, [routedAcme()]));
    c.send(f.subarray(0, 10));
    c.socket.resetAndDestroy();
    await c.closed;
    // An open connection and a new one both still get real verdicts.
    expect(routeVar(ackVars(await bystander.request(7, 1, [routedAcme()])), 'be')).toBe('be_acme_primary');
    const fresh = await ready();
    expect(routeVar(ackVars(await fresh.request(1, 1, [startupMessage(startupFor('globex'))])), 'be')).toBe('be_globex_primary');
    bystander.destroy();
    fresh.destroy();
    await Promise.all([bystander.closed, fresh.closed]);
  });

  it('many connections opened and dropped at once are all cleaned up', async () => {
    const many = await Promise.all(Array.from({ length: 30 }, () => ready()));
    for (const c of many) c.destroy();
    await Promise.all(many.map((c) => c.closed));
    const deadline = Date.now() + 2_000;
    for (;;) {
      const gauge = (await agent.metrics.haproxyConnections.get()).values[0]?.value ?? -1;
      if (gauge === 0 || Date.now() > deadline) {
        expect(gauge).toBe(0);
        break;
      }
      await new Promise((r) => setTimeout(r, 10));
    }
    const fresh = await ready();
    expect(routeVar(ackVars(await fresh.request(1, 1, [routedAcme()])), 'be')).toBe('be_acme_primary');
    fresh.destroy();
  });
});
