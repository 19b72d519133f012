// Raw TCP conversations with the public port, for packets no real client would send.

import { createConnection, type Socket } from 'node:net';
import { decodeErrorResponse, type DecodedErrorResponse } from '../../agent/src/pg/error-response.js';

export interface Exchange {
  /** Everything the server sent before closing (or before the timeout). */
  readonly received: Buffer;
  /** Milliseconds from the last write to the close (or the timeout). */
  readonly msAfterLastWrite: number;
  readonly closedByServer: boolean;
}

export interface ExchangeOptions {
  /** Pause between chunks. */
  readonly gapMs?: number;
  /** Shut our write side after the last chunk (a truncated packet with EOF). */
  readonly halfClose?: boolean;
  /** Give up (and report closedByServer=false) after this long. */
  readonly timeoutMs?: number;
  /** Resolve as soon as this many bytes arrived instead of waiting for the close. */
  readonly untilBytes?: number;
  readonly localAddress?: string;
}

export function exchange(port: number, chunks: readonly Buffer[], opts: ExchangeOptions = {}): Promise<Exchange> {
  return new Promise((resolve, reject) => {
    const sock: Socket = createConnection({ host: '127.0.0.1', port, ...(opts.localAddress ? { localAddress: opts.localAddress } : {}) });
    const parts: Buffer[] = [];
    let lastWrite = Date.now();
    let done = false;
    const finish = (closedByServer: boolean): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sock.destroy();
      resolve({ received: Buffer.concat(parts), msAfterLastWrite: Date.now() - lastWrite, closedByServer });
    };
    const timer = setTimeout(() => finish(false), opts.timeoutMs ?? 10_000);
    sock.on('data', (d: Buffer) => {
      parts.push(d);
      if (opts.untilBytes !== undefined && Buffer.concat(parts).length >= opts.untilBytes) finish(true);
    });
    sock.on('end', () => finish(true));
    sock.on('close', () => finish(true));
    sock.on('error', (err: NodeJS.ErrnoException) => (err.code === 'ECONNRESET' ? finish(true) : reject(err)));
    sock.on('connect', async () => {
      for (const [i, chunk] of chunks.entries()) {
        if (i > 0 && opts.gapMs) await new Promise((r) => setTimeout(r, opts.gapMs));
        if (done) return;
        sock.write(chunk);
        lastWrite = Date.now();
      }
      if (opts.halfClose) sock.end();
    });
  });
}

/** The ErrorResponse the server sent, or a failure naming what arrived instead. */
export function errorResponseOf(received: Buffer): DecodedErrorResponse {
  const decoded = decodeErrorResponse(received);
  if (decoded === undefined) throw new Error(`expected one PostgreSQL ErrorResponse, got ${received.length} bytes: ${received.toString('hex').slice(0, 120)}`);
  return decoded;
}

/** PostgreSQL message types in a server's reply, e.g. ['R', 'S', ..., 'K', 'Z']. */
export function messageTypes(received: Buffer): string[] {
  const types: string[] = [];
  let at = 0;
  while (at + 5 <= received.length) {
    types.push(String.fromCharCode(received[at] as number));
    at += 1 + received.readUInt32BE(at + 1);
  }
  return types;
}
