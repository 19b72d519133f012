// Incremental framing: feed socket chunks split anywhere, get complete frame bodies (without the
// 4-byte length prefix) back, ready for decodeFrame().
//
// Zero copy where possible: a frame lying wholly inside one chunk is returned as a subarray view of
// that chunk; only frames straddling chunks are assembled into a buffer of their exact size. So the
// caller must not mutate chunks after pushing them (Node's socket 'data' buffers are never reused).
// The hot path takes even less: nextRange() says where the body lies (frameBuf[frameStart,
// frameEnd)) without making a view object per frame; next() is the same with the view.
//
// A length above maxFrameSize throws SpopError(TOO_BIG) as soon as the 4 length bytes are seen,
// before any of the body is buffered. After throwing, the reader stays failed: every later call
// rethrows the same error (the connection must be closed after an AGENT-DISCONNECT).

import { DEFAULT_MAX_FRAME_SIZE, FRAME_LENGTH_PREFIX_SIZE, MIN_FRAME_BODY_SIZE, STATUS, UINT32_MAX } from './constants.js';
import { SpopError } from './errors.js';

const EMPTY = Buffer.alloc(0);

export class FrameReader {
  private _maxFrameSize: number;
  /** Pending chunks after `cur`. */
  private readonly queue: Buffer[] = [];
  private cur: Buffer = EMPTY;
  private curPos = 0;
  /** Partial length prefix (when it straddles chunks). */
  private readonly header = Buffer.alloc(FRAME_LENGTH_PREFIX_SIZE);
  private headerFilled = 0;
  /** Body being assembled across chunks, if any. */
  private body: Buffer | null = null;
  private bodyFilled = 0;
  private failure: SpopError | null = null;
  private buffered = 0;
  /** Byte offset in the stream of the next unread byte (for error messages). */
  private streamOffset = 0;
  /** The frame body nextRange() found last is buf[start, end) (until the next call). */
  private _frameBuf: Buffer = EMPTY;
  private _frameStart = 0;
  private _frameEnd = 0;

  constructor(maxFrameSize: number = DEFAULT_MAX_FRAME_SIZE) {
    this._maxFrameSize = FrameReader.checkMax(maxFrameSize);
  }

  private static checkMax(n: number): number {
    if (!Number.isInteger(n) || n < MIN_FRAME_BODY_SIZE || n > UINT32_MAX) {
      throw new RangeError(`maxFrameSize must be an integer within ${MIN_FRAME_BODY_SIZE}..${UINT32_MAX}, got ${String(n)}`);
    }
    return n;
  }

  /** The buffer holding the body nextRange() found last (the chunk itself, or an assembled body). */
  get frameBuf(): Buffer {
    return this._frameBuf;
  }

  get frameStart(): number {
    return this._frameStart;
  }

  get frameEnd(): number {
    return this._frameEnd;
  }

  /** Largest accepted frame body. Lower it to the negotiated size after the HELLO handshake. */
  get maxFrameSize(): number {
    return this._maxFrameSize;
  }

  set maxFrameSize(n: number) {
    this._maxFrameSize = FrameReader.checkMax(n);
  }

  /** Bytes received but not yet returned as frames (including a partially assembled body). */
  get bufferedBytes(): number {
    return this.buffered + this.headerFilled + (this.body === null ? 0 : FRAME_LENGTH_PREFIX_SIZE + this.bodyFilled);
  }

  /** True when no partial frame is pending (a clean point to close the connection). */
  get idle(): boolean {
    return this.bufferedBytes === 0 && this.body === null;
  }

  push(chunk: Buffer): void {
    if (this.failure) throw this.failure;
    if (chunk.length === 0) return;
    if (this.curPos >= this.cur.length && this.queue.length === 0) {
      this.cur = chunk;
      this.curPos = 0;
    } else {
      this.queue.push(chunk);
    }
    this.buffered += chunk.length;
  }

