import { createConnection } from 'node:net';

/** Resolves once host:port accepts a TCP connection; rejects after timeoutMs or if `abort` settles first. */
export async function waitForTcp(host: string, port: number, timeoutMs: number, abort?: Promise<unknown>): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let aborted = false;
  void abort?.then(() => (aborted = true));
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
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${host}:${port} did not accept connections within ${timeoutMs} ms`);
}
