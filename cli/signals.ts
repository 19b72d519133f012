import type { Logger } from 'pino';

/** Waits for SIGINT/SIGTERM (or `done`), runs `stop` once, and resolves with the exit code. */
export async function runUntilSignal(log: Logger, stop: () => Promise<void>, done?: Promise<number>): Promise<number> {
  const signalled = new Promise<string>((resolve) => {
    process.once('SIGINT', () => resolve('SIGINT'));
    process.once('SIGTERM', () => resolve('SIGTERM'));
  });
  const first = await Promise.race([signalled.then((s) => ({ signal: s })), (done ?? new Promise<never>(() => {})).then((code) => ({ code }))]);
  if ('code' in first) return first.code;
  log.info({ signal: first.signal }, 'shutting down');
  const again = signalled.then(() => undefined);
  process.once('SIGINT', () => {
    log.warn('second interrupt: exiting now');
    process.exit(130);
  });
  await Promise.race([stop(), again]);
  return 0;
}
