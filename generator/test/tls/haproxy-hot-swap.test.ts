// Integration: the real HAProxy serves the auto-mode certificate, and swapCertificate replaces it
// through the runtime API: new connections see the new serial, an open TLS session keeps working.
// Fixed ports 24200-24299 (this file uses 24200 and 24201).

import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { once } from 'node:events';
import { readFile, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { connect, type TLSSocket } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { haproxyCli } from '../../src/haproxy/master.js';
import { normalizeSerial } from '../../src/tls/certificates.js';
import { swapCertificate } from '../../src/tls/hot-swap.js';
import { ensureAutoTls } from '../../src/tls/store.js';
import { silentLog, tempDir } from './support.js';

const HAPROXY = process.env.PGROUTE_HAPROXY ?? '/usr/sbin/haproxy';
const TLS_PORT = 24200;
const ECHO_PORT = 24201;

let dir: string;
let cleanup: () => Promise<void>;
let haproxy: ChildProcess | undefined;
let haproxyLog = '';
let echo: Server;
let adminSocket: string;

function tlsConnect(caPem: string): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    const sock = connect({ host: '127.0.0.1', port: TLS_PORT, servername: 'localhost', ca: caPem });
    sock.setEncoding('utf8');
    sock.once('secureConnect', () => resolve(sock));
    sock.once('error', reject);
  });
}

function roundTrip(sock: TLSSocket, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let got = '';
    const onData = (d: string): void => {
      got += d;
      if (got.length >= text.length) {
        sock.off('data', onData);
        resolve(got);
      }
    };
    sock.on('data', onData);
    sock.once('error', reject);
    sock.write(text);
  });
}

const servedSerial = (sock: TLSSocket): string => normalizeSerial(sock.getPeerCertificate().serialNumber);

async function waitFor(what: string, probe: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await probe().catch(() => false)) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${what} not ready within ${timeoutMs} ms; haproxy said:\n${haproxyLog}`);
}

describe('hot swap with the real HAProxy', () => {
  beforeAll(() => {
    // Required, never skipped: scripts/setup.sh installs HAProxy.
    expect(existsSync(HAPROXY), `${HAPROXY} is missing: run scripts/setup.sh`).toBe(true);
  });
  let caPem: string;
  let serverPemPath: string;
  let firstSerial: string;

  beforeAll(async () => {
    ({ dir, cleanup } = await tempDir());
    const tls = await ensureAutoTls({ stateDir: dir, sans: ['localhost'], log: silentLog });
    ({ caPem, serverPemPath } = tls);
    firstSerial = tls.serialHex;

    echo = createServer((s) => s.pipe(s));
    echo.listen(ECHO_PORT, '127.0.0.1');
    await once(echo, 'listening');

    adminSocket = join(dir, 'admin.sock');
    const cfg = join(dir, 'haproxy.cfg');
    await writeFile(
      cfg,
      [
        'global',
        `  stats socket ${adminSocket} mode 600 level admin`,
        '  ssl-default-bind-options ssl-min-ver TLSv1.2',
        'defaults',
        '  mode tcp',
        '  timeout connect 2s',
        '  timeout client 30s',
        '  timeout server 30s',
        'frontend pg',
        `  bind 127.0.0.1:${TLS_PORT} ssl crt ${serverPemPath}`,
        '  default_backend echo',
        'backend echo',
        `  server echo 127.0.0.1:${ECHO_PORT}`,
        '',
      ].join('\n'),
    );
    haproxy = spawn(HAPROXY, ['-db', '-f', cfg], { stdio: ['ignore', 'ignore', 'pipe'] });
    haproxy.stderr?.setEncoding('utf8');
    haproxy.stderr?.on('data', (d: string) => (haproxyLog += d));
    await waitFor('haproxy admin socket', async () => (await haproxyCli(adminSocket, 'show ssl cert', 1_000)).includes(serverPemPath));
  }, 30_000);

  afterAll(async () => {
    if (haproxy !== undefined && haproxy.exitCode === null) {
      haproxy.kill('SIGTERM');
      await once(haproxy, 'exit');
    }
    echo?.close();
    await cleanup?.();
  });

  it('serves the new certificate to new connections while an open session keeps working', async () => {
    const old = await tlsConnect(caPem);
    expect(old.authorized).toBe(true);
    expect(servedSerial(old)).toBe(firstSerial);
    expect(await roundTrip(old, 'before\n')).toBe('before\n');

    // the names change: a new certificate is issued on disk, then pushed without a reload
    const renewed = await ensureAutoTls({ stateDir: dir, sans: ['localhost', '127.0.0.1'], log: silentLog });
    expect(renewed.renewed).toBe(true);
    expect(renewed.serverPemPath).toBe(serverPemPath);
    expect(renewed.serialHex).not.toBe(firstSerial);
    await swapCertificate(adminSocket, serverPemPath, await readFile(serverPemPath, 'utf8'));

    const fresh = await tlsConnect(caPem);
    expect(fresh.authorized).toBe(true);
    expect(servedSerial(fresh)).toBe(renewed.serialHex);
    expect(await roundTrip(fresh, 'new\n')).toBe('new\n');
    fresh.destroy();

    // the session opened before the swap still carries bytes, with the old certificate
    expect(await roundTrip(old, 'after\n')).toBe('after\n');
    expect(servedSerial(old)).toBe(firstSerial);
    old.destroy();

    const shown = await haproxyCli(adminSocket, `show ssl cert ${serverPemPath}`);
    expect(normalizeSerial(/Serial: ([0-9A-Fa-f]+)/.exec(shown)?.[1] ?? '')).toBe(renewed.serialHex);
    expect(haproxy?.exitCode).toBeNull();
  }, 20_000);

  it('refuses a certificate for a path HAProxy does not serve, leaving the served one alone', async () => {
    const before = await haproxyCli(adminSocket, `show ssl cert ${serverPemPath}`);
    const pem = await readFile(serverPemPath, 'utf8');
    await expect(swapCertificate(adminSocket, join(dir, 'other.pem'), pem)).rejects.toThrow(/HAProxy refused the new TLS certificate for .*other\.pem/);
    expect(await haproxyCli(adminSocket, 'show ssl cert')).not.toMatch(/^\*/m); // no transaction left behind
    expect(await haproxyCli(adminSocket, `show ssl cert ${serverPemPath}`)).toBe(before);
  }, 20_000);
});
