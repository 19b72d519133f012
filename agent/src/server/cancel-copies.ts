// Sends the copies of a CancelRequest to the further backends its client address was routed to
// (decide.ts puts them in RouteVerdict.copies). HAProxy sends the client's own cancel connection to
// one backend; each copy goes through HAProxy too, so backend TLS, health checks and the choice of a
// cluster's member still apply: a connection to HAProxy's internal unix socket (frontend
// pgroute-cancel-copy, haproxy/partials/cancel-copy.hbs) starting with a PROXY v2 header that
// carries the client's address and the backend's name, then the client's CancelRequest as it came.
//
// Bounded: at most `maxInFlight` copies at once (more are dropped and counted), each given up after
// `timeoutMs`. Never throws: every outcome is counted in pgroute_agent_cancel_copies_total.

import { createConnection } from 'node:net';
import type { Logger } from 'pino';
import type { AgentMetrics } from '../metrics.js';
import { encodeProxyV2 } from './proxy-v2.js';

export interface CancelCopiesOptions {
  /** HAProxy's internal cancel socket (StatePaths.cancelSocket). */
  readonly socket: string;
  readonly metrics: AgentMetrics;
  readonly log: Logger;
  /** Each copy is given up after this long. Default 5 s. */
  readonly timeoutMs?: number;
  /** Most copies in flight at once. Default 256. */
  readonly maxInFlight?: number;
}

export type CopyResult = 'sent' | 'failed' | 'timeout' | 'dropped';

export class CancelCopies {
  readonly #opts: CancelCopiesOptions;
  #inFlight = 0;

  constructor(opts: CancelCopiesOptions) {
    this.#opts = opts;
  }

  /** Sends `packet` from `source` to each of `backends`; resolves with each one's result (never rejects). */
  send(backends: readonly string[], packet: Buffer, source: string): Promise<CopyResult[]> {
    return Promise.all(backends.map((b) => this.#one(b, packet, source)));
  }

  #one(backend: string, packet: Buffer, source: string): Promise<CopyResult> {
    const { metrics, log } = this.#opts;
    const done = (result: CopyResult, err?: string): CopyResult => {
      metrics.cancelCopies.labels(result).inc();
      if (result !== 'sent') log.warn({ backend, client: source, result, ...(err === undefined ? {} : { err }) }, 'cancel copy not delivered');
      return result;
    };
    if (this.#inFlight >= (this.#opts.maxInFlight ?? 256)) return Promise.resolve(done('dropped'));
    let header: Buffer;
    try {
      header = encodeProxyV2(source, backend);
    } catch (err) {
      return Promise.resolve(done('failed', (err as Error).message));
    }
    this.#inFlight++;
    return new Promise<CopyResult>((resolve) => {
      let settled = false;
      let written = false;
      const settle = (result: CopyResult, err?: string): void => {
        if (settled) return;
        settled = true;
        this.#inFlight--;
        clearTimeout(timer);
        sock.destroy();
        resolve(done(result, err));
      };
      const sock = createConnection(this.#opts.socket);
      const timer = setTimeout(() => settle('timeout'), this.#opts.timeoutMs ?? 5_000);
      sock.on('connect', () => sock.write(Buffer.concat([header, packet]), () => (written = true)));
      // PostgreSQL closes a cancel connection once it has read the request; HAProxy passes the close on.
      sock.on('close', () => settle(written ? 'sent' : 'failed', written ? undefined : 'closed before the cancel was written'));
      sock.on('error', (err) => settle('failed', err.message));
    });
  }
}
