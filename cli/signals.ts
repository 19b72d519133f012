import type { Logger } from 'pino';
import { killStartedMasters } from '../generator/src/index.js';

type StopSignal = 'SIGINT' | 'SIGTERM';
const STOP_SIGNALS = ['SIGINT', 'SIGTERM'] as const;
const exitCode = (sig: StopSignal): number => (sig === 'SIGINT' ? 130 : 143);

/**
 * One listener per stop signal for the life of the process, never removed: what a signal does
 * depends on the phase it comes in. Listeners are not handed over from start-up to running: when
 * Node's last listener of a signal goes, it stops watching it, and a signal that arrived during
 * that turn of the event loop (not yet dispatched) is dropped, so a SIGTERM sent the moment start-up
 * finished was lost and the process ran on (seen in a benchmark: `pgroute up` waited for ever).
 */
let onSignal: ((sig: StopSignal) => void) | undefined;
/** A signal that came after start-up, before runUntilSignal took over. */
let pending: StopSignal | undefined;

/**
 * Exits at once with the signal's code, stopping the HAProxy this process started first: Node's
 * exit would leave it running and listening on the public port with no agent behind it.
 */
function exitNow(log: Logger, sig: StopSignal, why: string): never {
  const haproxy = killStartedMasters();
  log.warn({ signal: sig, haproxy }, why);
  process.exit(exitCode(sig));
}

function listen(handler: (sig: StopSignal) => void): void {
  if (onSignal === undefined) for (const sig of STOP_SIGNALS) process.on(sig, () => onSignal?.(sig));
  onSignal = handler;
}

/**
 * Waits for SIGINT/SIGTERM (or `done`), runs `stop` once with the signal, and resolves with the
 * exit code. A second signal while stopping exits at once (130, 143), stopping HAProxy too.
 */
export async function runUntilSignal(log: Logger, stop: (signal: StopSignal) => Promise<void>, done?: Promise<number>): Promise<number> {
  const signalled = new Promise<StopSignal>((resolve) => {
    if (pending !== undefined) resolve(pending);
    else listen(resolve);
  });
  const first = await Promise.race([signalled.then((s) => ({ signal: s })), (done ?? new Promise<never>(() => {})).then((code) => ({ code }))]);
  if ('code' in first) return first.code;
  log.info({ signal: first.signal }, 'shutting down');
  listen((sig) => exitNow(log, sig, 'second signal while stopping: exiting now, HAProxy with it (open sessions are closed)'));
  await stop(first.signal);
  return 0;
}

/**
 * Runs a long-running command's start-up. A SIGINT/SIGTERM before it finishes exits at once (130,
 * 143), as Node's default would, but first stops the HAProxy the start-up may have spawned already,
 * which Node's default would leave running and listening. The start is not awaited: it may be
 * waiting for a source that never answers. A signal after it finished is kept for runUntilSignal.
 */
export async function startOrExit<T>(log: Logger, start: () => Promise<T>): Promise<T> {
  listen((sig) => exitNow(log, sig, 'signal during start-up: exiting now'));
  // A start-up that fails keeps this handler: the HAProxy it may have spawned is stopped all the same.
  const started = await start();
  listen((sig) => {
    if (pending === undefined) pending = sig;
    else exitNow(log, sig, 'second signal before stopping began: exiting now, HAProxy with it'); // as while stopping
  });
  return started;
}
