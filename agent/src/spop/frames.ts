// The frames of SPOP 2.0 as typed values (SPOE.txt 3.2), for both directions. What HAProxy sends is
// decoded by haproxy-frames.ts; what the agent sends is encoded by agent-frames.ts. The opposite
// directions (encoding HAProxy's frames, decoding the agent's) are for tests and the benchmark only:
// testing/.
//
// Ids: STREAM-ID and FRAME-ID are JavaScript numbers. HAProxy 2.6 generates both as 32-bit unsigned
// ints, so real ids are far below 2^53; decoders reject ids above Number.MAX_SAFE_INTEGER with
// SpopError(INVALID) rather than lose precision, and encoders accept safe non-negative integers.

import { FRAME_TYPE, VAR_SCOPE, statusMessage } from './constants.js';
import type { TypedValue } from './typed-data.js';

export type VarScope = 'process' | 'session' | 'transaction' | 'request' | 'response';

export interface SpoeArg {
  /** Argument name; may be empty (HAProxy allows unnamed args). */
  name: string;
  value: TypedValue;
}

export interface SpoeMessage {
  name: string;
  args: SpoeArg[];
}

export type Action =
  | { type: 'set-var'; scope: VarScope; name: string; value: TypedValue }
  | { type: 'unset-var'; scope: VarScope; name: string };

export interface HaproxyHelloFrame {
  type: 'haproxy-hello';
  /** "supported-versions", split on commas, spaces removed, empty items dropped. */
  supportedVersions: string[];
  maxFrameSize: number;
  /** "capabilities", split on commas, spaces removed, empty items dropped. */
  capabilities: string[];
  /** "healthcheck" (false when absent). */
  healthcheck: boolean;
  engineId?: string;
}

export interface AgentHelloFrame {
  type: 'agent-hello';
  version: string;
  maxFrameSize: number;
  capabilities: string[];
}

export interface HaproxyDisconnectFrame {
  type: 'haproxy-disconnect';
  statusCode: number;
  message: string;
}

export interface AgentDisconnectFrame {
  type: 'agent-disconnect';
  statusCode: number;
  message: string;
}

export interface NotifyFrame {
  type: 'notify';
  streamId: number;
  frameId: number;
  /** Raw METADATA flags (FIN is always set on a decoded frame; ABORT may be). */
  flags: number;
  messages: SpoeMessage[];
}

export interface AckFrame {
  type: 'ack';
  streamId: number;
  frameId: number;
  /** Raw METADATA flags; defaults to FIN when encoding. */
  flags?: number;
  actions: Action[];
}

/** What HAProxy sends. */
export type HaproxyFrame = HaproxyHelloFrame | NotifyFrame | HaproxyDisconnectFrame;
/** What the agent sends. */
export type AgentFrame = AgentHelloFrame | AckFrame | AgentDisconnectFrame;
export type Frame = HaproxyFrame | AgentFrame;
export type FrameKind = Frame['type'];

export const SCOPE_BY_CODE: readonly VarScope[] = ['process', 'session', 'transaction', 'request', 'response'];
export const SCOPE_CODE: Readonly<Record<VarScope, number>> = {
  process: VAR_SCOPE.PROCESS,
  session: VAR_SCOPE.SESSION,
  transaction: VAR_SCOPE.TRANSACTION,
  request: VAR_SCOPE.REQUEST,
  response: VAR_SCOPE.RESPONSE,
};

export const FRAME_TYPE_CODE: Readonly<Record<FrameKind, number>> = {
  'haproxy-hello': FRAME_TYPE.HAPROXY_HELLO,
  'haproxy-disconnect': FRAME_TYPE.HAPROXY_DISCONNECT,
  notify: FRAME_TYPE.NOTIFY,
  'agent-hello': FRAME_TYPE.AGENT_HELLO,
  'agent-disconnect': FRAME_TYPE.AGENT_DISCONNECT,
  ack: FRAME_TYPE.ACK,
};

/** The kind of a known frame type byte, or undefined. */
export function frameKindOf(code: number): FrameKind | undefined {
  for (const kind in FRAME_TYPE_CODE) if (FRAME_TYPE_CODE[kind as FrameKind] === code) return kind as FrameKind;
  return undefined;
}

/** Builds an AGENT-DISCONNECT with the spec's default message for the status. */
export function agentDisconnect(statusCode: number, message: string = statusMessage(statusCode)): AgentDisconnectFrame {
  return { type: 'agent-disconnect', statusCode, message };
}
