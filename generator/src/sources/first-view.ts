// Start-up against an API that does not answer (the Kubernetes API server, dockerd). Neither
// client has a deadline of its own, so a list to an unreachable server (packets dropped, a proxy
// that accepts and never answers) would wait forever and say nothing. Each list gets a deadline,
// after which it counts as failed and is retried with backoff like any other failure; and while a
// first view is still awaited, a warning says every `intervalMs` what is awaited, from where, and
// the last error. Like client-go's reflectors in HAProxy's ingress controller (and Traefik's
// providers, which retry with backoff and log each failure), pgroute keeps trying rather than
// exiting; /readyz answers 503 meanwhile (run.ts), so no balancer sends it traffic it cannot route yet.

import type { Logger } from 'pino';

/** A list taking longer than this is abandoned and retried (client-go's default request timeout is none; kubectl's 30 s). */
export const LIST_DEADLINE_MS = 30_000;
/** How often the "still waiting" warning repeats while a first view is awaited. */
export const WAIT_LOG_MS = 10_000;

/** `promise`, or a rejection naming `what` once it has not settled within `ms`. */
export function withDeadline<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms);
  });
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}

/** What is still awaited (undefined: nothing) and the last error met trying. */
export type Awaited = () => { what: string; lastError?: string } | undefined;

export interface FirstListWait {
  /** Call when the first list arrived (or the watcher stopped): the warnings end. */
  done(): void;
}

/**
 * Warns every `intervalMs` until done(): `waiting()` says what is still awaited (undefined: nothing,
 * no warning) and its last error; `check` says what the operator should check.
 */
export function warnWhileWaiting(log: Logger, intervalMs: number, waiting: Awaited, check: string): FirstListWait {
  const started = Date.now();
  const timer = setInterval(() => {
    const w = waiting();
    if (w === undefined) return;
    const seconds = Math.round((Date.now() - started) / 1000);
    log.warn(
      { waitingSeconds: seconds, lastError: w.lastError ?? 'none yet (no answer)' },
      `still waiting for ${w.what} (${seconds} s so far; retrying with backoff): pgroute applies nothing from this source and /readyz answers 503 until it arrives; ${check}`,
    );
  }, intervalMs);
  timer.unref();
  return { done: () => clearInterval(timer) };
}

/** How a source awaits its first view: `watch` for as long as it takes, `plan` up to a deadline. */
export interface FirstViewWait {
  readonly log: Logger;
  /** The "still waiting" warning repeats this often while waiting without a deadline. */
  readonly intervalMs: number;
  readonly waiting: Awaited;
  /** What the operator should check, for the warning and the failure. */
  readonly check: string;
  /** Give up after this long (`plan` reads one view and must not hang); undefined: wait, warning. */
  readonly giveUpMs?: number;
  /** Called before giving up (the source stops its watchers). */
  readonly stop: () => Promise<void>;
}

/**
 * Awaits a source's first view. Without a deadline it warns every `intervalMs` while it is awaited
 * (warnWhileWaiting); with one it rejects after it, once the source is stopped, naming what was
 * awaited, for how long, the last error and what to check.
 */
export async function awaitFirstView(first: Promise<void>, wait: FirstViewWait): Promise<void> {
  if (wait.giveUpMs === undefined) {
    const warning = warnWhileWaiting(wait.log, wait.intervalMs, wait.waiting, wait.check);
    try {
      await first;
    } finally {
      warning.done();
    }
    return;
  }
  try {
    await withDeadline(first, wait.giveUpMs, 'the first list');
  } catch (err) {
    const w = wait.waiting();
    await wait.stop();
    if (w === undefined) throw err;
    throw new Error(`gave up waiting for ${w.what} after ${wait.giveUpMs / 1000} s: ${w.lastError ?? 'no answer'}; ${wait.check}`);
  }
}
