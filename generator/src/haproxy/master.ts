// Runs HAProxy in master-worker mode as a child process and talks to its master CLI.

import { spawn, type ChildProcess } from 'node:child_process';
import { createConnection } from 'node:net';
import type { Logger } from 'pino';
import { LineSplitter } from '../lines.js';
import { haproxyBinary } from './check.js';

export interface HaproxyMaster {
  readonly pid: number;
  /** Resolves with the exit code when the master exits. */
  readonly exited: Promise<number | null>;
  /** Once exited: why, for one error line (HAProxy's last alerts, or why it could not be run); before: undefined. */
  exitReason(): string | undefined;
  /**
   * Once exited: whether a stop signal sent to HAProxy ended it: its master logged "Exiting Master
   * process" (SIGTERM, SIGINT or SIGUSR1 reached it), or it exited 130 (SIGINT reached the worker
   * first, as Ctrl-C to the whole process group does). A crash, even one HAProxy 3.1+ exits 0 for
   * (a previous worker still serving after a failed reload), is not.
   */
  signalled(): boolean;
  /** Soft stop: workers finish their sessions up to `graceMs`, then a hard stop. */
  stop(graceMs?: number): Promise<void>;
}

export interface StartOptions {
  readonly configPath: string;
  readonly masterSocket: string;
  readonly pidFile: string;
  readonly log: Logger;
  /** Where HAProxy's own stdout (its traffic log) goes; defaults to ours. */
  readonly stdout?: 'inherit' | 'ignore';
}

/** An `[ALERT]    (pid) : text` line of HAProxy's, as its text. */
export function alertText(line: string): string {
  return line.replace(/^\[ALERT\]\s*\(\d+\)\s*:\s*/, '');
}

/** HAProxy's longest stderr line logged whole (an alert quotes a config line; the rest follows as another). */
const MAX_STDERR_LINE_CHARS = 16_384;

/** The HAProxy masters this process started that still run (killStartedMasters). */
const started = new Set<ChildProcess>();

/**
 * Hard-stops every HAProxy master this process started and that still runs; returns how many. For
 * a pgroute that must exit before it could stop them itself (a signal during its start-up): an
 * HAProxy left behind would keep the port and serve a configuration nobody updates.
 */
export function killStartedMasters(): number {
  for (const c of started) c.kill('SIGTERM');
  return started.size;
}