  /** Next complete frame body, or undefined when more bytes are needed. */
  next(): Buffer | undefined {
    if (!this.nextRange()) return undefined;
    const buf = this._frameBuf;
    return this._frameStart === 0 && this._frameEnd === buf.length ? buf : buf.subarray(this._frameStart, this._frameEnd);
  }

  /**
   * next() without the view: true when a complete frame body is at frameBuf[frameStart, frameEnd)
   * (valid until the next call), false when more bytes are needed.
   */
  nextRange(): boolean {
    if (this.failure) throw this.failure;
    for (;;) {
      let avail = this.cur.length - this.curPos;
      if (avail === 0) {
        const nextChunk = this.queue.shift();
        if (nextChunk === undefined) {
          this.cur = EMPTY;
          this.curPos = 0;
          return false;
        }
        this.cur = nextChunk;
        this.curPos = 0;
        avail = nextChunk.length;
      }

      if (this.body === null) {
        // Reading the length prefix.
        let length: number;
        if (this.headerFilled === 0 && avail >= FRAME_LENGTH_PREFIX_SIZE) {
          length = this.cur.readUInt32BE(this.curPos);
          this.consume(FRAME_LENGTH_PREFIX_SIZE);
        } else {
          const n = Math.min(FRAME_LENGTH_PREFIX_SIZE - this.headerFilled, avail);
          this.cur.copy(this.header, this.headerFilled, this.curPos, this.curPos + n);
          this.headerFilled += n;
          this.consume(n);
          if (this.headerFilled < FRAME_LENGTH_PREFIX_SIZE) continue;
          this.headerFilled = 0;
          length = this.header.readUInt32BE(0);
        }
        this.checkLength(length);
        avail = this.cur.length - this.curPos;
        if (avail >= length) {
          this.setRange(this.cur, this.curPos, this.curPos + length);
          this.consume(length);
          return true;
        }
        this.body = Buffer.allocUnsafe(length);
        this.bodyFilled = 0;
        continue;
      }

      // Assembling a body that straddles chunks.
      const need = this.body.length - this.bodyFilled;
      const n = Math.min(need, avail);
      this.cur.copy(this.body, this.bodyFilled, this.curPos, this.curPos + n);
      this.bodyFilled += n;
      this.consume(n);
      if (this.bodyFilled === this.body.length) {
        this.setRange(this.body, 0, this.body.length);
        this.body = null;
        this.bodyFilled = 0;
        return true;
      }
    }
  }

  /** Convenience: push a chunk and collect every frame body it completes. */
  feed(chunk: Buffer): Buffer[] {
    this.push(chunk);
    const out: Buffer[] = [];
    for (let b = this.next(); b !== undefined; b = this.next()) out.push(b);
    return out;
  }

  private setRange(buf: Buffer, start: number, end: number): void {
    this._frameBuf = buf;
    this._frameStart = start;
    this._frameEnd = end;
  }

  private consume(n: number): void {
    this.curPos += n;
    this.buffered -= n;
    this.streamOffset += n;
  }

  private checkLength(length: number): void {
    const at = this.streamOffset - FRAME_LENGTH_PREFIX_SIZE;
    if (length > this._maxFrameSize) {
      this.fail(new SpopError(STATUS.TOO_BIG, `frame length ${length} at stream offset ${at} exceeds max-frame-size ${this._maxFrameSize}`, { offset: at }));
    }
    if (length < MIN_FRAME_BODY_SIZE) {
      this.fail(new SpopError(STATUS.INVALID, `frame length ${length} at stream offset ${at} is shorter than the ${MIN_FRAME_BODY_SIZE}-byte minimum`, { offset: at }));
    }
  }

  private fail(err: SpopError): never {
    this.failure = err;
    this.queue.length = 0;
    this.cur = EMPTY;
    this.curPos = 0;
    this.body = null;
    this._frameBuf = EMPTY;
    throw err;
  }
}
