// Runs HAProxy in master-worker mode as a child process and talks to its master CLI.

import { spawn, type ChildProcess } from 'node:child_process';
import { createConnection } from 'node:net';
import type { Logger } from 'pino';
import { haproxyBinary } from './check.js';

export interface HaproxyMaster {
  readonly pid: number;
  /** Resolves with the exit code when the master exits. */
  readonly exited: Promise<number | null>;
  /** Once exited: why, for one error line (HAProxy's last alerts, or why it could not be run); before: undefined. */
  exitReason(): string | undefined;
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
  child.stderr?.on('data', (chunk: string) => {
    for (const raw of chunk.split('\n')) {
      const line = raw.trim();
      if (line === '') continue;
      if (/Proxy \S+ stopped \(cumulated conns/.test(line)) {
        stoppedProxies++;
        clearTimeout(flushStopped);
        flushStopped = setTimeout(() => {
          opts.log.info({ proxies: stoppedProxies }, 'haproxy: an old worker stopped its proxies');
          stoppedProxies = 0;
        }, 200);
        continue;
      }
      if (line.startsWith('[ALERT]')) {
        opts.log.error({ haproxy: line }, 'haproxy');
        alerts.push(line.replace(/^\[ALERT\]\s*\(\d+\)\s*:\s*/, ''));
        if (alerts.length > 5) alerts.shift();
      }
      else if (line.startsWith('[WARNING]')) opts.log.warn({ haproxy: line }, 'haproxy');
      else opts.log.info({ haproxy: line }, 'haproxy');
    }
  });
  const exited = new Promise<number | null>((resolve) => {
    child.on('exit', (code, signal) => {
      started.delete(child);
      opts.log.info({ code, signal }, 'haproxy master exited');
      reason = `HAProxy (${haproxyBinary()}) exited with ${signal === null ? `code ${code}` : signal}${alerts.length === 0 ? ' (see its log lines above)' : `:\n${alerts.join('\n')}`}`;
      resolve(code);
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
 * A CLI exchange that failed. `refused`: nothing accepted the connection, so no command was sent.
 * `dropped`: the connection was refused, reset or broken before an answer (a master re-executing
 * itself does all three); the command may or may not have run. `absent`: no socket at that path.
 */
export class HaproxyCliError extends Error {
  constructor(
    message: string,
    readonly refused: boolean,
    readonly dropped: boolean,
    readonly absent = false,
  ) {
    super(message);
  }
}

const DROPPED = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE']);

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
      reject(new HaproxyCliError(`HAProxy CLI ${socketPath} did not answer "${command}" within ${timeoutMs} ms`, false, false));
    }, timeoutMs);
    sock.setEncoding('utf8');
    sock.on('connect', () => sock.write(`${command}; quit\n`));
    sock.on('data', (d: string) => (out += d));
    sock.on('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      reject(new HaproxyCliError(`HAProxy CLI ${socketPath}: ${err.message}`, err.code === 'ECONNREFUSED', DROPPED.has(err.code ?? ''), err.code === 'ENOENT'));
    });
    sock.on('close', () => {
      clearTimeout(timer);
      resolve(out);
    });
  });
}

/**
 * haproxyCli to a master CLI, tried again for up to `waitMs` while the master drops connections:
 * for a moment while it re-executes itself (after forking its worker, at start and at every reload)
 * it refuses them, or accepts them and closes them unanswered. A command that may run twice
 * (`repeatable`: it only reads, and always answers) is tried again after any drop, an empty answer
 * included; any other only after a refusal, which carried nothing.
 */
export async function masterCli(masterSocket: string, command: string, opts: { readonly repeatable: boolean; readonly waitMs?: number }): Promise<string> {
  const waitMs = opts.waitMs ?? 5_000;
  const deadline = Date.now() + waitMs;
  for (;;) {
    let why: string;
    try {
      const answer = await haproxyCli(masterSocket, command);
      if (answer !== '' || !opts.repeatable) return answer;
      why = 'closed without an answer';
    } catch (err) {
      if (err instanceof HaproxyCliError && err.absent) throw new HaproxyCliError(`no HAProxy master socket at ${masterSocket}: is HAProxy running on this state dir?`, false, false, true);
      if (!(err instanceof HaproxyCliError && (opts.repeatable ? err.dropped : err.refused))) throw err;
      why = err.message.replace(/^HAProxy CLI \S+ /, '');
    }
    if (Date.now() >= deadline) throw new HaproxyCliError(`the HAProxy master on ${masterSocket} kept refusing or dropping connections for ${waitMs} ms (${why}): is HAProxy running on this state dir?`, false, true);
    await new Promise((r) => setTimeout(r, 50));
  }
}
