import type { Logger } from 'pino';

/**
 * Waits for SIGINT/SIGTERM (or `done`), runs `stop` once with the signal, and resolves with the
 * exit code. A second signal while stopping exits at once.
 */
export async function runUntilSignal(log: Logger, stop: (signal: 'SIGINT' | 'SIGTERM') => Promise<void>, done?: Promise<number>): Promise<number> {
  const signalled = new Promise<'SIGINT' | 'SIGTERM'>((resolve) => {
    process.once('SIGINT', () => resolve('SIGINT'));
    process.once('SIGTERM', () => resolve('SIGTERM'));
  });
  const first = await Promise.race([signalled.then((s) => ({ signal: s })), (done ?? new Promise<never>(() => {})).then((code) => ({ code }))]);
  if ('code' in first) return first.code;
  log.info({ signal: first.signal }, 'shutting down');
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => {
      log.warn({ signal: sig }, 'second signal while stopping: exiting now');
      process.exit(sig === 'SIGINT' ? 130 : 143);
    });
  }
  await stop(first.signal);
  return 0;
}
