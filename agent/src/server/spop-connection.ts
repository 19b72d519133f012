// One HAProxy connection: the HELLO handshake, then NOTIFY -> ACK for every frame, pipelined, until
// a DISCONNECT. Every NOTIFY gets an ACK (a failed decision is a refusal, never silence); every
// malformed frame gets an AGENT-DISCONNECT with its status, never a crash.

import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import type { RefuseVerdict, Verdict } from '../decision/types.js';
import { performance } from 'node:perf_hooks';
import { AgentFrameBatch, encodeAck, encodeAgentDisconnect, encodeAgentHello, type TxnSetVar } from '../spop/agent-frames.js';
import { DEFAULT_MAX_FRAME_SIZE, STATUS } from '../spop/constants.js';
import { SpopError } from '../spop/errors.js';
import { FrameReader } from '../spop/frame-reader.js';
import { agentDisconnect, type NotifyFrame, type SpoeMessage } from '../spop/frames.js';
import { negotiateHello, type AgentCapability } from '../spop/handshake.js';
import { decodeHaproxyFrame } from '../spop/haproxy-frames.js';
import type { AgentMetrics } from '../metrics.js';
import type { DecisionContext } from './decide-connection.js';
import { decideStartupNotify, handleMessage, newStartupNotify, readStartupNotify, type StartupNotify } from './startup-message.js';
import { routeAckPayload, verdictActions } from './verdict-actions.js';
import { answerHold, isHoldNotify } from './hold-notify.js';
import type { Waiter } from '../decision/hold.js';

export interface ConnectionOptions {
  readonly ctx: DecisionContext;
  readonly metrics: AgentMetrics;
  readonly log: Logger;
  readonly onVerdict: (verdict: Verdict) => void;
  readonly maxFrameSize?: number;
  readonly helloTimeoutMs?: number;
}

const CAPABILITIES: readonly AgentCapability[] = ['pipelining', 'async'];

