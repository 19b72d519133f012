// NOTIFY -> ACK against the real agent: routes, refusals (decoded as PostgreSQL ErrorResponses),
// unknown messages, pipelining, byte-by-byte delivery, and cancel routing by client address.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningAgent } from '../../src/agent.js';
import { cancelId } from '../../src/contract.js';
import { encodeCancelRequest, encodeSslRequest, encodeStartupMessage } from '../../src/pg/frontend.js';
import { decodeErrorResponse } from '../../src/pg/error-response.js';
import { type AckFrame, type SpoeMessage } from '../../src/spop/index.js';
import { encodeFrame } from '../../src/spop/testing/index.js';
import { STARTUP_MESSAGE } from '../../src/server/spoe-contract.js';
import { TENANTS, policy, table } from '../decision/fixtures.js';
import { startTestAgent, startupFor } from './harness.js';
import { cancelMessageOf, SpopClient, ackVars, binaryVar, haproxyHello, notify, startupMessage, routeVar } from './spop-client.js';

let agent: RunningAgent;
const clients: SpopClient[] = [];

async function ready(port = agent.port): Promise<SpopClient> {
  const c = await SpopClient.connect(port);
  clients.push(c);
  await c.hello();
  return c;
}

beforeAll(async () => {
  agent = await startTestAgent();
});

afterAll(async () => {
  for (const c of clients) c.destroy();
  await agent.close();
});

interface Refusal {
  sqlstate: string | undefined;
  severity: string | undefined;
  message: string | undefined;
}

function refusalOf(ack: AckFrame): Refusal {
  const vars = ackVars(ack);
  expect(vars.has('be')).toBe(false);
  expect(vars.has('tgt')).toBe(false);
  const decoded = decodeErrorResponse(binaryVar(vars, 'err'));
  if (decoded === undefined) throw new Error('err is not one well-framed ErrorResponse');
  return { sqlstate: decoded.sqlstate, severity: decoded.severity, message: decoded.message };
}

