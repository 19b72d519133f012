// The ErrorResponse a refused client receives, so that psql, libpq, JDBC, node-postgres and friends
// print a normal "FATAL:  ..." line with its SQLSTATE, DETAIL and HINT.
//
// Layout: Byte1('E'), Int32 length (counting itself, not the 'E'), then fields, each a code byte and
// a NUL-terminated UTF-8 string, then a final NUL. Fields written: S, V, C, M and, when given, D, H.
//
// Two guarantees the framing depends on:
// - no NUL inside any string: a NUL is replaced by U+FFFD, so client-supplied text quoted in a
//   message cannot end a field early or forge further fields;
// - the whole message is at most MAX_ERROR_RESPONSE_BYTES (1024): long text is cut on a character
//   boundary and ends with an ellipsis, so a refusal always fits HAProxy's buffer.

import { BufferReader, PacketTruncatedError } from './buffer-reader.js';
import { BufferWriter } from './buffer-writer.js';
import {
  ERROR_RESPONSE,
  ErrorField,
  INT32_BYTES,
  MAX_ERROR_RESPONSE_BYTES,
  NUL,
  SQLSTATE_PATTERN,
  SqlState,
} from './constants.js';

export type ErrorSeverity = 'FATAL' | 'ERROR';

export interface ErrorResponseInput {
  readonly severity: ErrorSeverity;
  /** Five characters from [0-9A-Z]; anything else is sent as XX000 (internal_error). */
  readonly sqlstate: string;
  readonly message: string;
  readonly detail?: string;
  readonly hint?: string;
}

const ELLIPSIS = '\u2026'; // '…', 3 bytes in UTF-8
const NUL_REPLACEMENT = '\uFFFD'; // '�', 3 bytes in UTF-8
const DEFAULT_SEVERITY: ErrorSeverity = 'FATAL';
/** Bytes kept for DETAIL and HINT before MESSAGE takes the rest; unused room flows on. */
const DETAIL_RESERVE_BYTES = 256;
const HINT_RESERVE_BYTES = 192;
/** Per field: the code byte and the NUL terminator. */
const FIELD_FRAMING_BYTES = 2;
/** 'E' + Int32 length + the final NUL. */
const MESSAGE_FRAMING_BYTES = 1 + INT32_BYTES + 1;

function utf8Bytes(text: string): number {
  return Buffer.byteLength(text, 'utf8');
}

/** Replaces NUL (which would end the field) with U+FFFD. */
function withoutNul(text: string): string {
  return text.includes('\0') ? text.replaceAll('\0', NUL_REPLACEMENT) : text;
}

/** `text` cut to at most `maxBytes` UTF-8 bytes on a code-point boundary, ending in an ellipsis when cut. */
export function truncateUtf8(text: string, maxBytes: number): string {
  if (utf8Bytes(text) <= maxBytes) return text;
  const room = maxBytes - utf8Bytes(ELLIPSIS);
  if (room < 0) return '';
  let kept = '';
  let used = 0;
  for (const codePoint of text) {
    const size = utf8Bytes(codePoint);
    if (used + size > room) break;
    kept += codePoint;
    used += size;
  }
  return kept + ELLIPSIS;
}

function fieldBytes(text: string | undefined): number {
  return text === undefined ? 0 : FIELD_FRAMING_BYTES + utf8Bytes(text);
}

export function encodeErrorResponse(e: ErrorResponseInput): Buffer {
  const severity: ErrorSeverity = e.severity === 'ERROR' || e.severity === 'FATAL' ? e.severity : DEFAULT_SEVERITY;
  const sqlstate = SQLSTATE_PATTERN.test(e.sqlstate) ? e.sqlstate : SqlState.internalError;
  const message = withoutNul(e.message);
  const detail = e.detail ? withoutNul(e.detail) : undefined;
  const hint = e.hint ? withoutNul(e.hint) : undefined;

  const fixed =
    MESSAGE_FRAMING_BYTES +
    fieldBytes(severity) * 2 + // S and V
    fieldBytes(sqlstate) +
    FIELD_FRAMING_BYTES + // M
    (detail === undefined ? 0 : FIELD_FRAMING_BYTES) +
    (hint === undefined ? 0 : FIELD_FRAMING_BYTES);
  const available = MAX_ERROR_RESPONSE_BYTES - fixed;

  const messageLength = utf8Bytes(message);
  const detailLength = detail === undefined ? 0 : utf8Bytes(detail);
  const hintLength = hint === undefined ? 0 : utf8Bytes(hint);
  // MESSAGE first, with DETAIL and HINT keeping a modest reserve; room MESSAGE does not use goes
  // to DETAIL, then to HINT.
  const detailReserve = Math.min(detailLength, DETAIL_RESERVE_BYTES);
  const hintReserve = Math.min(hintLength, HINT_RESERVE_BYTES);
  const messageCap = Math.min(messageLength, available - detailReserve - hintReserve);
  let left = available - messageCap - detailReserve - hintReserve;
  const detailCap = Math.min(detailLength, detailReserve + left);
  left -= detailCap - detailReserve;
  const hintCap = Math.min(hintLength, hintReserve + left);

  const writer = new BufferWriter()
    .addByte(ErrorField.severity)
    .addCString(severity)
    .addByte(ErrorField.severityNonLocalized)
    .addCString(severity)
    .addByte(ErrorField.code)
    .addCString(sqlstate)
    .addByte(ErrorField.message)
    .addCString(truncateUtf8(message, messageCap));
  if (detail !== undefined) writer.addByte(ErrorField.detail).addCString(truncateUtf8(detail, detailCap));
  if (hint !== undefined) writer.addByte(ErrorField.hint).addCString(truncateUtf8(hint, hintCap));
  return writer.addByte(NUL).flush(ERROR_RESPONSE);
}

export interface DecodedErrorResponse {
  /** Every field by its code letter ('S', 'V', 'C', 'M', 'D', 'H', ...). */
  readonly fields: ReadonlyMap<string, string>;
  readonly severity: string | undefined;
  readonly sqlstate: string | undefined;
  readonly message: string | undefined;
  readonly detail: string | undefined;
  readonly hint: string | undefined;
}

/**
 * Reads one complete ErrorResponse (for tests and tools; the agent only sends them).
 * Returns undefined for anything that is not exactly one well-framed ErrorResponse.
 */
export function decodeErrorResponse(bytes: Buffer): DecodedErrorResponse | undefined {
  try {
    return readErrorResponse(new BufferReader(bytes));
  } catch (error) {
    if (error instanceof PacketTruncatedError) return undefined;
    throw error;
  }
}

function readErrorResponse(reader: BufferReader): DecodedErrorResponse | undefined {
  if (reader.byte('message type') !== ERROR_RESPONSE) return undefined;
  const length = reader.int32('length'); // counts itself, not the type byte
  if (length !== reader.remaining + INT32_BYTES) return undefined;
  const fields = new Map<string, string>();
  for (;;) {
    const code = reader.byte('field code');
    if (code === NUL) break;
    fields.set(String.fromCharCode(code), reader.cstringBytes('field value').toString('utf8'));
  }
  if (reader.remaining !== 0) return undefined;
  return {
    fields,
    severity: fields.get('S'),
    sqlstate: fields.get('C'),
    message: fields.get('M'),
    detail: fields.get('D'),
    hint: fields.get('H'),
  };
}
