/**
 * Child processes for tests: spawn with captured output, stop with escalation,
 * wait for ports/conditions, and a cleanup registry (`stopAll()` in afterAll,
 * plus a synchronous best-effort cleanup when the test process exits).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { waitForTcp } from '../../generator/src/index.js';

// ---------------------------------------------------------------------------
// Cleanup registry
// ---------------------------------------------------------------------------

export interface Cleanup {
  /** Shown in error messages. */
  readonly name: string;
  /** Normal, asynchronous cleanup (afterAll / stopAll()). */
  stop(): Promise<void>;
  /** Synchronous last-resort cleanup, run from process 'exit' / signal handlers. */
  stopSync(): void;
}

const registry = new Set<Cleanup>();
let exitHooksInstalled = false;

function runSyncCleanups(): void {
  for (const c of [...registry].reverse()) {
    registry.delete(c);
    try {
      c.stopSync();
    } catch {
      // best effort: the process is going away anyway
    }
  }
}

function installExitHooks(): void {
  if (exitHooksInstalled) return;
  exitHooksInstalled = true;
  process.on('exit', runSyncCleanups);
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    const handler = (): void => {
      runSyncCleanups();
      process.removeListener(sig, handler);
      // If nobody else handles the signal, re-raise it so the default action
      // (terminate) happens; otherwise leave the decision to the other handler.
      if (process.listenerCount(sig) === 0) process.kill(process.pid, sig);
    };
    process.on(sig, handler);
  }
}

/** Registers something to clean up; returns a function that unregisters it. */
export function registerCleanup(cleanup: Cleanup): () => void {
  installExitHooks();
  registry.add(cleanup);
  return () => {
    registry.delete(cleanup);
  };
}

/**
 * Stops everything registered (processes, PostgreSQL servers, ...), newest first.
 * Call in afterAll. Throws an AggregateError after trying all of them if any failed.
 */
export async function stopAll(): Promise<void> {
  const errors: unknown[] = [];
  for (const c of [...registry].reverse()) {
    registry.delete(c);
    try {
      await c.stop();
    } catch (err) {
      errors.push(new Error(`cleanup of ${c.name} failed: ${errorMessage(err)}`, { cause: err }));
    }
  }
  if (errors.length > 0) throw new AggregateError(errors, `stopAll: ${errors.length} cleanup(s) failed`);
}

/** Names of everything currently registered (debugging aid). */
export function registeredCleanups(): string[] {
  return [...registry].map((c) => c.name);
}

// ---------------------------------------------------------------------------
// Spawned processes
// ---------------------------------------------------------------------------

export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** Set when the process could not be spawned at all (e.g. ENOENT). */
  error?: Error;
}

export interface SpawnLoggedOptions {
  /** Label for output lines and error messages (default: basename of cmd). */
  name?: string;
  /** Extra environment, merged over process.env (value undefined removes a variable). */
  env?: Record<string, string | undefined>;
  cwd?: string;
  /** Number of recent output lines kept (default 500). */
  maxLines?: number;
  /** Also write every line to this process's stderr, prefixed with the name (default: env PGROUTE_TEST_ECHO=1). */
  echo?: boolean;
  /**
   * Start the child in its own process group and signal the whole group, so
   * grandchildren (npx -> node, sh -c ...) are stopped too. Default true.
   */
  processGroup?: boolean;
  /** Data written to stdin, which is then closed. Default: stdin is /dev/null. */
  stdin?: string;
}

export interface ProcessHandle {
  readonly name: string;
  /** PID of the child (undefined if spawning failed). */
  readonly pid: number | undefined;
  readonly child: ChildProcess;
  /** Resolves once the process has exited (never rejects). */
  readonly exited: Promise<ExitInfo>;
  /** Exit info once exited, else undefined. */
  exitInfo(): ExitInfo | undefined;
  running(): boolean;
  /** Recent output, one line per entry, prefixed "out| " or "err| ". Optionally only the last n. */
  outputLines(n?: number): string[];
  /** Recent output joined with newlines, for failure messages. */
  output(n?: number): string;
  /** Resolves with the first (recent or future) output line matching re. */
  waitForOutput(re: RegExp, timeoutMs?: number): Promise<string>;
  /**
   * Sends `signal` (default SIGTERM), waits up to timeoutMs (default 5000) for
   * exit, then SIGKILLs. Resolves with the exit info. Safe to call repeatedly.
   */
  stop(signal?: NodeJS.Signals, timeoutMs?: number): Promise<ExitInfo>;
}

