// Sessions and cancels from a chosen client address (127.0.0.x), as an application host would
// open them: node-postgres sessions whose socket is bound to that address, and the CancelRequest
// libpq sends (a new connection carrying the session's process id and secret key).

import { Socket } from 'node:net';
import pg from 'pg';
import { encodeCancelRequest } from '../../agent/src/pg/frontend.js';
import { exchange, type Exchange } from './wire.js';

/** A socket whose connect() binds `localAddress` (and `localPort`) first (node-postgres takes a stream factory). */
function boundSocket(localAddress: string, localPort?: number): () => Socket {
  return () => {
    const s = new Socket();
    const connect = s.connect.bind(s) as (options: { port: number; host: string; localAddress: string; localPort?: number }) => Socket;
    (s as unknown as { connect: (port: number, host: string) => Socket }).connect = (port, host) => connect({ port, host, localAddress, ...(localPort === undefined ? {} : { localPort }) });
    return s;
  };
}

export interface AddressedSession {
  readonly client: pg.Client;
  /** BackendKeyData of the session: what a CancelRequest must name. */
  readonly pid: number;
  readonly key: Buffer;
  /** Runs `SELECT pg_sleep(seconds)`; resolves 'finished' or the error message. */
  sleep(seconds: number): Promise<string>;
  end(): Promise<void>;
}

/** A node-postgres session from `localAddress` (and `localPort`) through host:port to `database` as user app. */
export async function sessionFrom(localAddress: string, port: number, database: string, host = '127.0.0.1', localPort?: number): Promise<AddressedSession> {
  const client = new pg.Client({ host, port, user: 'app', password: 'app', database, stream: boundSocket(localAddress, localPort) });
  await client.connect();
  const c = client as unknown as { processID: number; secretKey: number };
  const key = Buffer.alloc(4);
  key.writeInt32BE(c.secretKey, 0);
  return {
    client,
    pid: c.processID,
    key,
    sleep: (seconds) =>
      client.query(`SELECT pg_sleep(${seconds})`).then(
        () => 'finished',
        (e: Error) => e.message,
      ),
    end: () => client.end().catch(() => undefined),
  };
}

/** Sends the CancelRequest of `session` from `localAddress` to 127.0.0.1:port, as libpq does. */
export function cancelFrom(localAddress: string, port: number, session: Pick<AddressedSession, 'pid' | 'key'>): Promise<Exchange> {
  return exchange(port, [encodeCancelRequest(session.pid, session.key)], { localAddress, timeoutMs: 5_000 });
}

export const CANCELLED = /canceling statement due to user request/;