describe('NOTIFY pgroute-startup', () => {
  it('routes a known tenant: ACK sets the route (be|t|tgt) and the cancel id in transaction scope, echoing stream and frame ids', async () => {
    const c = await ready();
    const ack = await c.request(42, 7, [startupMessage(startupFor('acme'))]);
    expect(ack).toMatchObject({ type: 'ack', streamId: 42, frameId: 7 });
    const [ca, cb] = cancelId('acme', 'primary');
    expect(ack.actions).toEqual([
      { type: 'set-var', scope: 'transaction', name: 'r', value: { type: 'string', value: 'be_acme_primary|acme|primary' } },
      { type: 'set-var', scope: 'transaction', name: 'ca', value: { type: 'string', value: String(ca) } },
      { type: 'set-var', scope: 'transaction', name: 'cb', value: { type: 'string', value: String(cb) } },
    ]);
  });

  it('picks the target from dport (6432 -> pool) and accepts an IPv6 src', async () => {
    const c = await ready();
    const vars = ackVars(await c.request(1, 1, [startupMessage(startupFor('globex'), '2001:db8::1', 6432)]));
    expect(routeVar(vars, 'be')).toBe('be_globex_pool');
    expect(routeVar(vars, 'tgt')).toBe('pool');
  });

  it.each(['int32', 'uint32'] as const)('accepts dport as %s too', async (type) => {
    const c = await ready();
    const msg = startupMessage(startupFor('acme'), '127.0.0.1');
    msg.args[2] = { name: 'dport', value: { type, value: 5433 } };
    expect(routeVar(ackVars(await c.request(1, 1, [msg])), 'be')).toBe('be_acme_replica');
  });

  it('takes the tenant from options=-c pgroute.tenant=...', async () => {
    const c = await ready();
    const pkt = startupFor('postgres');
    const withOptions = encodeStartupMessage({ user: 'u', database: 'postgres', options: '-c pgroute.tenant=umbrella' });
    expect(refusalOf(await c.request(1, 1, [startupMessage(pkt)])).sqlstate).toBe('3D000');
    expect(routeVar(ackVars(await c.request(1, 2, [startupMessage(withOptions)])), 'be')).toBe('be_umbrella_primary');
  });

  it('unknown tenant: ACK with only err, an ErrorResponse FATAL 3D000 naming what the client sent', async () => {
    const c = await ready();
    const ack = await c.request(3, 4, [startupMessage(startupFor('nope'))]);
    expect([...ackVars(ack).keys()]).toEqual(['err']);
    const r = refusalOf(ack);
    expect(r).toMatchObject({ severity: 'FATAL', sqlstate: '3D000' });
    expect(r.message).toContain('"nope"');
    expect(r.message).not.toMatch(/acme|globex|initech|umbrella/);
  });

  it('disabled tenant: err bytes identical to the same name being unknown', async () => {
    const withoutInitech = await startTestAgent({
      table: table(policy({ keys: ['options', 'database'] }), TENANTS.filter((t) => t.id !== 'initech')),
    });
    try {
      const onDisabled = await ready();
      const onUnknown = await ready(withoutInitech.port);
      const disabled = ackVars(await onDisabled.request(5, 5, [startupMessage(startupFor('initech'))]));
      const unknown = ackVars(await onUnknown.request(5, 5, [startupMessage(startupFor('initech'))]));
      expect(binaryVar(disabled, 'err').equals(binaryVar(unknown, 'err'))).toBe(true);
      expect(decodeErrorResponse(binaryVar(disabled, 'err'))?.sqlstate).toBe('3D000');
      expect(disabled.has('be')).toBe(false);
    } finally {
      await withoutInitech.close();
    }
  });

  it.each([
    ['a truncated packet', Buffer.from([0, 0, 0, 3])],
    ['an empty packet', Buffer.alloc(0)],
    ['a length that disagrees with the packet', Buffer.from([0, 0, 1, 0, 0, 3, 0, 0, 0])],
    ['random bytes', Buffer.from('deadbeefcafebabe0011223344556677', 'hex')],
  ])('malformed packet (%s) -> FATAL 08P01', async (_what, pkt) => {
    const c = await ready();
    expect(refusalOf(await c.request(9, 9, [startupMessage(pkt)]))).toMatchObject({ severity: 'FATAL', sqlstate: '08P01' });
  });

  it('SSLRequest reaching the agent (pipelined after another, or inside TLS) -> 08P01', async () => {
    const c = await ready();
    expect(refusalOf(await c.request(9, 10, [startupMessage(encodeSslRequest())])).sqlstate).toBe('08P01');
  });

  it('pgroute-startup without a pkt argument -> 08P01', async () => {
    const c = await ready();
    const msg: SpoeMessage = { name: STARTUP_MESSAGE, args: [{ name: 'src', value: { type: 'ipv4', value: '127.0.0.1' } }] };
    expect(refusalOf(await c.request(2, 2, [msg])).sqlstate).toBe('08P01');
  });

  it('a NOTIFY carrying an unknown message name -> ACK with no actions', async () => {
    const c = await ready();
    const ack = await c.request(11, 12, [{ name: 'something-else', args: [{ name: 'pkt', value: { type: 'binary', value: startupFor('acme') } }] }]);
    expect(ack).toEqual({ type: 'ack', streamId: 11, frameId: 12, flags: 1, actions: [] });
  });

  it('a NOTIFY with no messages -> ACK with no actions', async () => {
    const c = await ready();
    expect((await c.request(13, 14, [])).actions).toEqual([]);
  });

  it('unknown messages next to pgroute-startup are ignored; the startup is decided', async () => {
    const c = await ready();
    const ack = await c.request(15, 16, [{ name: 'other', args: [] }, startupMessage(startupFor('umbrella')), { name: 'x', args: [] }]);
    expect(routeVar(ackVars(ack), 'be')).toBe('be_umbrella_primary');
    // The route and the cancel id: nothing for the unknown messages.
    expect(ack.actions).toHaveLength(3);
  });
});

