// KV-LIST payloads of HELLO and DISCONNECT frames (SPOE.txt 3.2.4 - 3.2.9): <NAME:string><TYPED-DATA>
// repeated to the end of the frame. Shared by the decoders of both directions.

import type { ByteReader } from './byte-reader.js';
import { KV_KEY, STATUS, UINT32_MAX } from './constants.js';
import { SpopError, invalid } from './errors.js';
import { readTypedData, type TypedValue } from './typed-data.js';

/** Splits a comma-separated list, ignoring spaces (SPOE.txt: "Spaces must be ignored, if any"). */
export function splitCommaList(s: string): string[] {
  const out: string[] = [];
  for (const item of s.split(',')) {
    const t = item.replace(/\s+/g, '');
    if (t.length > 0) out.push(t);
  }
  return out;
}

export function expectString(v: TypedValue, key: string, at: number): string {
  if (v.type !== 'string') throw invalid(`"${key}" at offset ${at} must be a STRING, got ${v.type}`, at);
  return v.value;
}

/** Integer KV values: HAProxy accepts any of the four integer types here. */
export function expectUint(v: TypedValue, key: string, at: number): number {
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

export function expectBool(v: TypedValue, key: string, at: number): boolean {
  if (v.type !== 'bool') throw invalid(`"${key}" at offset ${at} must be a BOOLEAN, got ${v.type}`, at);
  return v.value;
}

/** Iterates a KV-LIST to the end of the body. Keys must be non-empty (as HAProxy requires). */
export function readKvList(r: ByteReader, onItem: (key: string, value: TypedValue, at: number) => void): void {
  while (!r.atEnd()) {
    const at = r.pos;
    const key = r.lengthPrefixedString('KV name');
    if (key.length === 0) throw invalid(`empty KV name at offset ${at}`, at);
    const valueAt = r.pos;
    onItem(key, readTypedData(r), valueAt);
  }
}

/** The payload of a HAPROXY-DISCONNECT or AGENT-DISCONNECT (`name` says which, for errors). */
export function readDisconnect(r: ByteReader, name: string): { statusCode: number; message: string } {
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

/** The items both HELLOs carry (SPOE.txt 3.2.4, 3.2.5), as sent: lists not yet split. */
export interface HelloItems {
  readonly version: string;
  readonly maxFrameSize: number;
  readonly capabilities: string;
}

/**
 * The payload of a HAPROXY-HELLO or AGENT-HELLO (`name` says which, for errors): the version item
 * (named `versionKey`: "supported-versions" or "version"), "max-frame-size" and "capabilities", each
 * required with its own status; `onOther` sees every other item.
 */
export function readHello(
  r: ByteReader,
  name: string,
  versionKey: string,
  onOther: (key: string, value: TypedValue, at: number) => void = () => {},
): HelloItems {
  let version: string | undefined;
  let maxFrameSize: number | undefined;
  let capabilities: string | undefined;
  readKvList(r, (key, v, at) => {
    switch (key) {
      case versionKey:
        version = expectString(v, key, at);
        break;
      case KV_KEY.MAX_FRAME_SIZE:
        maxFrameSize = expectUint(v, key, at);
        break;
      case KV_KEY.CAPABILITIES:
        capabilities = expectString(v, key, at);
        break;
      default:
        onOther(key, v, at); // the frame's own items; unknown ones are ignored
    }
  });
  if (version === undefined) throw new SpopError(STATUS.NO_VERSION, `${name} lacks "${versionKey}"`);
  if (maxFrameSize === undefined) throw new SpopError(STATUS.NO_FRAME_SIZE, `${name} lacks "max-frame-size"`);
  if (capabilities === undefined) throw new SpopError(STATUS.NO_CAPABILITIES, `${name} lacks "capabilities"`);
  return { version, maxFrameSize, capabilities };
}
