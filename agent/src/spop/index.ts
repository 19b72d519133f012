// Public API of the SPOP 2.0 codec, in layers: varint -> typed data -> frame -> the frames HAProxy
// sends (decoded) and the frames the agent sends (encoded). The opposite directions, for tests and
// the benchmark, are in ./testing.

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
  type AckFrame,
  type Action,
  type AgentDisconnectFrame,
  type AgentFrame,
  type AgentHelloFrame,
  type Frame,
  type FrameKind,
  type HaproxyDisconnectFrame,
  type HaproxyFrame,
  type HaproxyHelloFrame,
  type NotifyFrame,
  type SpoeArg,
  type SpoeMessage,
  type VarScope,
} from './frames.js';
export { splitCommaList } from './kv-list.js';
export { decodeHaproxyFrame } from './haproxy-frames.js';
export { encodeAck, encodeAckPayload, encodeAckWithPayload, encodeAgentDisconnect, encodeAgentFrame, encodeAgentHello, type TxnSetVar } from './agent-frames.js';
export { FrameReader } from './frame-reader.js';
export { negotiateHello, parseVersion, supportsSpop2, type AgentCapability, type AgentLimits, type HandshakeResult } from './handshake.js';
