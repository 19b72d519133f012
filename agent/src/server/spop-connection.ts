// One HAProxy connection: the HELLO handshake, then NOTIFY -> ACK for every frame, pipelined, until
// a DISCONNECT. Every NOTIFY gets an ACK (a failed decision is a refusal, never silence); every
// malformed frame gets an AGENT-DISCONNECT with its status, never a crash.

import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import type { RefuseVerdict, Verdict } from '../decision/types.js';
import { performance } from 'node:perf_hooks';
import { encodeAck, encodeAckWithPayload, type TxnSetVar } from '../spop/ack.js';
import { DEFAULT_MAX_FRAME_SIZE, STATUS } from '../spop/constants.js';
import { SpopError } from '../spop/errors.js';
import { agentDisconnect, decodeFrame, encodeFrame, type NotifyFrame } from '../spop/frame.js';
import { FrameReader } from '../spop/frame-reader.js';
import { negotiateHello, type AgentCapability } from '../spop/handshake.js';
import type { AgentMetrics } from '../metrics.js';
import { decideStartupPacket, handleMessage, type DecisionContext } from './notify-handler.js';
import { newStartupNotify, readStartupNotify, type StartupNotify } from './notify-fast.js';
import { routeAckPayload, verdictActions } from './verdict-actions.js';

export interface ConnectionOptions {
  readonly ctx: DecisionContext;
  readonly metrics: AgentMetrics;
  readonly log: Logger;
  readonly onVerdict: (verdict: Verdict) => void;
  readonly maxFrameSize?: number;
  readonly helloTimeoutMs?: number;
}

const CAPABILITIES: readonly AgentCapability[] = ['pipelining', 'async'];

const internalError: RefuseVerdict = {
  kind: 'refuse',
  reason: 'internal-error',
  sqlstate: 'XX000',
  message: 'internal error in the connection router; try again later or contact the operator',
  logDetail: 'the agent failed while deciding; see the error logged with this verdict',
};

export class SpopConnection {
  readonly #socket: Socket;
  readonly #opts: ConnectionOptions;
  readonly #reader: FrameReader;
  #ready = false;
  #closing = false;
  #helloTimer: NodeJS.Timeout | undefined;
  /** Scratch for the NOTIFY fast path (one per connection, reused for every frame). */
  readonly #notify: StartupNotify = newStartupNotify();

