// A raw PostgreSQL StartupMessage probe: does a connection for this database get past routing?
// The answer's first message decides: 'R' (Authentication*, from the backend) = routed; 'E'
// (ErrorResponse, e.g. pgroute's 3D000 for a tenant it does not serve yet) = refused; anything else
// (closed, timeout) = not routed. No SSLRequest: routing is what is measured.

import { connect } from 'node:net';
import { sleep } from './procs.js';

export type ProbeOutcome = { readonly routed: true } | { readonly routed: false; readonly why: string };

export function startupMessage(user: string, database: string): Buffer {
  const body = Buffer.concat([Buffer.from([0, 3, 0, 0]), Buffer.from(`user\0${user}\0database\0${database}\0\0`, 'utf8')]);
  const len = Buffer.alloc(4);
  len.writeInt32BE(body.length + 4);
  return Buffer.concat([len, body]);
}

/** One connection attempt through host:port for `database`. */
export function probeOnce(port: number, database: string, host = '127.0.0.1', timeoutMs = 3_000): Promise<ProbeOutcome> {
  return new Promise((resolve) => {
    const s = connect({ host, port });
    let done = false;
    let got = Buffer.alloc(0);
    const finish = (o: ProbeOutcome): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      s.destroy();
      resolve(o);
    };
    const timer = setTimeout(() => finish({ routed: false, why: 'timeout' }), timeoutMs);
    s.setNoDelay(true);
    s.once('connect', () => s.write(startupMessage('app', database)));
    s.on('data', (d: Buffer) => {
      got = Buffer.concat([got, d]);
      const type = String.fromCharCode(got[0] ?? 0);
      if (type === 'R') finish({ routed: true });
      else if (type === 'E') {
        // ErrorResponse fields: type byte + string; C = SQLSTATE.
        if (got.length < 5 || got.length < 1 + got.readInt32BE(1)) return;
        const fields = got.subarray(5, 1 + got.readInt32BE(1)).toString('utf8').split('\0');
        finish({ routed: false, why: fields.find((f) => f.startsWith('C'))?.slice(1) ?? 'E' });
      } else finish({ routed: false, why: `answer ${JSON.stringify(type)}` });
    });
    s.once('error', (err: NodeJS.ErrnoException) => finish({ routed: false, why: err.code ?? err.message }));
    s.once('close', () => finish({ routed: false, why: 'closed' }));
  });
}

/**
 * Probes every `intervalMs` until a connection for `database` is routed; resolves with the time it
 * was first routed (Date.now()) or throws after `timeoutMs` naming the last outcome.
 */
export async function untilRoutable(port: number, database: string, timeoutMs: number, intervalMs = 5): Promise<{ at: number; attempts: number }> {
  const deadline = Date.now() + timeoutMs;
  let last: ProbeOutcome = { routed: false, why: 'not tried' };
  let attempts = 0;
  while (Date.now() < deadline) {
    attempts++;
    last = await probeOnce(port, database, '127.0.0.1', Math.max(100, Math.min(3_000, deadline - Date.now())));
    if (last.routed) return { at: Date.now(), attempts };
    await sleep(intervalMs);
  }
  throw new Error(`database ${database} on :${port} not routable within ${timeoutMs} ms (last: ${last.routed ? 'routed' : last.why})`);
}
