// Waiting for a server to listen: HAProxy's public port after a start (and, through the index, every
// test and benchmark that waits for a port).

import { createConnection } from 'node:net';

/**
 * Resolves once host:port accepts a TCP connection (tried every `intervalMs`); rejects after
 * timeoutMs, or as soon as `abort` settles (the process that should listen has exited).
 */
export async function waitForTcp(host: string, port: number, timeoutMs: number, abort?: Promise<unknown>, intervalMs = 50): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let aborted = false;
  void abort?.then(
    () => (aborted = true),
    () => (aborted = true),
  );
  while (Date.now() < deadline) {
    if (aborted) throw new Error(`gave up waiting for ${host}:${port}: the process exited`);
    const ok = await new Promise<boolean>((resolve) => {
      const s = createConnection({ host, port });
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, intervalMs));
  }
  throw new Error(`${host}:${port} did not accept connections within ${timeoutMs} ms`);
}