  constructor(socket: Socket, opts: ConnectionOptions) {
    this.#socket = socket;
    this.#opts = opts;
    this.#reader = new FrameReader(opts.maxFrameSize ?? DEFAULT_MAX_FRAME_SIZE);
    socket.setNoDelay(true);
    socket.setKeepAlive(true, 30_000);
    socket.on('data', (chunk: Buffer) => this.#onData(chunk));
    socket.on('error', (err) => {
      opts.metrics.errors.labels('socket').inc();
      opts.log.debug({ err: err.message }, 'SPOP connection error');
    });
    socket.on('close', () => clearTimeout(this.#helloTimer));
    this.#helloTimer = setTimeout(() => this.#fail(new SpopError(STATUS.TIMEOUT, 'no HAPROXY-HELLO received in time')), opts.helloTimeoutMs ?? 5_000);
  }

  /** Ends the connection politely (agent shutting down): HAProxy reconnects elsewhere or later. */
  shutdown(): void {
    if (this.#closing) return;
    this.#sendDisconnect(STATUS.NONE, 'agent shutting down');
  }

  #onData(chunk: Buffer): void {
    if (this.#closing) return;
    const out: Buffer[] = [];
    try {
      this.#reader.push(chunk);
      for (let body = this.#reader.next(); body !== undefined; body = this.#reader.next()) {
        this.#onFrame(body, out);
        if (this.#closing) break;
      }
    } catch (err) {
      this.#flush(out);
      this.#fail(err);
      return;
    }
    this.#flush(out);
  }

  #onFrame(body: Buffer, out: Buffer[]): void {
    const hot = this.#opts.metrics.hot;
    // The NOTIFY HAProxy sends for every connection, read in place; anything else (or anything
    // unusual about it) goes through the generic decoder below, with all of its checks.
    if (this.#ready && readStartupNotify(body, this.#notify)) {
      hot.framesIn.notify++;
      out.push(this.#fastAck(body, this.#notify));
      return;
    }
    const frame = decodeFrame(body);
    hot.framesIn[frame.type]++;
    if (!this.#ready) {
      if (frame.type !== 'haproxy-hello') throw new SpopError(STATUS.INVALID, `expected HAPROXY-HELLO first, got ${frame.type}`);
      clearTimeout(this.#helloTimer);
      const result = negotiateHello(frame, { maxFrameSize: this.#reader.maxFrameSize, capabilities: CAPABILITIES });
      out.push(encodeFrame(result.reply));
      hot.framesOut[result.reply.type]++;
      if (result.ok) {
        this.#reader.maxFrameSize = result.maxFrameSize;
        this.#ready = true;
      }
      if (result.closeAfterReply) this.#closeAfter(out);
      return;
    }
    switch (frame.type) {
      case 'notify':
        out.push(this.#ack(frame));
        return;
      case 'haproxy-disconnect':
        this.#opts.log.debug({ status: frame.statusCode, message: frame.message }, 'HAProxy disconnected');
        out.push(encodeFrame(agentDisconnect(STATUS.NONE, 'bye')));
        this.#closeAfter(out);
        return;
      default:
        throw new SpopError(STATUS.INVALID, `unexpected ${frame.type} frame after the handshake`);
    }
  }

  /** #ack() for a NOTIFY read by the fast path: one pgroute-startup message. */
  #fastAck(body: Buffer, n: StartupNotify): Buffer {
    const { metrics, log } = this.#opts;
    const hot = metrics.hot;
    const timed = hot.shouldTime();
    const started = timed ? performance.now() : 0;
    let verdict: Verdict;
    try {
      verdict = decideStartupPacket(this.#opts.ctx, body, n);
    } catch (err) {
      metrics.errors.labels('internal').inc();
      log.error({ err }, 'decision failed; refusing the connection');
      verdict = internalError;
    }
    this.#opts.onVerdict(verdict);
    const ack =
      verdict.kind === 'route'
        ? encodeAckWithPayload(n.streamId, n.frameId, routeAckPayload(verdict), this.#reader.maxFrameSize)
        : encodeAck(n.streamId, n.frameId, verdictActions(verdict), this.#reader.maxFrameSize);
    if (timed) hot.observeLatency((performance.now() - started) / 1e3);
    hot.framesOut.ack++;
    return ack;
  }

  #ack(frame: NotifyFrame): Buffer {
    const { metrics, log } = this.#opts;
    const hot = metrics.hot;
    const timed = hot.shouldTime();
    const started = timed ? performance.now() : 0;
    const actions: TxnSetVar[] = [];
    for (const message of frame.messages) {
      let verdict: Verdict | undefined;
      try {
        verdict = handleMessage(this.#opts.ctx, message);
      } catch (err) {
        metrics.errors.labels('internal').inc();
        log.error({ err }, 'decision failed; refusing the connection');
        verdict = internalError;
      }
      if (verdict === undefined) continue;
      this.#opts.onVerdict(verdict);
      for (const a of verdictActions(verdict)) actions.push(a);
    }
    const ack = encodeAck(frame.streamId, frame.frameId, actions, this.#reader.maxFrameSize);
    if (timed) hot.observeLatency((performance.now() - started) / 1e3);
    hot.framesOut.ack++;
    return ack;
  }

  #flush(out: Buffer[]): void {
    if (out.length === 0 || this.#socket.destroyed) return;
    const ok = this.#socket.write(out.length === 1 ? (out[0] as Buffer) : Buffer.concat(out));
    if (!ok) {
      // HAProxy is not reading: stop reading its frames until it does (bounded memory).
      this.#socket.pause();
      this.#socket.once('drain', () => this.#socket.resume());
    }
  }

  #closeAfter(out: Buffer[]): void {
    this.#closing = true;
    this.#flush(out);
    out.length = 0;
    this.#socket.end();
    // As in #sendDisconnect: a peer that never reads or closes must not keep the socket forever.
    setTimeout(() => this.#socket.destroy(), 2_000).unref();
  }

  #fail(err: unknown): void {
    if (err instanceof SpopError) {
      this.#opts.metrics.errors.labels('protocol').inc();
      this.#opts.log.warn({ status: err.status, err: err.message }, 'bad SPOP frame from peer; disconnecting');
      this.#sendDisconnect(err.status, err.message);
      return;
    }
    this.#opts.metrics.errors.labels('internal').inc();
    this.#opts.log.error({ err }, 'SPOP connection failed; disconnecting');
    this.#sendDisconnect(STATUS.UNKNOWN, 'internal agent error');
  }

  #sendDisconnect(status: number, message: string): void {
    if (this.#closing) return;
    this.#closing = true;
    clearTimeout(this.#helloTimer);
    if (!this.#socket.destroyed) {
      try {
        this.#socket.end(encodeFrame(agentDisconnect(status, message)));
      } catch {
        this.#socket.destroy();
      }
    }
    // A peer that never reads must not keep the socket (and its buffers) forever.
    setTimeout(() => this.#socket.destroy(), 2_000).unref();
  }
}