describe('pipelining and framing', () => {
  type Expect = { kind: 'route'; be: string } | { kind: 'refuse'; sqlstate: string } | { kind: 'none' };
  const cases: Array<{ message: SpoeMessage; expect: Expect }> = [
    { message: startupMessage(startupFor('acme')), expect: { kind: 'route', be: 'be_acme_primary' } },
    { message: startupMessage(startupFor('acme'), '127.0.0.1', 5433), expect: { kind: 'route', be: 'be_acme_replica' } },
    { message: startupMessage(startupFor('globex'), '127.0.0.1', 6432), expect: { kind: 'route', be: 'be_globex_pool' } },
    { message: startupMessage(startupFor('umbrella')), expect: { kind: 'route', be: 'be_umbrella_primary' } },
    { message: startupMessage(startupFor('initech')), expect: { kind: 'refuse', sqlstate: '3D000' } },
    { message: startupMessage(startupFor('nobody')), expect: { kind: 'refuse', sqlstate: '3D000' } },
    { message: startupMessage(Buffer.from([0, 0, 0, 4])), expect: { kind: 'refuse', sqlstate: '08P01' } },
    { message: { name: 'not-ours', args: [] }, expect: { kind: 'none' } },
  ];

  function check(ack: AckFrame, e: Expect): void {
    if (e.kind === 'none') expect(ack.actions).toEqual([]);
    else if (e.kind === 'route') expect(routeVar(ackVars(ack), 'be')).toBe(e.be);
    else expect(refusalOf(ack).sqlstate).toBe(e.sqlstate);
  }

  it('200 NOTIFYs in one write -> 200 ACKs, ids matching as a set, each with its own verdict', async () => {
    const c = await ready();
    const sent = new Map<string, Expect>();
    const frames: Buffer[] = [];
    for (let i = 0; i < 200; i++) {
      // Distinct (stream, frame) pairs, some streams carrying several frames, ids across varint sizes.
      const streamId = (i % 50) * 997 + 1;
      const frameId = i * 13 + (i % 3 === 0 ? 300_000 : 0);
      const k = cases[(i * 7) % cases.length]!;
      sent.set(`${streamId}/${frameId}`, k.expect);
      frames.push(encodeFrame(notify(streamId, frameId, [k.message])));
    }
    c.send(Buffer.concat(frames));
    const seen = new Set<string>();
    for (let i = 0; i < 200; i++) {
      const ack = await c.nextOf('ack');
      const id = `${ack.streamId}/${ack.frameId}`;
      const e = sent.get(id);
      if (e === undefined) throw new Error(`ACK for unknown ids ${id}`);
      expect(seen.has(id)).toBe(false);
      seen.add(id);
      check(ack, e);
    }
    expect(seen.size).toBe(200);
    expect(c.pending()).toEqual([]);
    expect(c.isClosed).toBe(false);
  });

  it('HELLO and NOTIFYs split byte by byte across writes still work', async () => {
    const c = await SpopClient.connect(agent.port);
    clients.push(c);
    const picked = [cases[0]!, cases[4]!, cases[7]!, cases[2]!];
    const stream = Buffer.concat([encodeFrame(haproxyHello()), ...picked.map((k, i) => encodeFrame(notify(100 + i, i, [k.message])))]);
    for (let i = 0; i < stream.length; i++) {
      await new Promise<void>((resolve, reject) => c.socket.write(stream.subarray(i, i + 1), (err) => (err ? reject(err) : resolve())));
    }
    expect((await c.next()).type).toBe('agent-hello');
    for (let i = 0; i < picked.length; i++) {
      const ack = await c.nextOf('ack');
      expect([ack.streamId, ack.frameId]).toEqual([100 + i, i]);
      check(ack, picked[i]!.expect);
    }
  });

  it('a NOTIFY exactly at the negotiated max-frame-size is accepted', async () => {
    const c = await SpopClient.connect(agent.port);
    clients.push(c);
    await c.hello({ maxFrameSize: 512 });
    const frameOf = (pad: number): Buffer => encodeFrame(notify(1, 1, [{ name: 'pad', args: [{ name: 'b', value: { type: 'binary', value: Buffer.alloc(pad) } }] }]));
    // Body = total - 4; grow the pad until the body is exactly 512 bytes.
    let pad = 400;
    while (frameOf(pad).length - 4 < 512) pad++;
    const f = frameOf(pad);
    expect(f.length - 4).toBe(512);
    c.send(f);
    expect((await c.nextOf('ack')).actions).toEqual([]);
  });
});

describe('CancelRequest routing by the record HAProxy hands over', () => {
  let cancelAgent: RunningAgent;
  beforeAll(async () => {
    cancelAgent = await startTestAgent();
  });
  afterAll(async () => {
    await cancelAgent.close();
  });

  const cancelPkt = encodeCancelRequest(4242, Buffer.from([1, 2, 3, 4]));

  it('a cancel from an address with no record is refused 08004', async () => {
    const c = await ready(cancelAgent.port);
    expect(refusalOf(await c.request(1, 1, [cancelMessageOf(cancelPkt, '127.0.0.1')])).sqlstate).toBe('08004');
    expect(refusalOf(await c.request(2, 1, [cancelMessageOf(cancelPkt, '127.0.0.1', [])])).sqlstate).toBe('08004');
  });

  it('goes to the backend of the newest recorded target, whichever connection or agent saw the startup', async () => {
    const c = await ready(cancelAgent.port);
    const routed = ackVars(await c.request(3, 1, [cancelMessageOf(cancelPkt, '127.0.0.1', [cancelId('globex', 'primary'), cancelId('acme', 'pool')])]));
    expect(routeVar(routed, 'be')).toBe('be_acme_pool');
    expect(routeVar(routed, 't')).toBe('acme');
    expect(routeVar(routed, 'tgt')).toBe('pool');
    expect(routed.has('err')).toBe(false);
  });

  it('a record of ids no target has (forged or stale) is refused 08004', async () => {
    const c = await ready(cancelAgent.port);
    expect(refusalOf(await c.request(4, 1, [cancelMessageOf(cancelPkt, '::2', [[12345, 678]])])).sqlstate).toBe('08004');
  });

  it('a CancelRequest in the startup message (a configuration older than the agent) is refused 08004', async () => {
    const c = await ready(cancelAgent.port);
    await c.request(5, 1, [startupMessage(startupFor('globex'), '192.0.2.10')]);
    expect(refusalOf(await c.request(6, 1, [startupMessage(cancelPkt, '192.0.2.10')])).sqlstate).toBe('08004');
  });
});
