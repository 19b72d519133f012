// swapCertificate against a scripted fake CLI socket (exact bytes, answers, abort), and the
// renewal timer with fake timers. The real HAProxy is in haproxy-hot-swap.test.ts.

import { once } from 'node:events';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { cliArg } from '../../src/tls/cli-socket.js';
import { CertificateSwapError, checkCommitAnswer, checkSetAnswer, swapCertificate, watchRenewal } from '../../src/tls/hot-swap.js';
import { issueServerCertificate } from '../../src/tls/certificates.js';
import { silentLog, tempDir, testCa } from './support.js';

/** A CLI socket that records each connection's bytes and answers by the command's first word pair. */
async function fakeCli(path: string, answer: (request: string) => string): Promise<{ server: Server; requests: string[] }> {
  const requests: string[] = [];
  const server = createServer((sock) => {
    let buf = '';
    sock.setEncoding('utf8');
    sock.on('data', (d: string) => {
      buf += d;
      const payload = /<<\n/.test(buf.split('\n', 1)[0] + '\n');
      if (payload ? !buf.endsWith('\n\n') : !buf.endsWith('\n')) return;
      requests.push(buf);
      sock.end(answer(buf));
    });
  });
  server.listen(path);
  await once(server, 'listening');
  return { server, requests };
}

let dir: string;
let cleanup: () => Promise<void>;
let servers: Server[] = [];
beforeEach(async () => ({ dir, cleanup } = await tempDir()));
afterEach(async () => {
  for (const s of servers) s.close();
  servers = [];
  await cleanup();
});

async function material(): Promise<string> {
  const s = await issueServerCertificate({ ca: await testCa(), sans: ['localhost'], commonName: 'localhost', validityDays: 1 });
  return `${s.certPem}\n\n${s.keyPem}`; // blank lines on purpose: they must not reach HAProxy
}

describe('swapCertificate', () => {
  it('sends the payload form, then commit, and accepts HAProxy\'s answers', async () => {
    const sock = join(dir, 'admin.sock');
    const cli = await fakeCli(sock, (r) =>
      r.startsWith('set ssl cert') ? 'Transaction created for certificate /etc/pg route/server.pem!\n\n' : 'Committing /etc/pg route/server.pem.\nSuccess!\n\n',
    );
    servers.push(cli.server);
    const pem = await material();
    await swapCertificate(sock, '/etc/pg route/server.pem', pem);
    expect(cli.requests).toHaveLength(2);
    const [set, commit] = cli.requests as [string, string];
    expect(set.startsWith('set ssl cert /etc/pg\\ route/server.pem <<\n-----BEGIN CERTIFICATE-----\n')).toBe(true);
    expect(set.endsWith('-----END PRIVATE KEY-----\n\n')).toBe(true);
    expect(set.slice(0, -2)).not.toMatch(/\n\n/); // the only blank line is the terminator
    expect(commit).toBe('commit ssl cert /etc/pg\\ route/server.pem\n');
  });

  it('aborts and throws a clear error when HAProxy refuses the certificate', async () => {
    const sock = join(dir, 'admin.sock');
    const cli = await fakeCli(sock, (r) =>
      r.startsWith('set ssl cert') ? "unable to load certificate chain from CLI payload\nCan't update /x/server.pem!\n\n" : 'Transaction aborted for certificate \'/x/server.pem\'!\n\n',
    );
    servers.push(cli.server);
    await expect(swapCertificate(sock, '/x/server.pem', await material())).rejects.toThrow(
      "HAProxy refused the new TLS certificate for /x/server.pem (set ssl cert): unable to load certificate chain from CLI payload | Can't update /x/server.pem!",
    );
    expect(cli.requests.map((r) => r.split(' ', 3).join(' '))).toEqual(['set ssl cert', 'abort ssl cert']);
  });

  it('aborts when the commit fails', async () => {
    const sock = join(dir, 'admin.sock');
    const cli = await fakeCli(sock, (r) =>
      r.startsWith('set') ? 'Transaction updated for certificate /x/server.pem!\n' : r.startsWith('commit') ? 'Committing /x/server.pem\nFailed!\n' : 'Transaction aborted\n',
    );
    servers.push(cli.server);
    await expect(swapCertificate(sock, '/x/server.pem', await material())).rejects.toThrow(/could not commit .*Failed!/);
    expect(cli.requests.at(-1)).toBe('abort ssl cert /x/server.pem\n');
  });

  it('refuses material without a key before talking to HAProxy, and reports an absent socket', async () => {
    const s = await issueServerCertificate({ ca: await testCa(), sans: ['localhost'], commonName: 'localhost', validityDays: 1 });
    await expect(swapCertificate(join(dir, 'none.sock'), '/x', s.certPem)).rejects.toThrow(/holds no private key/);
    await expect(swapCertificate(join(dir, 'none.sock'), '/x', await material())).rejects.toThrow(CertificateSwapError);
  });

  it('reads the answers it must', () => {
    expect(() => checkSetAnswer('/p', 'Transaction created for certificate /p!\n')).not.toThrow();
    expect(() => checkSetAnswer('/p', 'Unknown command\n')).toThrow(/refused/);
    expect(() => checkCommitAnswer('/p', 'Committing /p...\nSuccess!\n')).not.toThrow();
    expect(() => checkCommitAnswer('/p', 'No ongoing transaction!\n')).toThrow(/could not commit/);
    expect(cliArg('a b;c\\d')).toBe('a\\ b\\;c\\\\d');
    expect(() => cliArg('a\nb')).toThrow(/line break/);
  });
});

describe('watchRenewal', () => {
  afterEach(() => vi.useRealTimers());

  it('swaps only after a renewal, and retries a failed swap at the next tick', async () => {
    vi.useFakeTimers();
    const renewals = [false, true, false, false, false];
    const ensure = vi.fn(async () => ({ renewed: renewals.shift() ?? false, serial: ensure.mock.calls.length }));
    let failSwap = true;
    const swapped: number[] = [];
    const swap = vi.fn(async (r: { serial: number }) => {
      if (failSwap) {
        failSwap = false;
        throw new Error('socket gone');
      }
      swapped.push(r.serial);
    });
    const watch = watchRenewal({ intervalMs: 1_000, ensure, swap, log: silentLog });
    await vi.advanceTimersByTimeAsync(999);
    expect(ensure).not.toHaveBeenCalled();
    await vi.advanceTimersByTimeAsync(1);
    expect(ensure).toHaveBeenCalledTimes(1);
    expect(swap).not.toHaveBeenCalled();
    await vi.advanceTimersByTimeAsync(1_000); // renewed, swap fails
    expect(swap).toHaveBeenCalledTimes(1);
    expect(swapped).toEqual([]);
    await vi.advanceTimersByTimeAsync(1_000); // not renewed again, but the pending swap is retried
    expect(swapped).toEqual([2]);
    await vi.advanceTimersByTimeAsync(1_000);
    expect(swap).toHaveBeenCalledTimes(2);
    await watch.stop();
    await vi.advanceTimersByTimeAsync(10_000);
    expect(ensure).toHaveBeenCalledTimes(4);
  });

  it('survives a failing ensure', async () => {
    vi.useFakeTimers();
    let calls = 0;
    const watch = watchRenewal({
      intervalMs: 100,
      ensure: async () => {
        calls++;
        if (calls === 1) throw new Error('disk full');
        return { renewed: false };
      },
      swap: async () => undefined,
      log: silentLog,
    });
    await vi.advanceTimersByTimeAsync(250);
    expect(calls).toBe(2);
    await watch.stop();
  });
});
