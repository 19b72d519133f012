// SPOP frames (SPOE.txt 3.2): <FRAME-TYPE:1 byte> <FLAGS:4 bytes BE> <STREAM-ID:varint> <FRAME-ID:varint> <PAYLOAD>
//
// decodeFrame() takes a frame body WITHOUT the 4-byte length prefix (what FrameReader yields);
// encodeFrame() returns the complete wire bytes WITH the prefix.
//
// Ids: STREAM-ID and FRAME-ID are JavaScript numbers. HAProxy 2.6 generates both as 32-bit unsigned
// ints, so real ids are far below 2^53; the decoder rejects ids above Number.MAX_SAFE_INTEGER with
// SpopError(INVALID) rather than lose precision, and the encoder accepts safe non-negative integers.
//
// Fragmentation is not supported: a frame without FIN, or an UNSET (continuation) frame, is rejected
// with FRAGMENTATION_NOT_SUPPORTED (the agent never announces the "fragmentation" capability).

import { ByteReader } from './byte-reader.js';
import { ByteWriter } from './byte-writer.js';
import {
  ACTION_NB_ARGS,
  ACTION_TYPE,
  FRAME_FLAG,
  FRAME_LENGTH_PREFIX_SIZE,
  FRAME_TYPE,
  KV_KEY,
  MAX_DISCONNECT_MESSAGE_BYTES,
  MAX_NB_ARGS,
  MIN_FRAME_BODY_SIZE,
  STATUS,
  UINT32_MAX,
  VAR_SCOPE,
  statusMessage,
} from './constants.js';
import { SpopError, invalid } from './errors.js';
import { prepareTypedData, readTypedData, writeTypedData, type PreparedValue, type TypedValue } from './typed-data.js';
import { varintSize } from './varint.js';

// ---------------------------------------------------------------------------------------------
// Model

export type VarScope = 'process' | 'session' | 'transaction' | 'request' | 'response';

export interface SpoeArg {
  /** Argument name; may be empty (HAProxy allows unnamed args). */
  name: string;
  value: TypedValue;
}

export interface SpoeMessage {
  name: string;
  args: SpoeArg[];
}

export type Action =
  | { type: 'set-var'; scope: VarScope; name: string; value: TypedValue }
  | { type: 'unset-var'; scope: VarScope; name: string };

export interface HaproxyHelloFrame {
  type: 'haproxy-hello';
  /** "supported-versions", split on commas, spaces removed, empty items dropped. */
  supportedVersions: string[];
  maxFrameSize: number;
  /** "capabilities", split on commas, spaces removed, empty items dropped. */
  capabilities: string[];
  /** "healthcheck" (false when absent). */
  healthcheck: boolean;
  engineId?: string;
}

export interface AgentHelloFrame {
  type: 'agent-hello';
  version: string;
  maxFrameSize: number;
  capabilities: string[];
}

export interface HaproxyDisconnectFrame {
  type: 'haproxy-disconnect';
  statusCode: number;
  message: string;
}

export interface AgentDisconnectFrame {
  type: 'agent-disconnect';
  statusCode: number;
  message: string;
}

export interface NotifyFrame {
  type: 'notify';
  streamId: number;
  frameId: number;
  /** Raw METADATA flags (FIN is always set on a decoded frame; ABORT may be). */
  flags: number;
  messages: SpoeMessage[];
}

export interface AckFrame {
  type: 'ack';
  streamId: number;
  frameId: number;
  /** Raw METADATA flags; defaults to FIN when encoding. */
  flags?: number;
  actions: Action[];
}

export type Frame = HaproxyHelloFrame | AgentHelloFrame | HaproxyDisconnectFrame | AgentDisconnectFrame | NotifyFrame | AckFrame;
export type FrameKind = Frame['type'];

const SCOPE_BY_CODE: readonly VarScope[] = ['process', 'session', 'transaction', 'request', 'response'];
const SCOPE_CODE: Readonly<Record<VarScope, number>> = {
  process: VAR_SCOPE.PROCESS,
  session: VAR_SCOPE.SESSION,
  transaction: VAR_SCOPE.TRANSACTION,
  request: VAR_SCOPE.REQUEST,
  response: VAR_SCOPE.RESPONSE,
};

