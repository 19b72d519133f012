// The typed result of decoding the first packet a PostgreSQL client sends on a connection.
// Produced by pg/preamble.ts (pure), consumed by the decision.

export interface ProtocolVersion {
  readonly major: number;
  readonly minor: number;
}

/** StartupMessage: protocol 3.x plus key/value parameters (user, database, options, ...). */
export interface StartupPreamble {
  readonly kind: 'startup';
  readonly protocol: ProtocolVersion;
  /** Parameters in the order the client sent them. Names are unique (a duplicate is a malformation). */
  readonly params: ReadonlyMap<string, string>;
}

export interface SslRequestPreamble {
  readonly kind: 'ssl-request';
}

export interface GssEncRequestPreamble {
  readonly kind: 'gssenc-request';
}

/** CancelRequest: 4-byte key in protocol 3.0, up to 256 bytes in 3.2. */
export interface CancelPreamble {
  readonly kind: 'cancel';
  readonly processId: number;
  readonly secretKey: Buffer;
}

/** Every way a first packet can be malformed, each with its own name. */
export type PreambleProblem =
  | 'too-short' // fewer than 8 bytes, or fewer than its declared length
  | 'too-long' // declared length above the 10,000-byte cap PostgreSQL itself enforces
  | 'length-mismatch' // declared length differs from the bytes handed over
  | 'unsupported-protocol' // major version other than 3, or an unknown 1234.x request code
  | 'bad-request-length' // SSLRequest/GSSENCRequest not 8 bytes, CancelRequest key not 4..256 bytes
  | 'unterminated-parameter' // a name or value runs to the end without its \0
  | 'missing-terminator' // the parameter list does not end with the final \0
  | 'trailing-bytes' // bytes after the final \0
  | 'empty-parameter-name' // (cannot happen: an empty name IS the terminator; kept for clarity of decoding)
  | 'duplicate-parameter' // the same parameter name twice
  | 'missing-user' // PostgreSQL requires the user parameter
  | 'invalid-encoding'; // a name or value that is not valid UTF-8

export interface InvalidPreamble {
  readonly kind: 'invalid';
  readonly problem: PreambleProblem;
  /** A sentence a client user can act on, e.g. 'startup packet is 12000 bytes, above the 10000-byte limit'. */
  readonly message: string;
}

export type Preamble =
  | StartupPreamble
  | SslRequestPreamble
  | GssEncRequestPreamble
  | CancelPreamble;

export type DecodedPreamble = Preamble | InvalidPreamble;
