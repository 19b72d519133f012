/**
 * A raw PostgreSQL client over TLS for tests, for what psql 15 cannot do: PostgreSQL 17's direct
 * TLS (a ClientHello first, ALPN "postgresql"), a chosen server name (SNI), and a look at the
 * certificate the server presented. Also the classic way (SSLRequest, 'S', then TLS).
 *
 * Speaks just enough of the protocol for trust authentication: StartupMessage, then messages up to
 * ReadyForQuery (or an ErrorResponse), then simple queries whose rows come back as text.
 */
import { createConnection, type Socket } from 'node:net';
import { connect as tlsConnect, type PeerCertificate, type TLSSocket } from 'node:tls';
import { encodeStartupMessage } from '../../agent/src/pg/frontend.js';
import { decodeErrorResponse, type DecodedErrorResponse } from '../../agent/src/pg/error-response.js';

export const SSL_REQUEST = Buffer.from('0000000804d2162f', 'hex');

export interface TlsPgOptions {
  port: number;
  /** Default 127.0.0.1. */
  host?: string;
  /** 'direct': ClientHello first (PostgreSQL 17 sslnegotiation=direct); 'sslrequest': SSLRequest, 'S', then TLS. */
  negotiation: 'direct' | 'sslrequest';
  /** Server name sent in the ClientHello (SNI); omitted when undefined. */
  servername?: string;
  /** CA certificate(s) to verify the server with; without it the certificate is not verified. */
  ca?: string;
  /** ALPN protocols offered; default ['postgresql'] (what PostgreSQL 17 sends). */
  alpn?: string[];
  /** StartupMessage parameters (user, database, options, ...). */
  params: Record<string, string>;
  timeoutMs?: number;
}

export interface PgMessage {
  readonly type: string;
  readonly body: Buffer;
}

export interface TlsPgSession {
  readonly socket: TLSSocket;
  /** TLS facts of the session. */
  readonly authorized: boolean;
  readonly authorizationError: string | undefined;
  readonly alpnProtocol: string | false | null;
  readonly protocol: string | null;
  readonly peerCertificate: PeerCertificate;
  /** The messages answering the StartupMessage, through ReadyForQuery or an ErrorResponse. */
  readonly startup: PgMessage[];
  /** The ErrorResponse the startup ended with, if it did. */
  readonly error: DecodedErrorResponse | undefined;
  /** Runs one simple query; resolves with the rows (text columns) or rejects with the server's error. */
  query(sql: string): Promise<string[][]>;
  /** Sends Terminate and closes. */
  close(): Promise<void>;
}

/** Splits complete protocol messages off the front of `buf`. */
function takeMessages(buf: Buffer): { messages: PgMessage[]; rest: Buffer } {
  const messages: PgMessage[] = [];
  let at = 0;
  while (at + 5 <= buf.length) {
    const len = buf.readUInt32BE(at + 1);
    if (at + 1 + len > buf.length) break;
    messages.push({ type: String.fromCharCode(buf[at] as number), body: buf.subarray(at + 5, at + 1 + len) });
    at += 1 + len;
  }
  return { messages, rest: buf.subarray(at) };
}

/** Reads messages from `socket` until `done` says so, the socket ends, or the timeout. */
function readUntil(socket: Socket, done: (m: PgMessage) => boolean, timeoutMs: number, initial: Buffer = Buffer.alloc(0)): Promise<PgMessage[]> {
  return new Promise((resolve, reject) => {
    let buf = initial;
    const out: PgMessage[] = [];
    const cleanup = (): void => {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('close', onClose);
      socket.off('error', onError);
    };
    const consume = (): boolean => {
      const { messages, rest } = takeMessages(buf);
      buf = rest;
      for (const m of messages) {
        out.push(m);
        if (done(m)) {
          cleanup();
          if (buf.length > 0) socket.unshift(buf);
          resolve(out);
          return true;
        }
      }
      return false;
    };
    const onData = (d: Buffer): void => {
      buf = Buffer.concat([buf, d]);
      consume();
    };
    const onClose = (): void => {
      cleanup();
      resolve(out); // the caller looks at what arrived
    };
    const onError = (err: Error): void => {
      cleanup();
      reject(err);
    };
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`no answer within ${timeoutMs} ms; received so far: ${out.map((m) => m.type).join('') || '(nothing)'}`));
    }, timeoutMs);
    socket.on('data', onData);
    socket.once('close', onClose);
    socket.once('error', onError);
    if (!consume() && socket.destroyed) onClose();
  });
}

