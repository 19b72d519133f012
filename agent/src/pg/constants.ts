// Wire constants of the PostgreSQL frontend/backend protocol that the connection preamble and a
// refusal need. Every number carries its value (and, for request codes, its bytes) beside it so a
// packet dump can be read against this file.
// Reference: https://www.postgresql.org/docs/current/protocol-message-formats.html

/** Size of an Int32 on the wire. */
export const INT32_BYTES = 4;

/** Every first packet starts with Int32 length (counting itself) and Int32 code: 8 bytes. */
export const PREAMBLE_HEADER_BYTES = 8;

/**
 * PostgreSQL's own cap on a startup packet (MAX_STARTUP_PACKET_LENGTH in pqcomm.h): 10000 bytes,
 * length word included. A packet of exactly 10000 bytes is accepted, 10001 is refused.
 */
export const MAX_STARTUP_PACKET = 10000;

// ---- Protocol versions: (major << 16) | minor ------------------------------------------------

/** The only protocol major this agent (and PostgreSQL 14+) speaks. */
export const PROTOCOL_MAJOR_3 = 3;
/** Protocol 3.0 = 0x00030000 (196608): bytes 00 03 00 00. Sent by libpq up to PostgreSQL 17. */
export const PROTOCOL_3_0 = 0x00030000;
/** Protocol 3.2 = 0x00030002 (196610): bytes 00 03 00 02. PostgreSQL 18; longer cancel keys. */
export const PROTOCOL_3_2 = 0x00030002;

/** Major 1234 is reserved for special request codes (SSL, GSSENC, cancel). */
export const REQUEST_CODE_MAJOR = 1234;

// ---- Special request codes: 1234 << 16 | n ----------------------------------------------------

/** CancelRequest = 1234.5678 = 80877102: bytes 04 d2 16 2e. */
export const CANCEL_REQUEST_CODE = 80877102;
/** SSLRequest = 1234.5679 = 80877103: bytes 04 d2 16 2f. */
export const SSL_REQUEST_CODE = 80877103;
/** GSSENCRequest = 1234.5680 = 80877104: bytes 04 d2 16 30. */
export const GSSENC_REQUEST_CODE = 80877104;

/** SSLRequest and GSSENCRequest are exactly header-only: 8 bytes. */
export const NEGOTIATION_REQUEST_LENGTH = 8;

/** CancelRequest: length(4) + code(4) + process id(4), then the secret key. */
export const CANCEL_KEY_OFFSET = 12;
/** Protocol 3.0 cancel keys are exactly 4 bytes; the shortest key accepted. */
export const CANCEL_KEY_MIN_BYTES = 4;
/** Protocol 3.2 allows cancel keys up to 256 bytes (PostgreSQL 18 sends 32). */
export const CANCEL_KEY_MAX_BYTES = 256;

// ---- Bytes ------------------------------------------------------------------------------------

/** NUL, the C-string terminator and the StartupMessage list terminator. */
export const NUL = 0x00;

/**
 * First byte of a TLS handshake record (0x16). A client using PostgreSQL 17's
 * sslnegotiation=direct starts TLS at once instead of sending SSLRequest; no valid first packet
 * can start with it (a length of at most 10000 has 0x00 as its first byte).
 */
export const TLS_HANDSHAKE_RECORD = 0x16;

/** The single byte a server answers to SSLRequest/GSSENCRequest to decline: 'N' (0x4e). */
export const NEGOTIATION_DECLINED = 0x4e; // 'N'

// ---- Backend messages -------------------------------------------------------------------------

/** ErrorResponse message type byte: 'E' (0x45). */
export const ERROR_RESPONSE = 0x45; // 'E'

/** ErrorResponse / NoticeResponse field codes (one byte each, followed by a C string). */
export const ErrorField = {
  /** 'S' (0x53): localized severity. */
  severity: 0x53,
  /** 'V' (0x56): non-localized severity (PostgreSQL 9.6+). */
  severityNonLocalized: 0x56,
  /** 'C' (0x43): SQLSTATE code. */
  code: 0x43,
  /** 'M' (0x4d): primary message. */
  message: 0x4d,
  /** 'D' (0x44): detail. */
  detail: 0x44,
  /** 'H' (0x48): hint. */
  hint: 0x48,
  /** 'P' (0x50): cursor position in the query string. */
  position: 0x50,
  /** 'W' (0x57): context / call stack. */
  where: 0x57,
  /** 'F' (0x46): source file. */
  file: 0x46,
  /** 'L' (0x4c): source line. */
  line: 0x4c,
  /** 'R' (0x52): source routine. */
  routine: 0x52,
} as const;

// ---- SQLSTATE codes the project sends -----------------------------------------------------------

export const SqlState = {
  /** 08P01 protocol_violation: a malformed first packet. */
  protocolViolation: '08P01',
  /** 3D000 invalid_catalog_name: unknown database / tenant. */
  invalidCatalogName: '3D000',
  /** 28000 invalid_authorization_specification: no usable tenant key, refused identity. */
  invalidAuthorizationSpecification: '28000',
  /** 57P03 cannot_connect_now: the tenant or route is temporarily unavailable. */
  cannotConnectNow: '57P03',
  /** 08004 sqlserver_rejected_establishment_of_sqlconnection: refused by policy. */
  rejectedEstablishment: '08004',
  /** 53300 too_many_connections. */
  tooManyConnections: '53300',
  /** XX000 internal_error: the agent itself failed. */
  internalError: 'XX000',
} as const;

export type SqlStateCode = (typeof SqlState)[keyof typeof SqlState];

/** An SQLSTATE is five characters from [0-9A-Z]. */
export const SQLSTATE_PATTERN = /^[0-9A-Z]{5}$/;

/**
 * Largest ErrorResponse this agent emits, framing included. A refusal must fit in one HAProxy
 * buffer together with anything else HAProxy adds; 1 KiB leaves ample room.
 */
export const MAX_ERROR_RESPONSE_BYTES = 1024;
