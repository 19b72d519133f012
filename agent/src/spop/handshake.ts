// HELLO negotiation (SPOE.txt 3.2.4 / 3.2.5), as a pure function: HAPROXY-HELLO + agent limits in,
// the frame to send back out. No I/O; the caller writes `reply` and, when `closeAfterReply`, closes.

import { CAPABILITY, MIN_FRAME_SIZE, SPOP_MAJOR_VERSION, SPOP_VERSION, STATUS, UINT32_MAX } from './constants.js';
import { agentDisconnect, type AgentDisconnectFrame, type AgentHelloFrame, type HaproxyHelloFrame } from './frames.js';

/** Capabilities this agent may announce. "fragmentation" is deliberately absent: we reject fragments. */
export type AgentCapability = typeof CAPABILITY.PIPELINING | typeof CAPABILITY.ASYNC;

/** Announcement order in AGENT-HELLO. */
const CAPABILITY_ORDER: readonly AgentCapability[] = [CAPABILITY.PIPELINING, CAPABILITY.ASYNC];

export interface AgentLimits {
  /** Largest frame body the agent accepts/sends (>= 256). */
  maxFrameSize: number;
  /** Capabilities the agent supports. */
  capabilities: Iterable<AgentCapability>;
}

export type HandshakeResult =
  | {
      ok: true;
      /** AGENT-HELLO to send. */
      reply: AgentHelloFrame;
      /** Negotiated max frame size: min(HAProxy's, ours). Use it for FrameReader and encoders. */
      maxFrameSize: number;
      /** Negotiated capabilities (intersection). */
      capabilities: ReadonlySet<AgentCapability>;
      /** A SPOE health check: reply, then close the connection. */
      healthcheck: boolean;
      closeAfterReply: boolean;
      engineId: string | undefined;
    }
  | {
      ok: false;
      /** AGENT-DISCONNECT to send before closing. */
      reply: AgentDisconnectFrame;
      healthcheck: boolean;
      closeAfterReply: true;
    };

/** Parses "Major.Minor" like HAProxy's spoe_str_to_vsn; returns null when malformed. */
export function parseVersion(text: string): { major: number; minor: number } | null {
  const m = /^\s*([0-9]+)\.([0-9]{1,3})\s*$/.exec(text);
  if (m === null) return null;
  const major = Number(m[1]);
  const minor = Number(m[2]);
  if (major === 0) return null;
  return { major, minor };
}

/**
 * HAProxy announces the last minor of each major it supports ("2.0, 1.5" means 2.0 and 1.0..1.5),
 * so any well-formed "2.x" means SPOP 2.0 is acceptable.
 */
export function supportsSpop2(supportedVersions: readonly string[]): boolean {
  return supportedVersions.some((v) => parseVersion(v)?.major === SPOP_MAJOR_VERSION);
}

function checkLimits(limits: AgentLimits): void {
  const n = limits.maxFrameSize;
  if (!Number.isInteger(n) || n < MIN_FRAME_SIZE || n > UINT32_MAX) {
    // A configuration bug on our side, not a protocol error.
    throw new RangeError(`agent maxFrameSize must be an integer within ${MIN_FRAME_SIZE}..${UINT32_MAX}, got ${String(n)}`);
  }
}

export function negotiateHello(hello: HaproxyHelloFrame, limits: AgentLimits): HandshakeResult {
  checkLimits(limits);
  const healthcheck = hello.healthcheck;
  const refuse = (status: number, detail: string): HandshakeResult => ({
    ok: false,
    reply: agentDisconnect(status, detail),
    healthcheck,
    closeAfterReply: true,
  });

  if (!supportsSpop2(hello.supportedVersions)) {
    return refuse(STATUS.BAD_VERSION, `unsupported version: agent speaks SPOP ${SPOP_VERSION}`);
  }
  if (!Number.isInteger(hello.maxFrameSize) || hello.maxFrameSize < MIN_FRAME_SIZE) {
    return refuse(STATUS.BAD_FRAME_SIZE, `max-frame-size too small: ${hello.maxFrameSize} < ${MIN_FRAME_SIZE}`);
  }
  const maxFrameSize = Math.min(hello.maxFrameSize, limits.maxFrameSize);

  const offered = new Set(hello.capabilities);
  const ours = new Set(limits.capabilities);
  const agreed = CAPABILITY_ORDER.filter((c) => ours.has(c) && offered.has(c));

  return {
    ok: true,
    reply: { type: 'agent-hello', version: SPOP_VERSION, maxFrameSize, capabilities: agreed },
    maxFrameSize,
    capabilities: new Set(agreed),
    healthcheck,
    closeAfterReply: healthcheck,
    engineId: hello.engineId,
  };
}