/** Opens a TCP connection, sends SSLRequest and resolves with the socket and the one-byte answer. */
export function sslRequest(port: number, host = '127.0.0.1', timeoutMs = 5_000): Promise<{ socket: Socket; answer: string }> {
  return new Promise((resolve, reject) => {
    const socket = createConnection({ host, port });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no answer to SSLRequest within ${timeoutMs} ms`));
    }, timeoutMs);
    socket.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    socket.once('connect', () => socket.write(SSL_REQUEST));
    socket.once('readable', function onReadable() {
      const b = socket.read(1) as Buffer | null;
      if (b === null) {
        if (socket.readableEnded) {
          clearTimeout(timer);
          reject(new Error('the server closed the connection instead of answering the SSLRequest'));
        } else socket.once('readable', onReadable);
        return;
      }
      clearTimeout(timer);
      resolve({ socket, answer: b.toString('latin1') });
    });
    socket.once('end', () => {
      clearTimeout(timer);
      reject(new Error('the server closed the connection instead of answering the SSLRequest'));
    });
  });
}

function handshake(opts: TlsPgOptions, over?: Socket): Promise<TLSSocket> {
  const timeoutMs = opts.timeoutMs ?? 10_000;
  return new Promise((resolve, reject) => {
    const base = {
      ALPNProtocols: opts.alpn ?? ['postgresql'],
      ...(opts.servername === undefined ? {} : { servername: opts.servername }),
      ...(opts.ca === undefined ? { rejectUnauthorized: false } : { ca: opts.ca, rejectUnauthorized: false }),
      // Identity is checked by the caller (authorized + the name), so a mismatch is visible, not thrown.
      checkServerIdentity: () => undefined,
    };
    const s = over === undefined ? tlsConnect({ ...base, host: opts.host ?? '127.0.0.1', port: opts.port }) : tlsConnect({ ...base, socket: over });
    const timer = setTimeout(() => {
      s.destroy();
      reject(new Error(`TLS handshake not done within ${timeoutMs} ms`));
    }, timeoutMs);
    s.once('secureConnect', () => {
      clearTimeout(timer);
      resolve(s);
    });
    s.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}

/**
 * A TLS session opened with a ClientHello first (direct), then `bytes` written as they are: resolves
 * with what came back until the server closed, and how long after the write that was.
 */
export async function tlsExchange(opts: Omit<TlsPgOptions, 'params' | 'negotiation'>, bytes: Buffer): Promise<{ received: Buffer; msAfterWrite: number }> {
  const tls = await handshake({ ...opts, negotiation: 'direct', params: {} });
  const timeoutMs = opts.timeoutMs ?? 10_000;
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      tls.destroy();
      reject(new Error(`the server did not close within ${timeoutMs} ms`));
    }, timeoutMs);
    tls.on('data', (d: Buffer) => chunks.push(d));
    tls.on('error', () => {}); // a reset after the answer: what arrived counts
    tls.once('close', () => {
      clearTimeout(timer);
      resolve({ received: Buffer.concat(chunks), msAfterWrite: Date.now() - written });
    });
    const written = Date.now();
    tls.write(bytes);
  });
}

/** Connects over TLS (direct or after an SSLRequest), sends the StartupMessage and reads the answer. */
export async function connectTlsPg(opts: TlsPgOptions): Promise<TlsPgSession> {
  const timeoutMs = opts.timeoutMs ?? 10_000;
  let tls: TLSSocket;
  if (opts.negotiation === 'direct') tls = await handshake(opts);
  else {
    const { socket, answer } = await sslRequest(opts.port, opts.host, timeoutMs);
    if (answer !== 'S') {
      socket.destroy();
      throw new Error(`SSLRequest answered ${JSON.stringify(answer)}, not 'S'`);
    }
    tls = await handshake(opts, socket);
  }
  tls.on('error', () => {}); // reported through reads; never crash the test process
  tls.write(encodeStartupMessage(opts.params));
  const startup = await readUntil(tls, (m) => m.type === 'Z' || m.type === 'E', timeoutMs);
  const errMsg = startup.find((m) => m.type === 'E');
  const error = errMsg === undefined ? undefined : decodeErrorResponse(Buffer.concat([Buffer.from('E'), lengthOf(errMsg.body), errMsg.body]));

  const session: TlsPgSession = {
    socket: tls,
    authorized: tls.authorized,
    authorizationError: tls.authorizationError === undefined ? undefined : String(tls.authorizationError),
    alpnProtocol: tls.alpnProtocol,
    protocol: tls.getProtocol(),
    peerCertificate: tls.getPeerCertificate(),
    startup,
    error,
    async query(sql: string): Promise<string[][]> {
      const body = Buffer.concat([Buffer.from(sql, 'utf8'), Buffer.from([0])]);
      tls.write(Buffer.concat([Buffer.from('Q'), lengthOf(body), body]));
      const msgs = await readUntil(tls, (m) => m.type === 'Z', timeoutMs);
      const e = msgs.find((m) => m.type === 'E');
      if (e !== undefined) {
        const d = decodeErrorResponse(Buffer.concat([Buffer.from('E'), lengthOf(e.body), e.body]));
        throw new Error(`${d?.severity ?? 'ERROR'} ${d?.sqlstate ?? '?'}: ${d?.message ?? e.body.toString('latin1')}`);
      }
      if (!msgs.some((m) => m.type === 'Z')) throw new Error(`connection closed during the query; got ${msgs.map((m) => m.type).join('')}`);
      return msgs.filter((m) => m.type === 'D').map((m) => dataRow(m.body));
    },
    close(): Promise<void> {
      return new Promise((resolve) => {
        if (tls.destroyed) return resolve();
        tls.once('close', () => resolve());
        tls.end(Buffer.from('5800000004', 'hex')); // Terminate
        setTimeout(() => {
          tls.destroy();
          resolve();
        }, 2_000).unref();
      });
    },
  };
  return session;
}

function lengthOf(body: Buffer): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(body.length + 4, 0);
  return b;
}

function dataRow(body: Buffer): string[] {
  const n = body.readUInt16BE(0);
  const out: string[] = [];
  let at = 2;
  for (let i = 0; i < n; i++) {
    const len = body.readInt32BE(at);
    at += 4;
    if (len < 0) out.push('');
    else {
      out.push(body.subarray(at, at + len).toString('utf8'));
      at += len;
    }
  }
  return out;
}

/** Just the TLS handshake (after an SSLRequest, or direct): the certificate served, then close. */
export async function peerCertificate(opts: Omit<TlsPgOptions, 'params'>): Promise<PeerCertificate> {
  let tls: TLSSocket;
  if (opts.negotiation === 'direct') tls = await handshake({ ...opts, params: {} });
  else {
    const { socket, answer } = await sslRequest(opts.port, opts.host, opts.timeoutMs ?? 10_000);
    if (answer !== 'S') {
      socket.destroy();
      throw new Error(`SSLRequest answered ${JSON.stringify(answer)}, not 'S'`);
    }
    tls = await handshake({ ...opts, params: {} }, socket);
  }
  const cert = tls.getPeerCertificate();
  tls.destroy();
  return cert;
}
