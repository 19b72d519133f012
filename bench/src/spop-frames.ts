// Hand-written SPOP (SPOE protocol 2.0) frames for the agent benchmark. Deliberately independent of
// agent/src/spop so the benchmark measures the agent through the wire format HAProxy uses, and
// keeps building while the agent's own codec changes. Format: /usr/share/doc/haproxy/SPOE.txt.gz.

export const FRAME = {
  HAPROXY_HELLO: 1,
  HAPROXY_DISCONNECT: 2,
  NOTIFY: 3,
  AGENT_HELLO: 101,
  AGENT_DISCONNECT: 102,
  ACK: 103,
} as const;

export const TYPE = { NULL: 0, BOOL: 1, INT32: 2, UINT32: 3, INT64: 4, UINT64: 5, IPV4: 6, IPV6: 7, STRING: 8, BINARY: 9 } as const;

export const FLAG_FIN = 1;

/** HAProxy's varint (the "peers" encoding). */
export function varint(n: number): Buffer {
  if (!Number.isInteger(n) || n < 0) throw new RangeError(`varint: ${n}`);
  if (n < 240) return Buffer.of(n);
  const out: number[] = [(n | 240) & 0xff];
  let i = Math.floor((n - 240) / 16);
  while (i >= 128) {
    out.push((i | 128) & 0xff);
    i = Math.floor((i - 128) / 128);
  }
  out.push(i);
  return Buffer.from(out);
}

/** Decodes a varint at `off`; returns [value, next offset]. */
export function readVarint(b: Buffer, off: number): [number, number] {
  let p = off;
  const first = b[p++];
  if (first === undefined) throw new RangeError('varint: truncated');
  let v = first;
  if (v >= 240) {
    let shift = 4;
    for (;;) {
      const c = b[p++];
      if (c === undefined) throw new RangeError('varint: truncated');
      v += c * 2 ** shift;
      shift += 7;
      if (c < 128) break;
    }
  }
  return [v, p];
}

export function str(s: string | Buffer): Buffer {
  const b = typeof s === 'string' ? Buffer.from(s, 'utf8') : s;
  return Buffer.concat([varint(b.length), b]);
}

export type Typed =
  | { t: 'string'; v: string }
  | { t: 'binary'; v: Buffer }
  | { t: 'int32'; v: number }
  | { t: 'uint32'; v: number }
  | { t: 'ipv4'; v: string };

export function typed(d: Typed): Buffer {
  switch (d.t) {
    case 'string':
      return Buffer.concat([Buffer.of(TYPE.STRING), str(d.v)]);
    case 'binary':
      return Buffer.concat([Buffer.of(TYPE.BINARY), str(d.v)]);
    case 'int32':
      if (d.v < 0) throw new RangeError('int32: negative values are not needed here');
      return Buffer.concat([Buffer.of(TYPE.INT32), varint(d.v)]);
    case 'uint32':
      return Buffer.concat([Buffer.of(TYPE.UINT32), varint(d.v)]);
    case 'ipv4':
      return Buffer.concat([Buffer.of(TYPE.IPV4), Buffer.from(d.v.split('.').map(Number))]);
  }
}

export function kv(entries: ReadonlyArray<readonly [string, Typed]>): Buffer {
  return Buffer.concat(entries.flatMap(([name, value]) => [str(name), typed(value)]));
}

/** A whole frame with its 4-byte length prefix. */
export function frame(type: number, streamId: number, frameId: number, payload: Buffer, flags = FLAG_FIN): Buffer {
  const meta = Buffer.alloc(5);
  meta.writeUInt8(type, 0);
  meta.writeUInt32BE(flags, 1);
  const body = Buffer.concat([meta, varint(streamId), varint(frameId), payload]);
  const len = Buffer.alloc(4);
  len.writeUInt32BE(body.length, 0);
  return Buffer.concat([len, body]);
}

