// Public API of the SPOP 2.0 codec.

export {
  ACTION_NB_ARGS,
  ACTION_TYPE,
  CAPABILITY,
  DATA_FLAG_TRUE,
  DATA_TYPE,
  DATA_TYPE_MASK,
  DEFAULT_MAX_FRAME_SIZE,
  FRAME_FLAG,
  FRAME_LENGTH_PREFIX_SIZE,
  FRAME_TYPE,
  KV_KEY,
  MAX_DISCONNECT_MESSAGE_BYTES,
  MIN_FRAME_BODY_SIZE,
  MIN_FRAME_SIZE,
  SPOP_VERSION,
  STATUS,
  STATUS_MESSAGE,
  statusMessage,
  type FrameTypeCode,
  type SpopStatus,
} from './constants.js';
export { SpopError, isSpopError, type SpopErrorDetails } from './errors.js';
export { decodeVarint, encodeVarint, varintSize, varintSizeBigInt, writeVarint, writeVarintBigInt, VARINT_MAX_BYTES, VARINT_MAX_VALUE } from './varint.js';
export { decodeTypedData, encodeTypedData, type TypedValue, type TypedValueType } from './typed-data.js';
export {
  agentDisconnect,
  decodeFrame,
  encodeFrame,
  splitCommaList,
  type AckFrame,
  type Action,
  type AgentDisconnectFrame,
  type AgentHelloFrame,
  type EncodeOptions,
  type Frame,
  type FrameKind,
  type HaproxyDisconnectFrame,
  type HaproxyHelloFrame,
  type NotifyFrame,
  type SpoeArg,
  type SpoeMessage,
  type VarScope,
} from './frame.js';
export { FrameReader } from './frame-reader.js';
export { negotiateHello, parseVersion, supportsSpop2, type AgentCapability, type AgentLimits, type HandshakeResult } from './handshake.js';
export { encodeAck, type TxnSetVar } from './ack.js';
