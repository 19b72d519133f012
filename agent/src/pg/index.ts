// The PostgreSQL wire pieces the agent needs: decode the first packet, read `options`, refuse politely.

export type {
  CancelPreamble,
  DecodedPreamble,
  GssEncRequestPreamble,
  InvalidPreamble,
  Preamble,
  PreambleProblem,
  ProtocolVersion,
  SslRequestPreamble,
  StartupPreamble,
} from './preamble-types.js';
export * from './constants.js';
export { decodePreamble, splitProtocolCode, USER_PARAMETER } from './preamble.js';
export {
  encodeCancelRequest,
  encodeGssEncRequest,
  encodeSslRequest,
  encodeStartupMessage,
  protocolCode,
} from './frontend.js';
export {
  analyzeStartupOptions,
  parseStartupOptions,
  splitStartupOptions,
  TENANT_OPTION,
  type StartupOptionProblem,
  type StartupOptionProblemKind,
  type StartupOptions,
} from './options.js';
export {
  decodeErrorResponse,
  encodeErrorResponse,
  truncateUtf8,
  type DecodedErrorResponse,
  type ErrorResponseInput,
  type ErrorSeverity,
} from './error-response.js';
export { BufferReader, PacketTruncatedError } from './buffer-reader.js';
export { BufferWriter } from './buffer-writer.js';
