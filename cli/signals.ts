import type { Logger } from 'pino';
import { killStartedMasters } from '../generator/src/index.js';

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

/**
 * Runs a long-running command's start-up. A SIGINT/SIGTERM before it finishes exits at once (130,
 * 143), as Node's default would, but first stops the HAProxy the start-up may have spawned already,
 * which Node's default would leave running and listening. The start is not awaited: it may be
 * waiting for a source that never answers.
 */
export async function startOrExit<T>(log: Logger, start: () => Promise<T>): Promise<T> {
  const handlers = (['SIGINT', 'SIGTERM'] as const).map((sig) => {
    const handler = (): void => {
      const haproxy = killStartedMasters();
      log.warn({ signal: sig, haproxy }, 'signal during start-up: exiting now');
      process.exit(sig === 'SIGINT' ? 130 : 143);
    };
    process.once(sig, handler);
    return [sig, handler] as const;
  });
  try {
    return await start();
  } finally {
    for (const [sig, handler] of handlers) process.off(sig, handler);
  }
}
