// A real TLS handshake with Node on both ends: what a verify-full client checks.

import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { connect, createServer, type Server, type TLSSocket } from 'node:tls';
import { readFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureAutoTls } from '../../src/tls/store.js';
import { silentLog, tempDir } from './support.js';

let server: Server;
let port: number;
let caPem: string;
let serialHex: string;
let cleanup: () => Promise<void>;

beforeAll(async () => {
  const t = await tempDir();
  cleanup = t.cleanup;
  const tls = await ensureAutoTls({ stateDir: t.dir, sans: ['db.example.com', '127.0.0.1'], log: silentLog });
  caPem = tls.caPem;
  serialHex = tls.serialHex;
  const pem = await readFile(tls.serverPemPath, 'utf8'); // the very file HAProxy would load
  server = createServer({ cert: pem, key: pem }, (sock) => sock.end('hello\n'));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  port = (server.address() as AddressInfo).port;
});
afterAll(async () => {
  server?.close();
  await cleanup?.();
});

function handshake(opts: { servername?: string; ca?: string }): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    const sock = connect({ host: '127.0.0.1', port, ...opts });
    sock.once('secureConnect', () => resolve(sock));
    sock.once('error', reject);
  });
}

describe('TLS handshake with an auto-mode certificate', () => {
  it('is authorized for a DNS SAN given as servername, with the CA as the only trust anchor', async () => {
    const sock = await handshake({ servername: 'db.example.com', ca: caPem });
    expect(sock.authorized).toBe(true);
    expect(sock.getPeerCertificate().serialNumber.toLowerCase()).toContain(serialHex);
    sock.destroy();
  });

  it('is authorized for the IP SAN (no servername: the host is checked)', async () => {
    const sock = await handshake({ ca: caPem });
    expect(sock.authorized).toBe(true);
    sock.destroy();
  });

  it('fails for a name not in the certificate, and without the CA', async () => {
    await expect(handshake({ servername: 'other.example.com', ca: caPem })).rejects.toMatchObject({ code: 'ERR_TLS_CERT_ALTNAME_INVALID' });
    await expect(handshake({ servername: 'db.example.com' })).rejects.toMatchObject({ code: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE' });
  });
});