/** Spawns a long-running process with captured output and registers it for stopAll(). */
export function spawnLogged(cmd: string, args: readonly string[] = [], opts: SpawnLoggedOptions = {}): ProcessHandle {
  const name = opts.name ?? cmd.split('/').pop() ?? cmd;
  const maxLines = opts.maxLines ?? 500;
  const echo = opts.echo ?? process.env['PGROUTE_TEST_ECHO'] === '1';
  const group = opts.processGroup ?? true;

  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const [k, v] of Object.entries(opts.env ?? {})) {
    if (v === undefined) delete env[k];
    else env[k] = v;
  }

  const child = spawn(cmd, [...args], {
    cwd: opts.cwd,
    env,
    detached: group,
    stdio: [opts.stdin === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
  });
  if (opts.stdin !== undefined && child.stdin) {
    child.stdin.on('error', () => {});
    child.stdin.end(opts.stdin);
  }

  const lines: string[] = [];
  const lineListeners = new Set<(line: string) => void>();
  const pushLine = (line: string): void => {
    lines.push(line);
    if (lines.length > maxLines) lines.splice(0, lines.length - maxLines);
    if (echo) process.stderr.write(`[${name}] ${line}\n`);
    for (const l of lineListeners) l(line);
  };
  const attach = (stream: NodeJS.ReadableStream | null, prefix: string): void => {
    if (!stream) return;
    let partial = '';
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => {
      partial += chunk;
      const parts = partial.split('\n');
      partial = parts.pop() ?? '';
      for (const p of parts) pushLine(prefix + p.replace(/\r$/, ''));
    });
    stream.on('end', () => {
      if (partial !== '') pushLine(prefix + partial);
      partial = '';
    });
  };
  attach(child.stdout, 'out| ');
  attach(child.stderr, 'err| ');

  let info: ExitInfo | undefined;
  const exited = new Promise<ExitInfo>((resolve) => {
    child.once('exit', (code, signal) => {
      info ??= { code, signal };
      resolve(info);
    });
    child.once('error', (error) => {
      // 'error' without 'exit' means the spawn itself failed.
      if (child.pid === undefined) {
        info ??= { code: null, signal: null, error };
        pushLine(`err| spawn failed: ${error.message}`);
        resolve(info);
      }
    });
  });

  /** Signals the child (or its whole group). `evenIfExited` reaches leftover group members. */
  const signalChild = (sig: NodeJS.Signals, evenIfExited = false): void => {
    if (child.pid === undefined) return;
    if (info !== undefined && !(group && evenIfExited)) return;
    try {
      if (group) process.kill(-child.pid, sig);
      else child.kill(sig);
    } catch {
      // already gone
    }
  };

  let stopping: Promise<ExitInfo> | undefined;
  const handle: ProcessHandle = {
    name,
    pid: child.pid,
    child,
    exited,
    exitInfo: () => info,
    running: () => info === undefined && child.pid !== undefined,
    outputLines: (n) => (n === undefined ? [...lines] : lines.slice(-n)),
    output: (n) => (n === undefined ? lines : lines.slice(-n)).join('\n'),
    waitForOutput(re, timeoutMs = 10_000) {
      const hit = lines.find((l) => re.test(l));
      if (hit !== undefined) return Promise.resolve(hit);
      return new Promise<string>((resolve, reject) => {
        const cleanup = (): void => {
          clearTimeout(timer);
          lineListeners.delete(onLine);
        };
        const onLine = (line: string): void => {
          if (re.test(line)) {
            cleanup();
            resolve(line);
          }
        };
        const timer = setTimeout(() => {
          cleanup();
          reject(new Error(`timed out after ${timeoutMs} ms waiting for ${name} output matching ${re}\n${handle.output(40)}`));
        }, timeoutMs);
        lineListeners.add(onLine);
        void exited.then((e) => {
          if (!lineListeners.has(onLine)) return;
          // give trailing output a chance to arrive before giving up
          setTimeout(() => {
            if (!lineListeners.has(onLine)) return;
            cleanup();
            reject(new Error(`${name} exited (${describeExit(e)}) before printing a line matching ${re}\n${handle.output(40)}`));
          }, 50);
        });
      });
    },
    stop(signal = 'SIGTERM', timeoutMs = 5000) {
      stopping ??= (async () => {
        unregister();
        if (child.pid === undefined) return exited;
        if (info !== undefined) {
          // Leader already gone; make sure nothing of its group is left.
          signalChild('SIGKILL', true);
          return exited;
        }
        signalChild(signal);
        let timer: NodeJS.Timeout | undefined;
        const timedOut = await Promise.race([
          exited.then(() => false),
          new Promise<boolean>((r) => {
            timer = setTimeout(() => r(true), timeoutMs);
          }),
        ]);
        clearTimeout(timer);
        if (timedOut) signalChild('SIGKILL');
        const result = await exited;
        // With a process group, also make sure no grandchild survives the leader.
        signalChild('SIGKILL', true);
        return result;
      })();
      return stopping;
    },
  };

  const unregister = registerCleanup({
    name: `process ${name} (pid ${child.pid ?? '?'})`,
    stop: async () => {
      await handle.stop();
    },
    stopSync: () => {
      signalChild('SIGKILL', true);
    },
  });
  void exited.then(() => {
    // a process that exited on its own needs no cleanup (but keep group kill semantics for stop())
    if (!group) unregister();
  });

  return handle;
}

