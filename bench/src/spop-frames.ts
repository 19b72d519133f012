// SPOP (SPOE protocol 2.0) frames for the agent benchmark: HAProxy's side of the conversation.
// Built on the agent's test support codec (agent/src/spop/testing: the encoders of HAProxy's frames
// and the decoders of the agent's, which the agent itself never uses), so there is one codec,
// type-checked with the agent's. Format: /usr/share/doc/haproxy/SPOE.txt.gz.

import {
  ByteReader,
  encodeHaproxyHello,
  encodeMessages,
  encodeStartupMessage,
  encodeVarint,
  FRAME_FLAG,
  FRAME_TYPE,
  readActions,
  readFrameHeader,
  readKvList,
  SCOPE_CODE,
  type TypedValue,
} from '../../agent/src/spop/testing/index.js';

export const FRAME = FRAME_TYPE;

export const FLAG_FIN = FRAME_FLAG.FIN;

/** HAProxy's varint (the "peers" encoding). */
export function varint(n: number): Buffer {
  return encodeVarint(n);
}

export type Typed =
  | { t: 'string'; v: string }
  | { t: 'binary'; v: Buffer }
  | { t: 'int32'; v: number }
  | { t: 'uint32'; v: number }
  | { t: 'ipv4'; v: string };

function typedValue(d: Typed): TypedValue {
  return d.t === 'binary' ? { type: 'binary', value: d.v } : d.t === 'int32' || d.t === 'uint32' ? { type: d.t, value: d.v } : { type: d.t, value: d.v };
}

export function haproxyHello(maxFrameSize: number, engineId: string): Buffer {
  return encodeHaproxyHello({ type: 'haproxy-hello', supportedVersions: ['2.0'], maxFrameSize, capabilities: ['pipelining', 'async'], healthcheck: false, engineId });
}

/** NOTIFY payload: one message with its arguments. */
export function notifyPayload(message: string, args: ReadonlyArray<readonly [string, Typed]>): Buffer {
  return encodeMessages([{ name: message, args: args.map(([name, value]) => ({ name, value: typedValue(value) })) }]);
}

/** The StartupMessage a PostgreSQL 3.0 client sends. */
export function startupPacket(params: Readonly<Record<string, string>>): Buffer {
  return encodeStartupMessage(params);
}

export interface ParsedFrame {
  readonly type: number;
  readonly flags: number;
  readonly streamId: number;
  readonly frameId: number;
  readonly payload: Buffer;
}

/** Parses one frame body (without the length prefix): the metadata only, the payload left as bytes. */
export function parseFrame(body: Buffer): ParsedFrame {
  const r = new ByteReader(body);
  const h = readFrameHeader(r);
  return { type: h.frameType, flags: h.flags, streamId: h.streamId, frameId: h.frameId, payload: body.subarray(r.pos) };
}

export type Value = string | number | boolean | null | Buffer;

function valueOf(v: TypedValue): Value {
  switch (v.type) {
    case 'null':
      return null;
    case 'int64':
    case 'uint64':
      return Number(v.value);
    case 'binary':
      return Buffer.from(v.value);
    default:
      return v.value;
  }
}

/** A HELLO or DISCONNECT payload as name -> value. */
export function parseKv(b: Buffer): Map<string, Value> {
  const out = new Map<string, Value>();
  readKvList(new ByteReader(b), (name, value) => out.set(name, valueOf(value)));
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
  return readActions(new ByteReader(b)).map((a) => ({
    type: a.type === 'set-var' ? 1 : 2,
    scope: SCOPE_CODE[a.scope],
    name: a.name,
    value: a.type === 'set-var' ? valueOf(a.value) : null,
  }));
}