const FRAME_TYPE_CODE: Readonly<Record<FrameKind, number>> = {
  'haproxy-hello': FRAME_TYPE.HAPROXY_HELLO,
  'haproxy-disconnect': FRAME_TYPE.HAPROXY_DISCONNECT,
  notify: FRAME_TYPE.NOTIFY,
  'agent-hello': FRAME_TYPE.AGENT_HELLO,
  'agent-disconnect': FRAME_TYPE.AGENT_DISCONNECT,
  ack: FRAME_TYPE.ACK,
};

/** Builds an AGENT-DISCONNECT with the spec's default message for the status. */
export function agentDisconnect(statusCode: number, message: string = statusMessage(statusCode)): AgentDisconnectFrame {
  return { type: 'agent-disconnect', statusCode, message };
}

/** Splits a comma-separated list, ignoring spaces (SPOE.txt: "Spaces must be ignored, if any"). */
export function splitCommaList(s: string): string[] {
  const out: string[] = [];
  for (const item of s.split(',')) {
    const t = item.replace(/\s+/g, '');
    if (t.length > 0) out.push(t);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Decoding

function expectString(v: TypedValue, key: string, at: number): string {
  if (v.type !== 'string') throw invalid(`"${key}" at offset ${at} must be a STRING, got ${v.type}`, at);
  return v.value;
}

/** Integer KV values: HAProxy accepts any of the four integer types here. */
function expectUint(v: TypedValue, key: string, at: number): number {
  switch (v.type) {
    case 'int32':
    case 'uint32':
      if (v.value >= 0) return v.value;
      break;
    case 'int64':
    case 'uint64':
      if (v.value >= 0n && v.value <= BigInt(Number.MAX_SAFE_INTEGER)) return Number(v.value);
      break;
    default:
      throw invalid(`"${key}" at offset ${at} must be an integer, got ${v.type}`, at);
  }
  throw invalid(`"${key}" at offset ${at} is out of range`, at);
}

function expectBool(v: TypedValue, key: string, at: number): boolean {
  if (v.type !== 'bool') throw invalid(`"${key}" at offset ${at} must be a BOOLEAN, got ${v.type}`, at);
  return v.value;
}

/** Iterates a KV-LIST to the end of the body. Keys must be non-empty (as HAProxy requires). */
function readKvList(r: ByteReader, onItem: (key: string, value: TypedValue, at: number) => void): void {
  while (!r.atEnd()) {
    const at = r.pos;
    const key = r.lengthPrefixedString('KV name');
    if (key.length === 0) throw invalid(`empty KV name at offset ${at}`, at);
    const valueAt = r.pos;
    onItem(key, readTypedData(r), valueAt);
  }
}

function decodeHaproxyHello(r: ByteReader): HaproxyHelloFrame {
  let versions: string | undefined;
  let maxFrameSize: number | undefined;
  let capabilities: string | undefined;
  let healthcheck = false;
  let engineId: string | undefined;
  readKvList(r, (key, v, at) => {
    switch (key) {
      case KV_KEY.SUPPORTED_VERSIONS:
        versions = expectString(v, key, at);
        break;
      case KV_KEY.MAX_FRAME_SIZE:
        maxFrameSize = expectUint(v, key, at);
        break;
      case KV_KEY.CAPABILITIES:
        capabilities = expectString(v, key, at);
        break;
      case KV_KEY.HEALTHCHECK:
        healthcheck = expectBool(v, key, at);
        break;
      case KV_KEY.ENGINE_ID:
        engineId = expectString(v, key, at);
        break;
      default:
        break; // unknown items are silently ignored
    }
  });
  if (versions === undefined) throw new SpopError(STATUS.NO_VERSION, 'HAPROXY-HELLO lacks "supported-versions"');
  if (maxFrameSize === undefined) throw new SpopError(STATUS.NO_FRAME_SIZE, 'HAPROXY-HELLO lacks "max-frame-size"');
  if (capabilities === undefined) throw new SpopError(STATUS.NO_CAPABILITIES, 'HAPROXY-HELLO lacks "capabilities"');
  const frame: HaproxyHelloFrame = {
    type: 'haproxy-hello',
    supportedVersions: splitCommaList(versions),
    maxFrameSize,
    capabilities: splitCommaList(capabilities),
    healthcheck,
  };
  if (engineId !== undefined) frame.engineId = engineId;
  return frame;
}

function decodeAgentHello(r: ByteReader): AgentHelloFrame {
  let version: string | undefined;
  let maxFrameSize: number | undefined;
  let capabilities: string | undefined;
  readKvList(r, (key, v, at) => {
    switch (key) {
      case KV_KEY.VERSION:
        version = expectString(v, key, at).replace(/\s+/g, '');
        break;
      case KV_KEY.MAX_FRAME_SIZE:
        maxFrameSize = expectUint(v, key, at);
        break;
      case KV_KEY.CAPABILITIES:
        capabilities = expectString(v, key, at);
        break;
      default:
        break;
    }
  });
  if (version === undefined) throw new SpopError(STATUS.NO_VERSION, 'AGENT-HELLO lacks "version"');
  if (maxFrameSize === undefined) throw new SpopError(STATUS.NO_FRAME_SIZE, 'AGENT-HELLO lacks "max-frame-size"');
  if (capabilities === undefined) throw new SpopError(STATUS.NO_CAPABILITIES, 'AGENT-HELLO lacks "capabilities"');
  return { type: 'agent-hello', version, maxFrameSize, capabilities: splitCommaList(capabilities) };
}

function decodeDisconnect(r: ByteReader, name: string): { statusCode: number; message: string } {
  let statusCode: number | undefined;
  let message: string | undefined;
  readKvList(r, (key, v, at) => {
    switch (key) {
      case KV_KEY.STATUS_CODE: {
        const code = expectUint(v, key, at);
        if (code > UINT32_MAX) throw invalid(`"${key}" at offset ${at} does not fit 32 bits`, at);
        statusCode = code;
        break;
      }
      case KV_KEY.MESSAGE:
        message = expectString(v, key, at);
        break;
      default:
        break;
    }
  });
  if (statusCode === undefined) throw invalid(`${name} lacks "status-code"`);
  if (message === undefined) throw invalid(`${name} lacks "message"`);
  return { statusCode, message };
}

function decodeMessages(r: ByteReader): SpoeMessage[] {
  const messages: SpoeMessage[] = [];
  while (!r.atEnd()) {
    const name = r.lengthPrefixedString('message name');
    const nbArgs = r.u8('message NB-ARGS');
    const args: SpoeArg[] = new Array<SpoeArg>(nbArgs);
    for (let i = 0; i < nbArgs; i++) {
      const argName = r.lengthPrefixedString('argument name');
      args[i] = { name: argName, value: readTypedData(r) };
    }
    messages.push({ name, args });
  }
  return messages;
}

function readScope(r: ByteReader): VarScope {
  const at = r.pos;
  const code = r.u8('VAR-SCOPE');
  const scope = SCOPE_BY_CODE[code];
  if (scope === undefined) throw invalid(`unknown VAR-SCOPE ${code} at offset ${at}`, at);
  return scope;
}

function decodeActions(r: ByteReader): Action[] {
  const actions: Action[] = [];
  while (!r.atEnd()) {
    const at = r.pos;
    const actionType = r.u8('ACTION-TYPE');
    const nbArgs = r.u8('action NB-ARGS');
    if (actionType === ACTION_TYPE.SET_VAR) {
      if (nbArgs !== ACTION_NB_ARGS.SET_VAR) throw invalid(`set-var at offset ${at} has ${nbArgs} args, expected ${ACTION_NB_ARGS.SET_VAR}`, at);
      const scope = readScope(r);
      const name = r.lengthPrefixedString('variable name');
      actions.push({ type: 'set-var', scope, name, value: readTypedData(r) });
    } else if (actionType === ACTION_TYPE.UNSET_VAR) {
      if (nbArgs !== ACTION_NB_ARGS.UNSET_VAR) throw invalid(`unset-var at offset ${at} has ${nbArgs} args, expected ${ACTION_NB_ARGS.UNSET_VAR}`, at);
      const scope = readScope(r);
      actions.push({ type: 'unset-var', scope, name: r.lengthPrefixedString('variable name') });
    } else {
      throw invalid(`unknown ACTION-TYPE ${actionType} at offset ${at}`, at);
    }
  }
  return actions;
}

/**
 * Decodes one frame body (the bytes after the 4-byte length). Throws SpopError on any malformation:
 * INVALID for truncation/bad types/unknown frame types (with `frameType` set), FRAGMENTATION_NOT_SUPPORTED
 * for UNSET frames or a missing FIN, NO_VERSION / NO_FRAME_SIZE / NO_CAPABILITIES for incomplete HELLOs.
 */
export function decodeFrame(body: Buffer): Frame {
  if (body.length < MIN_FRAME_BODY_SIZE) {
    throw invalid(`frame of ${body.length} byte(s) is shorter than the ${MIN_FRAME_BODY_SIZE}-byte minimum (type + metadata)`, 0);
  }
  const r = new ByteReader(body);
  const frameType = r.u8('FRAME-TYPE');
  switch (frameType) {
    case FRAME_TYPE.HAPROXY_HELLO:
    case FRAME_TYPE.HAPROXY_DISCONNECT:
    case FRAME_TYPE.NOTIFY:
    case FRAME_TYPE.AGENT_HELLO:
    case FRAME_TYPE.AGENT_DISCONNECT:
    case FRAME_TYPE.ACK:
      break;
    case FRAME_TYPE.UNSET:
      throw new SpopError(STATUS.FRAGMENTATION_NOT_SUPPORTED, 'received an UNSET (continuation fragment) frame: fragmentation is not supported', { offset: 0, frameType });
    default:
      throw new SpopError(STATUS.INVALID, `unknown frame type ${frameType}`, { offset: 0, frameType });
  }
  const flags = r.u32be('FLAGS');
  if ((flags & FRAME_FLAG.FIN) === 0) {
    throw new SpopError(STATUS.FRAGMENTATION_NOT_SUPPORTED, `frame type ${frameType} without FIN flag (fragmented payload): fragmentation is not supported`, { offset: 1, frameType });
  }
  const idsAt = r.pos;
  const streamId = r.varint('STREAM-ID');
  const frameId = r.varint('FRAME-ID');

  switch (frameType) {
    case FRAME_TYPE.NOTIFY:
      return { type: 'notify', streamId, frameId, flags, messages: decodeMessages(r) };
    case FRAME_TYPE.ACK:
      return { type: 'ack', streamId, frameId, flags, actions: decodeActions(r) };
    default:
      break;
  }
  // HELLO and DISCONNECT frames: "STREAM-ID and FRAME-ID are must be set 0".
  if (streamId !== 0 || frameId !== 0) {
    throw invalid(`frame type ${frameType} must have STREAM-ID and FRAME-ID 0, got ${streamId}/${frameId}`, idsAt);
  }
  switch (frameType) {
    case FRAME_TYPE.HAPROXY_HELLO:
      return decodeHaproxyHello(r);
    case FRAME_TYPE.AGENT_HELLO:
      return decodeAgentHello(r);
    case FRAME_TYPE.HAPROXY_DISCONNECT:
      return { type: 'haproxy-disconnect', ...decodeDisconnect(r, 'HAPROXY-DISCONNECT') };
    default:
      return { type: 'agent-disconnect', ...decodeDisconnect(r, 'AGENT-DISCONNECT') };
  }
}

// ---------------------------------------------------------------------------------------------
// Encoding: every payload is "prepared" (validated, sized) first, then written into one buffer.

interface PreparedString {
  readonly s: string;
  readonly len: number;
}

function prepString(s: string, what: string): PreparedString {
  if (typeof s !== 'string') throw invalid(`${what} must be a string, got ${typeof s}`);
  return { s, len: Buffer.byteLength(s, 'utf8') };
}

function sizeOfString(p: PreparedString): number {
  return varintSize(p.len) + p.len;
}

type Item = { kind: 'str'; p: PreparedString } | { kind: 'val'; p: PreparedValue } | { kind: 'u8'; v: number };

/** A list of prepared items; the frame payload is their concatenation. */
class Payload {
  readonly items: Item[] = [];
  size = 0;
  str(s: string, what: string): void {
    const p = prepString(s, what);
    this.items.push({ kind: 'str', p });
    this.size += sizeOfString(p);
  }
  val(v: TypedValue): void {
    const p = prepareTypedData(v);
    this.items.push({ kind: 'val', p });
    this.size += p.size;
  }
  u8(v: number): void {
    this.items.push({ kind: 'u8', v });
    this.size += 1;
  }
  kv(key: string, v: TypedValue): void {
    this.str(key, 'KV name');
    this.val(v);
  }
  write(w: ByteWriter): void {
    for (const it of this.items) {
      if (it.kind === 'str') w.lengthPrefixedString(it.p.s, it.p.len);
      else if (it.kind === 'val') writeTypedData(w, it.p);
      else w.u8(it.v);
    }
  }
}

function checkId(id: number, what: string): void {
  if (typeof id !== 'number' || !Number.isSafeInteger(id) || id < 0) {
    throw invalid(`${what} must be a non-negative safe integer, got ${String(id)}`);
  }
}

function checkUint32(v: number, what: string): void {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > UINT32_MAX) {
    throw invalid(`${what} must be an integer within 0..${UINT32_MAX}, got ${String(v)}`);
  }
}

function checkFlags(flags: number): void {
  checkUint32(flags, 'FLAGS');
  if ((flags & FRAME_FLAG.FIN) === 0) throw invalid('FLAGS must include FIN: fragmentation is not supported');
}

function checkNbArgs(n: number, what: string): void {
  if (n > MAX_NB_ARGS) throw invalid(`${what} has ${n} arguments, NB-ARGS allows at most ${MAX_NB_ARGS}`);
}

function checkCommaItems(items: readonly string[], what: string): string {
  if (!Array.isArray(items)) throw invalid(`${what} must be an array of strings`);
  for (const it of items) {
    if (typeof it !== 'string' || it.length === 0 || it.includes(',')) {
      throw invalid(`${what} items must be non-empty strings without commas, got ${JSON.stringify(it)}`);
    }
  }
  return items.join(',');
}

function buildPayload(frame: Frame): Payload {
  const p = new Payload();
  switch (frame.type) {
    case 'haproxy-hello':
      checkUint32(frame.maxFrameSize, 'max-frame-size');
      p.kv(KV_KEY.SUPPORTED_VERSIONS, { type: 'string', value: checkCommaItems(frame.supportedVersions, 'supported-versions') });
      p.kv(KV_KEY.MAX_FRAME_SIZE, { type: 'uint32', value: frame.maxFrameSize });
      p.kv(KV_KEY.CAPABILITIES, { type: 'string', value: checkCommaItems(frame.capabilities, 'capabilities') });
      if (frame.healthcheck) p.kv(KV_KEY.HEALTHCHECK, { type: 'bool', value: true });
      if (frame.engineId !== undefined) p.kv(KV_KEY.ENGINE_ID, { type: 'string', value: frame.engineId });
      return p;
    case 'agent-hello':
      checkUint32(frame.maxFrameSize, 'max-frame-size');
      p.kv(KV_KEY.VERSION, { type: 'string', value: frame.version });
      p.kv(KV_KEY.MAX_FRAME_SIZE, { type: 'uint32', value: frame.maxFrameSize });
      p.kv(KV_KEY.CAPABILITIES, { type: 'string', value: checkCommaItems(frame.capabilities, 'capabilities') });
      return p;
    case 'haproxy-disconnect':
    case 'agent-disconnect': {
      checkUint32(frame.statusCode, 'status-code');
      if (typeof frame.message !== 'string') throw invalid('DISCONNECT message must be a string');
      const len = Buffer.byteLength(frame.message, 'utf8');
      if (len > MAX_DISCONNECT_MESSAGE_BYTES) {
        throw invalid(`DISCONNECT message is ${len} bytes; HAProxy accepts at most ${MAX_DISCONNECT_MESSAGE_BYTES}`);
      }
      p.kv(KV_KEY.STATUS_CODE, { type: 'uint32', value: frame.statusCode });
      p.kv(KV_KEY.MESSAGE, { type: 'string', value: frame.message });
      return p;
    }
    case 'notify':
      for (const m of frame.messages) {
        checkNbArgs(m.args.length, `message ${JSON.stringify(m.name)}`);
        p.str(m.name, 'message name');
        p.u8(m.args.length);
        for (const a of m.args) {
          p.str(a.name, 'argument name');
          p.val(a.value);
        }
      }
      return p;
    case 'ack':
      for (const a of frame.actions) {
        const scope = SCOPE_CODE[a.scope];
        if (scope === undefined) throw invalid(`unknown variable scope ${JSON.stringify(a.scope)}`);
        if (a.type === 'set-var') {
          p.u8(ACTION_TYPE.SET_VAR);
          p.u8(ACTION_NB_ARGS.SET_VAR);
          p.u8(scope);
          p.str(a.name, 'variable name');
          p.val(a.value);
        } else if (a.type === 'unset-var') {
          p.u8(ACTION_TYPE.UNSET_VAR);
          p.u8(ACTION_NB_ARGS.UNSET_VAR);
          p.u8(scope);
          p.str(a.name, 'variable name');
        } else {
          const unknown: { type?: unknown } = a;
          throw invalid(`unknown action type ${JSON.stringify(unknown.type)}`);
        }
      }
      return p;
    default: {
      const unknown: { type?: unknown } = frame;
      throw invalid(`unknown frame type ${JSON.stringify(unknown.type)}`);
    }
  }
}

export interface EncodeOptions {
  /** When set, a frame body larger than this throws SpopError(TOO_BIG). */
  maxFrameSize?: number;
}

/** Encodes a frame to wire bytes, 4-byte length prefix included. */
export function encodeFrame(frame: Frame, options: EncodeOptions = {}): Buffer {
  const code = FRAME_TYPE_CODE[frame.type];
  if (code === undefined) {
    const unknown: { type?: unknown } = frame;
    throw invalid(`unknown frame type ${JSON.stringify(unknown.type)}`);
  }
  let flags: number = FRAME_FLAG.FIN;
  let streamId = 0;
  let frameId = 0;
  if (frame.type === 'notify' || frame.type === 'ack') {
    checkId(frame.streamId, 'STREAM-ID');
    checkId(frame.frameId, 'FRAME-ID');
    streamId = frame.streamId;
    frameId = frame.frameId;
    if (frame.flags !== undefined) {
      checkFlags(frame.flags);
      flags = frame.flags;
    }
  }
  const payload = buildPayload(frame);
  const bodySize = 1 + 4 + varintSize(streamId) + varintSize(frameId) + payload.size;
  if (options.maxFrameSize !== undefined && bodySize > options.maxFrameSize) {
    throw new SpopError(STATUS.TOO_BIG, `encoded frame is ${bodySize} bytes, max-frame-size is ${options.maxFrameSize}`);
  }
  if (bodySize > UINT32_MAX) throw new SpopError(STATUS.TOO_BIG, `encoded frame is ${bodySize} bytes, over the 32-bit length limit`);
  const w = new ByteWriter(FRAME_LENGTH_PREFIX_SIZE + bodySize);
  w.u32be(bodySize);
  w.u8(code);
  w.u32be(flags);
  w.varint(streamId);
  w.varint(frameId);
  payload.write(w);
  return w.finish();
}
