// Encoders for the frontend side of the preamble: what a client sends first. The agent never
// sends these; they exist so tests, benchmarks and tools build real packets from named parts
// instead of hand-counted bytes, and so decodePreamble can be checked by round trip.

import { BufferWriter } from './buffer-writer.js';
import {
  CANCEL_REQUEST_CODE,
  GSSENC_REQUEST_CODE,
  NUL,
  PROTOCOL_3_0,
  SSL_REQUEST_CODE,
} from './constants.js';
import type { ProtocolVersion } from './preamble-types.js';

/** (major << 16) | minor, as sent on the wire. */
export function protocolCode(version: ProtocolVersion): number {
  return ((version.major & 0xffff) << 16) | (version.minor & 0xffff);
}

/**
 * StartupMessage: Int32 length, Int32 protocol, name\0value\0 ... \0.
 * Names and values are written as given (UTF-8); keeping NUL out of them is the caller's business,
 * which is what lets tests build malformed packets with it.
 */
export function encodeStartupMessage(
  params: Iterable<readonly [string, string]> | Readonly<Record<string, string>>,
  protocol: number | ProtocolVersion = PROTOCOL_3_0,
): Buffer {
  const writer = new BufferWriter();
  writer.addUInt32(typeof protocol === 'number' ? protocol : protocolCode(protocol));
  const entries = Symbol.iterator in params ? params : Object.entries(params);
  for (const [name, value] of entries) writer.addCString(name).addCString(value);
  return writer.addByte(NUL).flush();
}

/** SSLRequest: 00 00 00 08 04 d2 16 2f. */
export function encodeSslRequest(): Buffer {
  return new BufferWriter().addUInt32(SSL_REQUEST_CODE).flush();
}

/** GSSENCRequest: 00 00 00 08 04 d2 16 30. */
export function encodeGssEncRequest(): Buffer {
  return new BufferWriter().addUInt32(GSSENC_REQUEST_CODE).flush();
}

/** CancelRequest: Int32 length, 04 d2 16 2e, Int32 process id, secret key (4 bytes in 3.0, up to 256 in 3.2). */
export function encodeCancelRequest(processId: number, secretKey: Uint8Array): Buffer {
  return new BufferWriter().addUInt32(CANCEL_REQUEST_CODE).addInt32(processId).addBytes(secretKey).flush();
}
