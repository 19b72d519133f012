// HELLO handshake against the real agent: version, max-frame-size = min of both, capabilities
// intersection, health checks, refused HELLOs, and the hello timeout.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningAgent } from '../../src/agent.js';
import { STATUS } from '../../src/spop/index.js';
import { encodeFrame } from '../../src/spop/testing/index.js';
import { startTestAgent, startupFor } from './harness.js';
import { SpopClient, ackVars, haproxyHello, startupMessage, routeVar } from './spop-client.js';

const HELLO_TIMEOUT_MS = 150;

let agent: RunningAgent;
const clients: SpopClient[] = [];

async function client(): Promise<SpopClient> {
  const c = await SpopClient.connect(agent.port);
  clients.push(c);
  return c;
}

beforeAll(async () => {
  agent = await startTestAgent({ helloTimeoutMs: HELLO_TIMEOUT_MS });
});

afterAll(async () => {
  for (const c of clients) c.destroy();
  await agent.close();
});

describe('HELLO handshake', () => {
  it('answers AGENT-HELLO version 2.0, HAProxy\'s smaller max-frame-size, and pipelining,async', async () => {
    const c = await client();
    const hello = await c.hello({ maxFrameSize: 1000 });
    expect(hello).toEqual({ type: 'agent-hello', version: '2.0', maxFrameSize: 1000, capabilities: ['pipelining', 'async'] });
    // The connection is usable after the handshake.
    const ack = await c.request(1, 1, [startupMessage(startupFor('acme'))]);
    expect(routeVar(ackVars(ack), 'be')).toBe('be_acme_primary');
  });

  it('caps max-frame-size at the agent\'s own 16380 when HAProxy offers more', async () => {
    const c = await client();
    expect((await c.hello({ maxFrameSize: 1_000_000 })).maxFrameSize).toBe(16380);
  });

  it('accepts the 256-byte minimum max-frame-size', async () => {
    const c = await client();
    expect((await c.hello({ maxFrameSize: 256 })).maxFrameSize).toBe(256);
  });

  it.each([
    [['pipelining', 'async', 'fragmentation'], ['pipelining', 'async']],
    [['async'], ['async']],
    [['fragmentation', 'pipelining'], ['pipelining']],
    [['async', 'pipelining'], ['pipelining', 'async']],
    [[], []],
  ])('capabilities offered %j -> announced %j (intersection, never fragmentation)', async (offered, expected) => {
    const c = await client();
    expect((await c.hello({ capabilities: offered })).capabilities).toEqual(expected);
  });

  it('accepts any 2.x in supported-versions alongside others', async () => {
    const c = await client();
    expect((await c.hello({ supportedVersions: ['1.0', '2.3'] })).version).toBe('2.0');
  });

  it('healthcheck HELLO: AGENT-HELLO, then the agent closes the connection', async () => {
    const c = await client();
    const hello = await c.hello({ healthcheck: true });
    expect(hello.type).toBe('agent-hello');
    await c.waitClosed();
    expect(c.pending()).toEqual([]);
  });

  it('unsupported version -> AGENT-DISCONNECT 8 (unsupported version) and close', async () => {
    const c = await client();
    c.send(haproxyHello({ supportedVersions: ['1.0'] }));
    expect((await c.expectDisconnect()).statusCode).toBe(STATUS.BAD_VERSION);
  });

  it('max-frame-size below 256 -> AGENT-DISCONNECT 9 (max-frame-size too big or too small) and close', async () => {
    const c = await client();
    c.send(haproxyHello({ maxFrameSize: 255 }));
    expect((await c.expectDisconnect()).statusCode).toBe(STATUS.BAD_FRAME_SIZE);
  });

  it('HELLO without capabilities -> AGENT-DISCONNECT 7 (capabilities value not found)', async () => {
    const c = await client();
    // Encode a full HELLO, then drop the trailing "capabilities" KV and "engine-id" by re-encoding by hand.
    const full = encodeFrame(haproxyHello({ engineId: undefined }));
    const capKey = Buffer.from('capabilities');
    const at = full.indexOf(capKey) - 1; // the key's 1-byte varint length
    const body = full.subarray(4, at);
    const len = Buffer.alloc(4);
    len.writeUInt32BE(body.length);
    c.send(Buffer.concat([len, body]));
    expect((await c.expectDisconnect()).statusCode).toBe(STATUS.NO_CAPABILITIES);
  });

  it('NOTIFY before HELLO -> AGENT-DISCONNECT 4 (invalid frame) and close', async () => {
    const c = await client();
    c.send({ type: 'notify', streamId: 1, frameId: 1, flags: 1, messages: [startupMessage(startupFor('acme'))] });
    const d = await c.expectDisconnect();
    expect(d.statusCode).toBe(STATUS.INVALID);
    expect(d.message).toMatch(/HAPROXY-HELLO/);
  });

  it('a second HELLO after the handshake -> AGENT-DISCONNECT 4', async () => {
    const c = await client();
    await c.hello();
    c.send(haproxyHello());
    expect((await c.expectDisconnect()).statusCode).toBe(STATUS.INVALID);
  });

  it('a client that sends nothing gets AGENT-DISCONNECT 2 (timeout) after the hello timeout, then close', async () => {
    const c = await client();
    const started = Date.now();
    const d = await c.expectDisconnect(HELLO_TIMEOUT_MS + 2_000);
    expect(d.statusCode).toBe(STATUS.TIMEOUT);
    expect(Date.now() - started).toBeGreaterThanOrEqual(HELLO_TIMEOUT_MS - 20);
  });

  it('the hello timeout stops once the handshake is done', async () => {
    const c = await client();
    await c.hello();
    await new Promise((r) => setTimeout(r, HELLO_TIMEOUT_MS * 2));
    expect(c.isClosed).toBe(false);
    expect(c.pending()).toEqual([]);
    const ack = await c.request(7, 9, [startupMessage(startupFor('globex'))]);
    expect(routeVar(ackVars(ack), 'be')).toBe('be_globex_primary');
  });
});