export function startHaproxyMaster(opts: StartOptions): HaproxyMaster {
  const args = ['-W', '-db', '-S', `${opts.masterSocket},mode,600`, '-p', opts.pidFile, '-f', opts.configPath];
  const child: ChildProcess = spawn(haproxyBinary(), args, { stdio: ['ignore', opts.stdout ?? 'inherit', 'pipe'] });
  started.add(child);
  child.stderr?.setEncoding('utf8');
  // An old worker prints one "Proxy <name> stopped" line per backend when a reload stops it: at
  // 10,000 tenants that is 10,000 lines. They are counted and logged as one line.
  let stoppedProxies = 0;
  // HAProxy's last alerts: what a failed start says (a port in use, a file it cannot read).
  const alerts: string[] = [];
  let reason: string | undefined;
  let flushStopped: NodeJS.Timeout | undefined;
  let masterAsked = false;
  let exitCode: number | null = null;
  const onLine = (raw: string): void => {
    const line = raw.trim();
    if (line === '') return;
    if (/Proxy \S+ stopped \(cumulated conns/.test(line)) {
      stoppedProxies++;
      clearTimeout(flushStopped);
      flushStopped = setTimeout(() => {
        opts.log.info({ proxies: stoppedProxies }, 'haproxy: an old worker stopped its proxies');
        stoppedProxies = 0;
      }, 200);
      return;
    }
    if (/\bExiting Master process\b/.test(line)) masterAsked = true;
    if (line.startsWith('[ALERT]')) {
      opts.log.error({ haproxy: line }, 'haproxy');
      alerts.push(alertText(line));
      if (alerts.length > 5) alerts.shift();
    }
    else if (line.startsWith('[WARNING]')) opts.log.warn({ haproxy: line }, 'haproxy');
    else opts.log.info({ haproxy: line }, 'haproxy');
  };
  // A pipe gives out what HAProxy wrote in chunks that need not end on a line: a line split in two
  // would be logged as two, and "Exiting Master process" split would not be recognised.
  const lines = new LineSplitter(MAX_STDERR_LINE_CHARS);
  child.stderr?.on('data', (chunk: string) => lines.push(chunk).forEach(onLine));
  child.stderr?.on('end', () => lines.end().forEach(onLine));
  const exited = new Promise<number | null>((resolve) => {
    child.on('exit', (code, signal) => {
      started.delete(child);
      exitCode = code;
      // Its last lines (the alerts, "Exiting Master process") may still be in the pipe: read them
      // first, for at most a second (a process it started could hold the pipe open).
      const stderr = child.stderr;
      const drained = stderr === null || stderr.readableEnded ? Promise.resolve() : new Promise<void>((r) => {
        const timer = setTimeout(r, 1_000);
        stderr.once('close', () => {
          clearTimeout(timer);
          r();
        });
      });
      void drained.then(() => {
        opts.log.info({ code, signal }, 'haproxy master exited');
        reason = `HAProxy (${haproxyBinary()}) exited with ${signal === null ? `code ${code}` : signal}${alerts.length === 0 ? ' (see its log lines above)' : `:\n${alerts.join('\n')}`}`;
        resolve(code);
      });
    });
    child.on('error', (err) => {
      started.delete(child);
      opts.log.error({ err: err.message }, `cannot start ${haproxyBinary()}`);
      reason = (err as NodeJS.ErrnoException).code === 'ENOENT'
        ? `cannot run ${haproxyBinary()}: not installed or not on PATH; install HAProxy 2.6 or later, or set PGROUTE_HAPROXY to its path`
        : `cannot run ${haproxyBinary()}: ${err.message}`;
      resolve(127);
    });
  });
  return {
    pid: child.pid ?? -1,
    exited,
    exitReason: () => reason,
    signalled: () => masterAsked || exitCode === 130,
    async stop(graceMs = 5_000) {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGUSR1'); // soft stop: stop listening, let sessions finish
      const timer = setTimeout(() => child.kill('SIGTERM'), graceMs);
      const killer = setTimeout(() => child.kill('SIGKILL'), graceMs + 3_000);
      await exited;
      clearTimeout(timer);
      clearTimeout(killer);
    },
  };
}

/**
 * How a CLI exchange failed. `absent`: no socket at that path; `refused`: nothing accepted the
 * connection. Neither sent the command. `dropped`: the connection was reset or broken before an
 * answer (the command may or may not have run); `timeout`: no answer in time.
 */
export type CliFailure = 'absent' | 'refused' | 'dropped' | 'timeout' | 'other';

export class HaproxyCliError extends Error {
  constructor(
    message: string,
    readonly failure: CliFailure,
    /** The socket error without the path ("connect ECONNREFUSED"), for messages naming the socket once. */
    readonly reason: string,
  ) {
    super(message);
  }
}

const FAILURES: Readonly<Record<string, CliFailure>> = { ENOENT: 'absent', ECONNREFUSED: 'refused', ECONNRESET: 'dropped', EPIPE: 'dropped' };

/**
 * Sends a command line (several commands may be joined with ';') to a HAProxy CLI socket, master or
 * admin, and returns the whole answer. `quit` is appended: the master CLI keeps the connection open
 * otherwise.
 */
export function haproxyCli(socketPath: string, command: string, timeoutMs = 5_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = createConnection(socketPath);
    let out = '';
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new HaproxyCliError(`HAProxy CLI ${socketPath} did not answer "${command}" within ${timeoutMs} ms`, 'timeout', `no answer within ${timeoutMs} ms`));
    }, timeoutMs);
    sock.setEncoding('utf8');
    sock.on('connect', () => sock.write(`${command}; quit\n`));
    sock.on('data', (d: string) => (out += d));
    sock.on('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      reject(new HaproxyCliError(`HAProxy CLI ${socketPath}: ${err.message}`, FAILURES[err.code ?? ''] ?? 'other', err.syscall === undefined ? err.message : `${err.syscall} ${err.code ?? ''}`.trim()));
    });
    sock.on('close', () => {
      clearTimeout(timer);
      resolve(out);
    });
  });
}

/**
 * haproxyCli to a master CLI, tried again for up to `waitMs` while the master drops connections:
 * for a moment while it re-executes itself (after forking its worker, at start and at every reload,
 * up to 3.0) it refuses them, or accepts them and closes them unanswered. A command that may run
 * twice (`repeatable`: it only reads, and always answers) is tried again after any drop, an empty
 * answer included; any other only after a refusal, which sent nothing. Errors name the socket once
 * and say what to check; their `failure` is the last attempt's.
 */
export async function masterCli(masterSocket: string, command: string, opts: { readonly repeatable: boolean; readonly waitMs: number }): Promise<string> {
  const deadline = Date.now() + opts.waitMs;
  for (;;) {
    let last: HaproxyCliError;
    try {
      const answer = await haproxyCli(masterSocket, command);
      if (answer !== '' || !opts.repeatable) return answer;
      last = new HaproxyCliError('closed without an answer', 'dropped', 'closed without an answer');
    } catch (err) {
      if (!(err instanceof HaproxyCliError)) throw err;
      if (err.failure === 'absent') throw new HaproxyCliError(`no HAProxy master socket at ${masterSocket}: is HAProxy running?`, 'absent', err.reason);
      if (!(err.failure === 'refused' || (opts.repeatable && err.failure === 'dropped'))) throw err;
      last = err;
    }
    if (Date.now() >= deadline) {
      throw new HaproxyCliError(`the HAProxy master on ${masterSocket} kept refusing or dropping connections for ${opts.waitMs} ms (${last.reason}): is HAProxy running?`, last.failure, last.reason);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}