export function describeExit(e: ExitInfo): string {
  if (e.error) return `spawn error: ${e.error.message}`;
  if (e.signal) return `signal ${e.signal}`;
  return `code ${e.code}`;
}

// ---------------------------------------------------------------------------
// Waiting
// ---------------------------------------------------------------------------

export interface WaitForOptions {
  timeoutMs?: number;
  intervalMs?: number;
  /** What is being waited for; appears in the timeout message. */
  what?: string;
  /** If this process exits while waiting, fail immediately with its output. */
  process?: ProcessHandle;
}

/**
 * Polls fn until it returns a value other than false/undefined/null without
 * throwing; resolves with that value. On timeout the error names `what` and
 * includes the last error thrown by fn.
 */
export async function waitFor<T>(
  fn: () => T | Promise<T>,
  opts: WaitForOptions = {},
): Promise<Exclude<T, false | null | undefined>> {
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const intervalMs = opts.intervalMs ?? 50;
  const what = opts.what ?? 'condition';
  const start = Date.now();
  let lastError: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v !== false && v !== null && v !== undefined) return v as Exclude<T, false | null | undefined>;
      lastError = undefined;
    } catch (err) {
      lastError = err;
    }
    const p = opts.process;
    if (p && !p.running()) {
      const e = p.exitInfo() ?? (await p.exited);
      throw new Error(`${p.name} exited (${describeExit(e)}) while waiting for ${what}\n${p.output(40)}`);
    }
    if (Date.now() - start >= timeoutMs) {
      const last = lastError === undefined ? '' : `; last error: ${errorMessage(lastError)}`;
      const out = p ? `\n${p.name} output:\n${p.output(40)}` : '';
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last}${out}`);
    }
    await sleep(intervalMs);
  }
}

/**
 * Resolves once a TCP connection to host:port succeeds: pgroute's own wait (waitForTcp), with the
 * process's output in the error when it exits first or the wait times out.
 */
export async function waitForPort(
  port: number,
  host = '127.0.0.1',
  timeoutMs = 10_000,
  opts: { process?: ProcessHandle; what?: string } = {},
): Promise<void> {
  const what = opts.what ?? `TCP port ${host}:${port} to accept connections`;
  const p = opts.process;
  try {
    await waitForTcp(host, port, timeoutMs, p?.exited);
  } catch (err) {
    if (p && !p.running()) {
      const e = p.exitInfo() ?? (await p.exited);
      throw new Error(`${p.name} exited (${describeExit(e)}) while waiting for ${what}\n${p.output(40)}`);
    }
    const out = p ? `\n${p.name} output:\n${p.output(40)}` : '';
    throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; ${errorMessage(err)}${out}`);
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
