// Decodes the first packet a PostgreSQL client sends: exactly the bytes HAProxy buffered.
// Pure and total: any input, however short, long or hostile, gives a DecodedPreamble; nothing
// throws. Layout: Int32 length (counting itself), Int32 code, body.

import { BufferReader } from './buffer-reader.js';
import {
  CANCEL_KEY_MAX_BYTES,
  CANCEL_KEY_MIN_BYTES,
  CANCEL_KEY_OFFSET,
  CANCEL_REQUEST_CODE,
  GSSENC_REQUEST_CODE,
  MAX_STARTUP_PACKET,
  NEGOTIATION_REQUEST_LENGTH,
  NUL,
  PREAMBLE_HEADER_BYTES,
  PROTOCOL_MAJOR_3,
  REQUEST_CODE_MAJOR,
  SSL_REQUEST_CODE,
  TLS_HANDSHAKE_RECORD,
} from './constants.js';
import type {
  CancelPreamble,
  DecodedPreamble,
  InvalidPreamble,
  PreambleProblem,
  ProtocolVersion,
  StartupPreamble,
} from './preamble-types.js';

/** The parameter PostgreSQL requires in every StartupMessage. */
export const USER_PARAMETER = 'user';

/** Longest piece of client-supplied text quoted back in a problem message. */
const QUOTE_LIMIT = 64;

const strictUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

function invalid(problem: PreambleProblem, message: string): InvalidPreamble {
  return { kind: 'invalid', problem, message };
}

/** Client text made safe for a message or a log line: JSON-quoted, control characters escaped, capped. */
function quote(text: string): string {
  const chars = Array.from(text);
  const shown = chars.length > QUOTE_LIMIT ? `${chars.slice(0, QUOTE_LIMIT).join('')}...` : text;
  return JSON.stringify(shown);
}

function decodeUtf8(bytes: Uint8Array): string | undefined {
  try {
    return strictUtf8.decode(bytes);
  } catch {
    return undefined;
  }
}

/** Splits a 32-bit protocol/request code into its major (high 16 bits) and minor (low 16 bits). */
export function splitProtocolCode(code: number): ProtocolVersion {
  return { major: code >>> 16, minor: code & 0xffff };
}

export function decodePreamble(packet: Buffer): DecodedPreamble {
  try {
    return decode(packet);
  } catch (error) {
    // Unreachable by design (every read is bounds-checked); kept so the promise "never throws"
    // holds even against a bug, and says so instead of hiding it.
    const why = error instanceof Error ? error.message : String(error);
    return invalid('too-short', `first packet could not be decoded: ${why}`);
  }
}

function decode(packet: Buffer): DecodedPreamble {
  if (packet[0] === TLS_HANDSHAKE_RECORD) {
    return invalid(
      'unsupported-protocol',
      'client started TLS directly (sslnegotiation=direct); connect with sslnegotiation=postgres',
    );
  }
  const reader = new BufferReader(packet);
  const declared = reader.uint32();
  if (declared === undefined) {
    return invalid(
      'too-short',
      `first packet is ${packet.length} bytes; a PostgreSQL connection starts with at least ${PREAMBLE_HEADER_BYTES}`,
    );
  }
  if (declared > MAX_STARTUP_PACKET) {
    return invalid('too-long', `startup packet is ${declared} bytes; the limit is ${MAX_STARTUP_PACKET}`);
  }
  if (declared < PREAMBLE_HEADER_BYTES) {
    return invalid(
      'too-short',
      `first packet declares a length of ${declared} bytes; the smallest valid one is ${PREAMBLE_HEADER_BYTES}`,
    );
  }
  if (packet.length < declared) {
    return invalid(
      'too-short',
      `first packet declares ${declared} bytes but only ${packet.length} arrived; the client stopped mid-packet`,
    );
  }
  if (packet.length > declared) {
    return invalid(
      'length-mismatch',
      `first packet declares ${declared} bytes but ${packet.length} arrived; ` +
        'a client must wait for the server before sending more',
    );
  }

  const code = reader.uint32();
  if (code === undefined) {
    // declared >= 8 and packet.length === declared, so the code is there; stay total anyway.
    return invalid('too-short', `first packet is ${packet.length} bytes; it has no protocol code`);
  }

  switch (code) {
    case SSL_REQUEST_CODE:
      return declared === NEGOTIATION_REQUEST_LENGTH
        ? { kind: 'ssl-request' }
        : invalid(
            'bad-request-length',
            `SSLRequest is ${declared} bytes; it must be exactly ${NEGOTIATION_REQUEST_LENGTH}`,
          );
    case GSSENC_REQUEST_CODE:
      return declared === NEGOTIATION_REQUEST_LENGTH
        ? { kind: 'gssenc-request' }
        : invalid(
            'bad-request-length',
            `GSSENCRequest is ${declared} bytes; it must be exactly ${NEGOTIATION_REQUEST_LENGTH}`,
          );
    case CANCEL_REQUEST_CODE:
      return decodeCancel(reader, declared);
  }

  const protocol = splitProtocolCode(code);
  if (protocol.major === REQUEST_CODE_MAJOR) {
    return invalid(
      'unsupported-protocol',
      `unknown request code ${protocol.major}.${protocol.minor} (${code}); ` +
        'expected a StartupMessage, SSLRequest, GSSENCRequest or CancelRequest',
    );
  }
  if (protocol.major !== PROTOCOL_MAJOR_3) {
    return invalid(
      'unsupported-protocol',
      `unsupported frontend protocol ${protocol.major}.${protocol.minor}; ` +
        `this server speaks protocol ${PROTOCOL_MAJOR_3}.x (use a client from PostgreSQL 7.4 or later)`,
    );
  }
  return decodeStartup(reader, protocol);
}

