// The copies of a fanned-out cancel: the PROXY v2 header byte for byte, and the sender against a
// real unix socket standing in for HAProxy's pgroute-cancel-copy frontend (delivered, refused,
// silent past the timeout, too many at once), every outcome counted and none thrown.

import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { createAgentMetrics, type AgentMetrics } from '../../src/metrics.js';
import { encodeCancelRequest } from '../../src/pg/frontend.js';
import { CancelCopies } from '../../src/server/cancel-copies.js';
import { encodeProxyV2, PP2_TYPE_AUTHORITY } from '../../src/server/proxy-v2.js';

const SIG = '0d0a0d0a000d0a515549540a';

describe('encodeProxyV2', () => {
  it('IPv4: signature, PROXY over TCP4, addresses and ports, then the AUTHORITY TLV', () => {
    const h = encodeProxyV2('127.0.0.31', 'pg.acme.primary');
    const name = Buffer.from('pg.acme.primary');
    expect(h.subarray(0, 12).toString('hex')).toBe(SIG);
    expect(h[12]).toBe(0x21);
    expect(h[13]).toBe(0x11);
    expect(h.readUInt16BE(14)).toBe(12 + 3 + name.length);
    expect([...h.subarray(16, 20)]).toEqual([127, 0, 0, 31]);
    expect(h.subarray(20, 28).toString('hex')).toBe('0000000000000000');
    expect(h[28]).toBe(PP2_TYPE_AUTHORITY);
    expect(h.readUInt16BE(29)).toBe(name.length);
    expect(h.subarray(31).toString()).toBe('pg.acme.primary');
  });

  it('IPv6 over TCP6; an IPv4-mapped address goes as IPv4', () => {
    const h = encodeProxyV2('2001:db8::7', 'pg.spare.3');
    expect(h[13]).toBe(0x21);
    expect(h.readUInt16BE(14)).toBe(36 + 3 + 10);
    expect(h.subarray(16, 32).toString('hex')).toBe('20010db8000000000000000000000007');
    expect(encodeProxyV2('::ffff:192.0.2.1', 'x')[13]).toBe(0x11);
  });

  it('refuses what is not an IP address or an authority that does not fit', () => {
    expect(() => encodeProxyV2('', 'x')).toThrow(RangeError);
    expect(() => encodeProxyV2('host.example', 'x')).toThrow(RangeError);
    expect(() => encodeProxyV2('127.0.0.1', '')).toThrow(RangeError);
    expect(() => encodeProxyV2('127.0.0.1', 'x'.repeat(256))).toThrow(RangeError);
  });
});

describe('CancelCopies', () => {
  let dir: string | undefined;
  let server: Server | undefined;
  afterEach(async () => {
    await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
    server = undefined;
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  async function listen(onConn: (s: Socket, data: Promise<Buffer>) => void): Promise<string> {
    dir = mkdtempSync(join(tmpdir(), 'pgroute-copies-'));
    const path = join(dir, 'cancel.sock');
    server = createServer((s) => {
      const parts: Buffer[] = [];
      const data = new Promise<Buffer>((resolve) => {
        s.on('data', (d: Buffer) => {
          parts.push(d);
          resolve(Buffer.concat(parts));
        });
      });
      onConn(s, data);
    });
    await new Promise<void>((r) => server!.listen(path, r));
    return path;
  }

  const count = async (m: AgentMetrics, result: string): Promise<number> =>
    (await m.cancelCopies.get()).values.find((v) => v.labels.result === result)?.value ?? 0;
  const pkt = encodeCancelRequest(4242, Buffer.from([1, 2, 3, 4]));

  it('sends the header and the cancel to each backend, counted as sent once the server closes', async () => {
    const got: Buffer[] = [];
    const socket = await listen((s, data) =>
      void data.then((d) => {
        got.push(d);
        s.end();
      }),
    );
    const metrics = createAgentMetrics();
    const copies = new CancelCopies({ socket, metrics, log: pino({ level: 'silent' }) });
    expect(await copies.send(['pg.acme.primary', 'pg.globex.primary'], pkt, '127.0.0.5')).toEqual(['sent', 'sent']);
    const names = got.map((d) => d.subarray(31, d.length - 16).toString()).sort();
    expect(names).toEqual(['pg.acme.primary', 'pg.globex.primary']);
    for (const d of got) expect(d.subarray(d.length - 16)).toEqual(pkt);
    expect(await count(metrics, 'sent')).toBe(2);
  });

  it('a socket nobody listens on fails, a silent one times out, too many at once are dropped; nothing throws', async () => {
    const metrics = createAgentMetrics();
    const log = pino({ level: 'silent' });
    const missing = new CancelCopies({ socket: join(tmpdir(), 'pgroute-no-such.sock'), metrics, log });
    expect(await missing.send(['pg.a.primary'], pkt, '127.0.0.5')).toEqual(['failed']);
    const socket = await listen(() => undefined); // reads, never closes
    const silent = new CancelCopies({ socket, metrics, log, timeoutMs: 100, maxInFlight: 2 });
    expect(await silent.send(['pg.a.primary', 'pg.b.primary', 'pg.c.primary'], pkt, '127.0.0.5')).toEqual(['timeout', 'timeout', 'dropped']);
    expect(await silent.send(['pg.a.primary'], pkt, 'not an address')).toEqual(['failed']);
    expect([await count(metrics, 'failed'), await count(metrics, 'timeout'), await count(metrics, 'dropped')]).toEqual([2, 2, 1]);
  });
});