/** How a peer's close shows up on a socket this side is ending. */
const PEER_GONE: ReadonlySet<string> = new Set(['ECONNRESET', 'EPIPE']);

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
  /** The frames answering the current read, written as one buffer (#flush). */
  readonly #out = new AgentFrameBatch();
  /** Connections of paused tenants waiting on this connection (answered later, or dropped on close). */
  readonly #held = new Set<Waiter>();

  constructor(socket: Socket, opts: ConnectionOptions) {
    this.#socket = socket;
    this.#opts = opts;
    this.#reader = new FrameReader(opts.maxFrameSize ?? DEFAULT_MAX_FRAME_SIZE);
    socket.setNoDelay(true);
    socket.setKeepAlive(true, 30_000);
    socket.on('data', (chunk: Buffer) => this.#onData(chunk));
    socket.on('error', (err: NodeJS.ErrnoException) => {
      // HAProxy resets a connection it is done with instead of closing it (its SPOP health check
      // every `inter`: HELLO, our reply, RST). A reset of a connection this side is ending already
      // is that, not a failure.
      if (this.#closing && PEER_GONE.has(err.code ?? '')) return;
      opts.metrics.errors.labels('socket').inc();
      opts.log.debug({ err: err.message }, 'SPOP connection error');
    });
    socket.on('close', () => {
      clearTimeout(this.#helloTimer);
      for (const w of this.#held) w.cancel();
      this.#held.clear();
    });
    this.#helloTimer = setTimeout(() => this.#fail(new SpopError(STATUS.TIMEOUT, 'no HAPROXY-HELLO received in time')), opts.helloTimeoutMs ?? 5_000);
  }

  /** Ends the connection politely (agent shutting down): HAProxy reconnects elsewhere or later. */
  shutdown(): void {
    if (this.#closing) return;
    this.#sendDisconnect(STATUS.NONE, 'agent shutting down');
  }

  #onData(chunk: Buffer): void {
    if (this.#closing) return;
    const reader = this.#reader;
    try {
      reader.push(chunk);
      while (reader.nextRange()) {
        this.#onFrame(reader.frameBuf, reader.frameStart, reader.frameEnd);
        if (this.#closing) break;
      }
    } catch (err) {
      this.#flush();
      this.#fail(err);
      return;
    }
    this.#flush();
  }

  /** One frame body: buf[start, end). */
  #onFrame(buf: Buffer, start: number, end: number): void {
    const hot = this.#opts.metrics.hot;
    const out = this.#out;
    // The NOTIFY HAProxy sends for every connection, read in place; anything else (or anything
    // unusual about it) goes through the decoder below, with all of its checks.
    if (this.#ready && readStartupNotify(buf, this.#notify, start, end)) {
      hot.framesIn.notify++;
      this.#answer(this.#notify.streamId, this.#notify.frameId, buf, undefined);
      return;
    }
    const frame = decodeHaproxyFrame(buf.subarray(start, end));
    hot.framesIn[frame.type]++;
    if (!this.#ready) {
      if (frame.type !== 'haproxy-hello') throw new SpopError(STATUS.INVALID, `expected HAPROXY-HELLO first, got ${frame.type}`);
      clearTimeout(this.#helloTimer);
      const result = negotiateHello(frame, { maxFrameSize: this.#reader.maxFrameSize, capabilities: CAPABILITIES });
      out.frame(result.ok ? encodeAgentHello(result.reply) : encodeAgentDisconnect(result.reply));
      hot.framesOut[result.reply.type]++;
      if (result.ok) {
        this.#reader.maxFrameSize = result.maxFrameSize;
        this.#ready = true;
      }
      if (result.closeAfterReply) this.#closeAfter();
      return;
    }
    switch (frame.type) {
      case 'notify':
        if (isHoldNotify(frame)) this.#hold(frame);
        else this.#answer(frame.streamId, frame.frameId, buf, frame);
        return;
      case 'haproxy-disconnect':
        this.#opts.log.debug({ status: frame.statusCode, message: frame.message }, 'HAProxy disconnected');
        out.frame(encodeAgentDisconnect(agentDisconnect(STATUS.NONE, 'bye')));
        this.#closeAfter();
        return;
      default:
        throw new SpopError(STATUS.INVALID, `unexpected ${frame.type} frame after the handshake`);
    }
  }

  /**
   * The ACK for a NOTIFY, added to #out: read by the fast path (`frame` undefined; one startup
   * message in `body`, where the fast path read it; a route's actions are cached pre-encoded), or
   * decoded (one verdict per message this agent knows).
   */
  #answer(streamId: number, frameId: number, body: Buffer, frame: NotifyFrame | undefined): void {
    const hot = this.#opts.metrics.hot;
    const timed = hot.shouldTime();
    const started = timed ? performance.now() : 0;
    const max = this.#reader.maxFrameSize;
    if (frame === undefined) {
      const verdict = this.#verdict(body, undefined)!;
      this.#opts.onVerdict(verdict);
      if (verdict.kind === 'route') this.#out.ack(streamId, frameId, routeAckPayload(verdict), max);
      else this.#out.frame(encodeAck(streamId, frameId, verdictActions(verdict), max));
    } else {
      const actions: TxnSetVar[] = [];
      for (const message of frame.messages) {
        const verdict = this.#verdict(body, message);
        if (verdict === undefined) continue;
        this.#opts.onVerdict(verdict);
        for (const a of verdictActions(verdict)) actions.push(a);
      }
      this.#out.frame(encodeAck(streamId, frameId, actions, max));
    }
    if (timed) hot.observeLatency((performance.now() - started) / 1e3);
    hot.framesOut.ack++;
  }

  /** A held connection's NOTIFY: answered now (into #out) or when the hold queue releases it. */
  #hold(frame: NotifyFrame): void {
    let now = true;
    const waiter = answerHold(this.#opts.ctx, frame, this.#reader.maxFrameSize, this.#opts.onVerdict, (ack) => {
      this.#opts.metrics.hot.framesOut.ack++;
      if (now) this.#out.frame(ack);
      else {
        this.#held.delete(waiter as Waiter);
        if (this.#closing) return;
        this.#out.frame(ack);
        this.#flush();
      }
    });
    now = false;
    if (waiter !== undefined) this.#held.add(waiter);
  }

  /** The verdict for one message (the fast path's when `message` is undefined); a failed decision is a refusal, never silence. */
  #verdict(body: Buffer, message: SpoeMessage | undefined): Verdict | undefined {
    try {
      return message === undefined ? decideStartupNotify(this.#opts.ctx, body, this.#notify) : handleMessage(this.#opts.ctx, message);
    } catch (err) {
      this.#opts.metrics.errors.labels('internal').inc();
      this.#opts.log.error({ err }, 'decision failed; refusing the connection');
      return internalError;
    }
  }

  #flush(): void {
    const bytes = this.#out.take();
    if (bytes === undefined || this.#socket.destroyed) return;
    const ok = this.#socket.write(bytes);
    if (!ok) {
      // HAProxy is not reading: stop reading its frames until it does (bounded memory).
      this.#socket.pause();
      this.#socket.once('drain', () => this.#socket.resume());
    }
  }

  #closeAfter(): void {
    this.#closing = true;
    this.#flush();
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
        this.#socket.end(encodeAgentDisconnect(agentDisconnect(status, message)));
      } catch {
        this.#socket.destroy();
      }
    }
    // A peer that never reads must not keep the socket (and its buffers) forever.
    setTimeout(() => this.#socket.destroy(), 2_000).unref();
  }
}
