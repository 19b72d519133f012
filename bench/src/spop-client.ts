// Synthetic HAProxy for figure (c): connects straight to a pgroute agent, does the HAPROXY-HELLO
// handshake, then keeps `inflight` NOTIFY frames (message pgroute-startup) in flight per connection
// and counts ACKs. Prints one JSON object on stdout.
//
// usage: node dist-bench/bench/src/spop-client.js --port P [--host H] [--seconds 10] [--warmup 1]
//        [--inflight 64] [--connections 1] [--database bench] [--dport 5432] [--count N]
// --count N: send exactly N NOTIFY frames in all, wait for their ACKs and stop (no warm-up, no time
// window): fixed work for instruction counts (bench/ab.sh).

import { readFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { parseArgs } from 'node:util';
import { FRAME, FLAG_FIN, haproxyHello, notifyPayload, parseActions, parseFrame, parseKv, startupPacket, varint, type Action, type Value } from './spop-frames.js';

const { values } = parseArgs({
  options: {
    host: { type: 'string', default: '127.0.0.1' },
    port: { type: 'string' },
    seconds: { type: 'string', default: '10' },
    warmup: { type: 'string', default: '1' },
    inflight: { type: 'string', default: '64' },
    connections: { type: 'string', default: '1' },
    database: { type: 'string', default: 'bench' },
    dport: { type: 'string', default: '5432' },
    'agent-pid': { type: 'string' },
    count: { type: 'string' },
  },
});
if (values.port === undefined) throw new Error('--port is required');
const port = Number(values.port);
const seconds = Number(values.seconds);
const warmup = Number(values.warmup);
const inflight = Number(values.inflight);
const connections = Number(values.connections);
const count = values.count === undefined ? Infinity : Number(values.count);
const MAX_FRAME = 16380;

const payload = notifyPayload('pgroute-startup', [
  ['pkt', { t: 'binary', v: startupPacket({ user: 'app', database: values.database ?? 'bench', application_name: 'spop-bench' }) }],
  ['src', { t: 'ipv4', v: '127.0.0.1' }],
  ['dport', { t: 'int32', v: Number(values.dport) }],
]);

/** NOTIFY frame header + shared payload; only the ids change between frames. */
function notify(streamId: number): Buffer[] {
  if (sent >= count) return [];
  sent++;
  const sid = varint(streamId);
  const fid = varint(1);
  const head = Buffer.alloc(9);
  head.writeUInt32BE(5 + sid.length + fid.length + payload.length, 0);
  head.writeUInt8(FRAME.NOTIFY, 4);
  head.writeUInt32BE(FLAG_FIN, 5);
  return [head, sid, fid, payload];
}

let measuring = false;
let acks = 0;
let acksTotal = 0;
let sent = 0;
let sample: Action[] | undefined;
let allAcked: (() => void) | undefined;
let failure: string | undefined;

interface Conn {
  sock: Socket;
  nextStream: number;
}

function fail(msg: string): void {
  failure ??= msg;
}

function start(index: number): Promise<Conn> {
  return new Promise((resolve, reject) => {
    const sock = connect({ host: values.host, port, noDelay: true });
    const conn: Conn = { sock, nextStream: index * 1_000_000_000 + 1 };
    let buf: Buffer = Buffer.alloc(0);
    let ready = false;
    sock.once('connect', () => sock.write(haproxyHello(MAX_FRAME, `spop-bench-${process.pid}`)));
    sock.on('error', (err) => (ready ? fail(err.message) : reject(err)));
    sock.on('close', () => {
      if (ready) fail('agent closed the connection');
    });
    sock.on('data', (chunk: Buffer) => {
      buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
      let off = 0;
      const out: Buffer[] = [];
      while (buf.length - off >= 4) {
        const len = buf.readUInt32BE(off);
        if (buf.length - off - 4 < len) break;
        const f = parseFrame(buf.subarray(off + 4, off + 4 + len));
        off += 4 + len;
        if (f.type === FRAME.ACK) {
          acksTotal++;
          if (acksTotal >= count) allAcked?.();
          if (measuring) acks++;
          if (sample === undefined) sample = parseActions(f.payload);
          out.push(...notify(conn.nextStream++));
        } else if (f.type === FRAME.AGENT_HELLO) {
          const hello = parseKv(f.payload);
          const caps = String(hello.get('capabilities') ?? '');
          if (!caps.split(',').map((s) => s.trim()).includes('pipelining')) {
            reject(new Error(`agent does not announce pipelining: ${JSON.stringify(Object.fromEntries(hello))}`));
            return;
          }
          ready = true;
          for (let i = 0; i < inflight; i++) out.push(...notify(conn.nextStream++));
          resolve(conn);
        } else if (f.type === FRAME.AGENT_DISCONNECT) {
          const kv = parseKv(f.payload);
          const msg = `AGENT-DISCONNECT ${String(kv.get('status-code'))}: ${String(kv.get('message'))}`;
          if (ready) fail(msg);
          else reject(new Error(msg));
        } else {
          fail(`unexpected frame type ${f.type}`);
        }
      }
      buf = off === buf.length ? Buffer.alloc(0) : buf.subarray(off);
      if (out.length > 0) sock.write(Buffer.concat(out));
    });
  });
}

/** utime+stime in seconds of another process (the agent), or undefined. */
function cpuOf(pid: string | undefined): number | undefined {
  if (pid === undefined) return undefined;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / 100;
  } catch {
    return undefined;
  }
}

function show(v: Value): string | number | boolean | null {
  return Buffer.isBuffer(v) ? `0x${v.toString('hex')}` : v;
}

async function main(): Promise<void> {
  const done = new Promise<void>((r) => (allAcked = r));
  const conns = await Promise.all(Array.from({ length: connections }, (_, i) => start(i)));
  if (Number.isFinite(count)) measuring = true;
  else await new Promise((r) => setTimeout(r, warmup * 1000));
  const cpu0 = process.cpuUsage();
  const agentCpu0 = cpuOf(values['agent-pid']);
  const t0 = process.hrtime.bigint();
  measuring = true;
  await (Number.isFinite(count) ? done : new Promise((r) => setTimeout(r, seconds * 1000)));
  measuring = false;
  const elapsed = Number(process.hrtime.bigint() - t0) / 1e9;
  const cpu = process.cpuUsage(cpu0);
  const agentCpu1 = cpuOf(values['agent-pid']);
  const agentCpuSeconds = agentCpu0 === undefined || agentCpu1 === undefined ? null : Number((agentCpu1 - agentCpu0).toFixed(2));
  for (const c of conns) c.sock.destroy();
  const result = {
    acks,
    seconds: Number(elapsed.toFixed(3)),
    rate: Number((acks / elapsed).toFixed(1)),
    acksTotal,
    inflight,
    connections,
    agentCpuSeconds,
    agentCpuFraction: agentCpuSeconds === null ? null : Number((agentCpuSeconds / elapsed).toFixed(3)),
    clientCpuFraction: Number(((cpu.user + cpu.system) / 1e6 / elapsed).toFixed(3)),
    sampleAck: (sample ?? []).map((a) => ({ type: a.type, scope: a.scope, name: a.name, value: show(a.value) })),
    error: failure ?? null,
  };
  process.stdout.write(`${JSON.stringify(result)}\n`);
  process.exit(failure === undefined ? 0 : 1);
}

main().catch((err: unknown) => {
  process.stdout.write(`${JSON.stringify({ error: (err as Error).message })}\n`);
  process.exit(1);
});
