// Test and benchmark support for the SPOP codec: the directions the agent itself never needs
// (encoding HAProxy's frames, decoding the agent's), plus encodeFrame()/decodeFrame() over both
// directions so a test can play either peer. Production code does not import this folder.

import { encodeAgentFrame } from '../agent-frames.js';
import { FRAME_TYPE } from '../constants.js';
import type { Frame } from '../frames.js';
import { decodeHaproxyFrame } from '../haproxy-frames.js';
import { decodeAgentFrame } from './agent-decoders.js';
import { encodeHaproxyFrame } from './haproxy-encoders.js';

export { decodeAgentFrame, readActions } from './agent-decoders.js';
export { encodeHaproxyDisconnect, encodeHaproxyFrame, encodeHaproxyHello, encodeMessages, encodeNotify, messagesPayload } from './haproxy-encoders.js';
// The lower layers, for readers of raw agent payloads (the benchmark's client).
export { ByteReader } from '../byte-reader.js';
export { readFrameHeader, type FrameHeader } from '../frame-codec.js';
export { readKvList } from '../kv-list.js';
// What a peer playing HAProxy needs besides: the wire constants and the client's startup packet.
export { FRAME_FLAG, FRAME_TYPE } from '../constants.js';
export { encodeVarint } from '../varint.js';
export { SCOPE_CODE } from '../frames.js';
export type { TypedValue } from '../typed-data.js';
export { encodeStartupMessage } from '../../pg/frontend.js';

export interface EncodeOptions {
  /** When set, a frame body larger than this throws SpopError(TOO_BIG). */
  maxFrameSize?: number;
}

/** Encodes a frame of either direction to wire bytes, 4-byte length prefix included. */
export function encodeFrame(frame: Frame, options: EncodeOptions = {}): Buffer {
  switch (frame.type) {
    case 'haproxy-hello':
    case 'notify':
    case 'haproxy-disconnect':
      return encodeHaproxyFrame(frame, options.maxFrameSize);
    default:
      return encodeAgentFrame(frame, options.maxFrameSize);
  }
}

/** Decodes a frame body (no length prefix) of either direction. */
export function decodeFrame(body: Buffer): Frame {
  const type = body[0];
  return type === FRAME_TYPE.AGENT_HELLO || type === FRAME_TYPE.ACK || type === FRAME_TYPE.AGENT_DISCONNECT ? decodeAgentFrame(body) : decodeHaproxyFrame(body);
}