function decodeCancel(reader: BufferReader, declared: number): CancelPreamble | InvalidPreamble {
  const keyLength = declared - CANCEL_KEY_OFFSET;
  if (keyLength < CANCEL_KEY_MIN_BYTES || keyLength > CANCEL_KEY_MAX_BYTES) {
    const what =
      keyLength < 0
        ? `CancelRequest is ${declared} bytes, too short to hold a process id`
        : `CancelRequest secret key is ${keyLength} bytes`;
    return invalid(
      'bad-request-length',
      `${what}; the key must be ${CANCEL_KEY_MIN_BYTES} to ${CANCEL_KEY_MAX_BYTES} bytes`,
    );
  }
  const processId = reader.int32();
  const key = reader.bytes(keyLength);
  if (processId === undefined || key === undefined) {
    return invalid('too-short', `CancelRequest is ${declared} bytes but its fields do not fit`);
  }
  // Copy: the caller may keep the key after HAProxy's buffer is reused.
  return { kind: 'cancel', processId, secretKey: Buffer.from(key) };
}

function decodeStartup(reader: BufferReader, protocol: ProtocolVersion): StartupPreamble | InvalidPreamble {
  const params = new Map<string, string>();
  for (;;) {
    const at = reader.position;
    const first = reader.peekByte();
    if (first === undefined) {
      return invalid(
        'missing-terminator',
        `startup packet ends at byte ${at} without the final \\0 that closes its parameter list`,
      );
    }
    if (first === NUL) {
      reader.byte();
      return finishStartup(reader, protocol, params, at);
    }

    const nameBytes = reader.cstringBytes();
    if (nameBytes === undefined) {
      return invalid(
        'unterminated-parameter',
        `startup parameter name at byte ${at} runs to the end of the packet without its \\0`,
      );
    }
    const name = decodeUtf8(nameBytes);
    if (name === undefined) {
      return invalid('invalid-encoding', `startup parameter name at byte ${at} is not valid UTF-8`);
    }
    const valueAt = reader.position;
    const valueBytes = reader.cstringBytes();
    if (valueBytes === undefined) {
      return invalid(
        'unterminated-parameter',
        `value of startup parameter ${quote(name)} at byte ${valueAt} runs to the end of the packet without its \\0`,
      );
    }
    const value = decodeUtf8(valueBytes);
    if (value === undefined) {
      return invalid(
        'invalid-encoding',
        `value of startup parameter ${quote(name)} is not valid UTF-8; send it UTF-8 encoded`,
      );
    }
    if (params.has(name)) {
      return invalid('duplicate-parameter', `startup parameter ${quote(name)} is sent twice; send it once`);
    }
    params.set(name, value);
  }
}

function finishStartup(
  reader: BufferReader,
  protocol: ProtocolVersion,
  params: Map<string, string>,
  terminatorAt: number,
): StartupPreamble | InvalidPreamble {
  if (reader.remaining > 0) {
    const rest = reader.rest();
    // A \0 where a name should start, followed by "value\0...": a client serialized a parameter
    // with an empty name. Anything else after the \0 is plain garbage.
    const looksLikeEmptyName = rest[0] !== NUL && rest[rest.length - 1] === NUL;
    if (looksLikeEmptyName) {
      return invalid(
        'empty-parameter-name',
        `startup packet has a parameter with an empty name at byte ${terminatorAt}; every parameter needs a name`,
      );
    }
    return invalid(
      'trailing-bytes',
      `startup packet has ${rest.length} unexpected bytes after the \\0 that ends its parameter list ` +
        `(byte ${terminatorAt})`,
    );
  }
  const user = params.get(USER_PARAMETER);
  if (user === undefined || user === '') {
    return invalid('missing-user', 'no PostgreSQL user name specified in the startup packet; set the user');
  }
  return { kind: 'startup', protocol, params };
}