export function haproxyHello(maxFrameSize: number, engineId: string): Buffer {
  return frame(
    FRAME.HAPROXY_HELLO,
    0,
    0,
    kv([
      ['supported-versions', { t: 'string', v: '2.0' }],
      ['max-frame-size', { t: 'uint32', v: maxFrameSize }],
      ['capabilities', { t: 'string', v: 'pipelining,async' }],
      ['engine-id', { t: 'string', v: engineId }],
    ]),
  );
}

/** NOTIFY payload: one message with its arguments. */
export function notifyPayload(message: string, args: ReadonlyArray<readonly [string, Typed]>): Buffer {
  return Buffer.concat([str(message), Buffer.of(args.length), kv(args)]);
}

/** The StartupMessage a PostgreSQL 3.0 client sends. */
export function startupPacket(params: Readonly<Record<string, string>>): Buffer {
  const body = Buffer.concat([...Object.entries(params).flatMap(([k, v]) => [Buffer.from(`${k}\0${v}\0`, 'utf8')]), Buffer.of(0)]);
  const head = Buffer.alloc(8);
  head.writeUInt32BE(8 + body.length, 0);
  head.writeUInt32BE(0x00030000, 4);
  return Buffer.concat([head, body]);
}

export interface ParsedFrame {
  readonly type: number;
  readonly flags: number;
  readonly streamId: number;
  readonly frameId: number;
  readonly payload: Buffer;
}

/** Parses one frame body (without the length prefix). */
export function parseFrame(body: Buffer): ParsedFrame {
  if (body.length < 7) throw new RangeError('frame: too short');
  const type = body.readUInt8(0);
  const flags = body.readUInt32BE(1);
  const [streamId, p1] = readVarint(body, 5);
  const [frameId, p2] = readVarint(body, p1);
  return { type, flags, streamId, frameId, payload: body.subarray(p2) };
}

export type Value = string | number | boolean | null | Buffer;

function readTyped(b: Buffer, off: number): [Value, number] {
  const tb = b[off];
  if (tb === undefined) throw new RangeError('typed data: truncated');
  const t = tb & 0x0f;
  let p = off + 1;
  switch (t) {
    case TYPE.NULL:
      return [null, p];
    case TYPE.BOOL:
      return [(tb & 0x10) !== 0, p];
    case TYPE.INT32:
    case TYPE.UINT32:
    case TYPE.INT64:
    case TYPE.UINT64:
      return readVarint(b, p);
    case TYPE.IPV4:
      return [Array.from(b.subarray(p, p + 4)).join('.'), p + 4];
    case TYPE.IPV6:
      return [b.subarray(p, p + 16).toString('hex'), p + 16];
    case TYPE.STRING:
    case TYPE.BINARY: {
      const [len, q] = readVarint(b, p);
      p = q + len;
      const raw = b.subarray(q, p);
      return [t === TYPE.STRING ? raw.toString('utf8') : Buffer.from(raw), p];
    }
    default:
      throw new RangeError(`typed data: unknown type ${t}`);
  }
}

export function parseKv(b: Buffer): Map<string, Value> {
  const out = new Map<string, Value>();
  let p = 0;
  while (p < b.length) {
    const [nlen, q] = readVarint(b, p);
    const name = b.subarray(q, q + nlen).toString('utf8');
    const [value, r] = readTyped(b, q + nlen);
    out.set(name, value);
    p = r;
  }
  return out;
}

export interface Action {
  readonly type: number;
  readonly scope: number;
  readonly name: string;
  readonly value: Value;
}

/** ACK payload: SET-VAR (1, args scope, name, value) and UNSET-VAR (2, args scope, name). */
export function parseActions(b: Buffer): Action[] {
  const out: Action[] = [];
  let p = 0;
  while (p < b.length) {
    const type = b[p];
    const nbArgs = b[p + 1];
    const scope = b[p + 2];
    if (type === undefined || nbArgs === undefined || scope === undefined) throw new RangeError('action: truncated');
    p += 3;
    const [nlen, q] = readVarint(b, p);
    const name = b.subarray(q, q + nlen).toString('utf8');
    p = q + nlen;
    let value: Value = null;
    if (type === 1) [value, p] = readTyped(b, p);
    out.push({ type, scope, name, value });
  }
  return out;
}
