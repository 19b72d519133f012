// Decodes the first packet a PostgreSQL client sends: exactly the bytes HAProxy buffered.
// Pure and total: any input, however short, long or hostile, gives a DecodedPreamble; nothing
// throws. Layout: Int32 length (counting itself), Int32 code, body.

import { quoteValue } from '../quote.js';
import { BufferReader } from './buffer-reader.js';
import {
  CANCEL_KEY_MAX_BYTES,
  CANCEL_KEY_MIN_BYTES,
  CANCEL_KEY_OFFSET,
  CANCEL_REQUEST_CODE,
  GSSENC_REQUEST_CODE,
  INT32_BYTES,
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
  GssEncRequestPreamble,
  InvalidPreamble,
  PreambleProblem,
  ProtocolVersion,
  SslRequestPreamble,
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


function decodeUtf8(bytes: Uint8Array): string | undefined {
  try {
    return strictUtf8.decode(bytes);
  } catch {
    return undefined;
  }
}

/** Strings this short are built char by char (V8 makes them flat); longer ones by one native slice. */
const SHORT_TEXT = 12;

type Latin1Slicer = (buf: Buffer, start: number, end: number) => string;
const nativeLatin1 = (Buffer.prototype as unknown as { latin1Slice?: unknown }).latin1Slice;
/** Buffer#latin1Slice where Node has it (it skips toString's argument handling), else toString. */
const latin1Slice: Latin1Slicer =
  typeof nativeLatin1 === 'function'
    ? (buf, start, end) => (buf as unknown as { latin1Slice(s: number, e: number): string }).latin1Slice(start, end)
    : (buf, start, end) => buf.toString('latin1', start, end);

/**
 * The text of buf[start, end) as strict UTF-8, or undefined when it is not valid UTF-8. `high` is the
 * OR of every byte: below 0x80 the bytes are ASCII, where UTF-8 and Latin-1 agree, and need no decoder.
 */
function textOf(buf: Buffer, start: number, end: number, high: number): string | undefined {
  if (high >= 0x80) return decodeUtf8(buf.subarray(start, end));
  const n = end - start;
  if (n > SHORT_TEXT) return latin1Slice(buf, start, end);
  let s = '';
  for (let i = start; i < end; i++) s += String.fromCharCode(buf[i]!);
  return s;
}

/** Splits a 32-bit protocol/request code into its major (high 16 bits) and minor (low 16 bits). */
export function splitProtocolCode(code: number): ProtocolVersion {
  return { major: code >>> 16, minor: code & 0xffff };
}

/** Shared (frozen) versions for the protocols every client speaks: no object per connection. */
const PROTOCOL_3_0: ProtocolVersion = Object.freeze({ major: 3, minor: 0 });
const PROTOCOL_3_2: ProtocolVersion = Object.freeze({ major: 3, minor: 2 });

function protocolOf(code: number): ProtocolVersion {
  if (code === 0x0003_0000) return PROTOCOL_3_0;
  if (code === 0x0003_0002) return PROTOCOL_3_2;
  return splitProtocolCode(code);
}

/**
 * Parameter names clients send on nearly every connection, as constant strings: a name read from
 * the packet that equals one of them is returned as that constant (no new string, hash cached).
 */
const COMMON_NAMES: readonly string[] = [
  'user',
  'database',
  'options',
  'application_name',
  'client_encoding',
  'replication',
  'DateStyle',
  'TimeZone',
  'extra_float_digits',
  'search_path',
  'geqo',
  'intervalstyle',
  'lc_messages',
];
/** COMMON_NAMES by length, then by first byte. */
const NAMES_BY_LENGTH: ReadonlyArray<ReadonlyArray<readonly [string, Buffer]>> = (() => {
  const byLength: Array<Array<readonly [string, Buffer]>> = [];
  for (const n of COMMON_NAMES) (byLength[n.length] ??= []).push([n, Buffer.from(n, 'latin1')]);
  return byLength;
})();

/** The name at buf[start, end) (ASCII) as a COMMON_NAMES constant, or undefined. */
function commonName(buf: Buffer, start: number, end: number): string | undefined {
  const candidates = NAMES_BY_LENGTH[end - start];
  if (candidates === undefined) return undefined;
  next: for (const [name, bytes] of candidates) {
    for (let i = 0; i < bytes.length; i++) if (buf[start + i] !== bytes[i]) continue next;
    return name;
  }
  return undefined;
}

export function decodePreamble(packet: Buffer): DecodedPreamble {
  return decodePreambleAt(packet, 0, packet.length);
}

/**
 * decodePreamble() of the packet lying at buf[start, end), without making a view of it first
 * (the agent's hot path passes the frame body it received). Offsets in messages count from `start`.
 */
export function decodePreambleAt(buf: Buffer, start: number, end: number): DecodedPreamble {
  try {
    return decode(buf, start, end);
  } catch (error) {
    // Unreachable by design (lengths are checked before every read, and the reader throws rather
    // than read past the end); kept so the promise "never throws" holds even against a bug, and
    // says so instead of hiding it.
    const why = error instanceof Error ? error.message : String(error);
    return invalid('too-short', `first packet could not be decoded: ${why}`);
  }
}

function decode(buf: Buffer, start: number, end: number): DecodedPreamble {
  const length = end - start;
  if (length > 0 && buf[start] === TLS_HANDSHAKE_RECORD) {
    return invalid(
      'unsupported-protocol',
      'client started TLS directly (sslnegotiation=direct); connect with sslnegotiation=postgres',
    );
  }
  if (length < INT32_BYTES) {
    return invalid(
      'too-short',
      `first packet is ${length} bytes; a PostgreSQL connection starts with at least ${PREAMBLE_HEADER_BYTES}`,
    );
  }
  const reader = new BufferReader(buf, start, end);
  const declared = reader.uint32('length');
  if (declared > MAX_STARTUP_PACKET) {
    return invalid('too-long', `startup packet is ${declared} bytes; the limit is ${MAX_STARTUP_PACKET}`);
  }
  if (declared < PREAMBLE_HEADER_BYTES) {
    return invalid(
      'too-short',
      `first packet declares a length of ${declared} bytes; the smallest valid one is ${PREAMBLE_HEADER_BYTES}`,
    );
  }
  if (length < declared) {
    return invalid(
      'too-short',
      `first packet declares ${declared} bytes but only ${length} arrived; the client stopped mid-packet`,
    );
  }
  if (length > declared) {
    return invalid(
      'length-mismatch',
      `first packet declares ${declared} bytes but ${length} arrived; ` +
        'a client must wait for the server before sending more',
    );
  }

  // From here on length === declared >= 8: the code and every fixed field below are there.
  const code = reader.uint32('protocol code');

  switch (code) {
    case SSL_REQUEST_CODE:
      return negotiationRequest(SSL_REQUEST, 'SSLRequest', declared);
    case GSSENC_REQUEST_CODE:
      return negotiationRequest(GSSENC_REQUEST, 'GSSENCRequest', declared);
    case CANCEL_REQUEST_CODE:
      return decodeCancel(reader, declared);
  }

  const protocol = protocolOf(code);
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
  return decodeStartup(buf, start, reader.position, end, protocol);
}

/** Shared (frozen) answers for the header-only requests. */
const SSL_REQUEST: SslRequestPreamble = Object.freeze({ kind: 'ssl-request' });
const GSSENC_REQUEST: GssEncRequestPreamble = Object.freeze({ kind: 'gssenc-request' });

/** SSLRequest and GSSENCRequest are the header alone; `name` is the request's name in messages. */
function negotiationRequest<P extends SslRequestPreamble | GssEncRequestPreamble>(
  request: P,
  name: string,
  declared: number,
): P | InvalidPreamble {
  return declared === NEGOTIATION_REQUEST_LENGTH
    ? request
    : invalid('bad-request-length', `${name} is ${declared} bytes; it must be exactly ${NEGOTIATION_REQUEST_LENGTH}`);
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
  // length === declared and the key length is in range, so both fields are there.
  const processId = reader.int32('CancelRequest process id');
  const key = reader.bytes(keyLength, 'CancelRequest secret key');
  // Copy: the caller may keep the key after HAProxy's buffer is reused.
  return { kind: 'cancel', processId, secretKey: Buffer.from(key) };
}

/** The OR of the bytes the last scanToNul() passed over (a second result, without an object). */
let scannedHigh = 0;

/** Index of the first \0 in buf[from, end), or `end` when there is none; sets scannedHigh. */
function scanToNul(buf: Buffer, from: number, end: number): number {
  let high = 0;
  let i = from;
  for (; i < end; i++) {
    const b = buf[i]!;
    if (b === NUL) break;
    high |= b;
  }
  scannedHigh = high;
  return i;
}

function decodeStartup(
  buf: Buffer,
  start: number,
  from: number,
  end: number,
  protocol: ProtocolVersion,
): StartupPreamble | InvalidPreamble {
  // One pass per name and value finds its \0 and whether it is pure ASCII (no TextDecoder then).
  const params = new Map<string, string>();
  let pos = from;
  for (;;) {
    const at = pos - start;
    if (pos >= end) {
      return invalid(
        'missing-terminator',
        `startup packet ends at byte ${at} without the final \\0 that closes its parameter list`,
      );
    }
    if (buf[pos] === NUL) {
      return finishStartup(buf, start, pos + 1, end, protocol, params, at);
    }

    let i = scanToNul(buf, pos, end);
    if (i >= end) {
      return invalid(
        'unterminated-parameter',
        `startup parameter name at byte ${at} runs to the end of the packet without its \\0`,
      );
    }
    const name = (scannedHigh < 0x80 ? commonName(buf, pos, i) : undefined) ?? textOf(buf, pos, i, scannedHigh);
    if (name === undefined) {
      return invalid('invalid-encoding', `startup parameter name at byte ${at} is not valid UTF-8`);
    }
    pos = i + 1;
    const valueAt = pos - start;
    i = scanToNul(buf, pos, end);
    if (i >= end) {
      return invalid(
        'unterminated-parameter',
        `value of startup parameter ${quoteValue(name, QUOTE_LIMIT)} at byte ${valueAt} runs to the end of the packet without its \\0`,
      );
    }
    const value = textOf(buf, pos, i, scannedHigh);
    if (value === undefined) {
      return invalid(
        'invalid-encoding',
        `value of startup parameter ${quoteValue(name, QUOTE_LIMIT)} is not valid UTF-8; send it UTF-8 encoded`,
      );
    }
    pos = i + 1;
    if (params.has(name)) {
      return invalid('duplicate-parameter', `startup parameter ${quoteValue(name, QUOTE_LIMIT)} is sent twice; send it once`);
    }
    params.set(name, value);
  }
}

function finishStartup(
  buf: Buffer,
  start: number,
  pos: number,
  end: number,
  protocol: ProtocolVersion,
  params: Map<string, string>,
  terminatorAt: number,
): StartupPreamble | InvalidPreamble {
  if (end - pos > 0) {
    const rest = buf.subarray(pos, end);
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

