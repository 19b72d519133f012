// Processes the benchmark starts: each long-lived one in its own process group, its pid written to
// <runDir>/pids (run.sh's trap stops whatever is left there if this process dies), stopped by id.

import { spawn, type ChildProcess } from 'node:child_process';
import { appendFileSync, openSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

export interface Started {
  readonly name: string;
  readonly pid: number;
  readonly child: ChildProcess;
  readonly exited: Promise<number | null>;
  readonly logFile: string;
}

/** Short-lived commands still running (connload, pgbench, ...): killed if the run is interrupted. */
const running = new Set<ChildProcess>();

export function killRunning(): void {
  for (const c of running) c.kill('SIGKILL');
  running.clear();
}

export class Procs {
  private readonly live = new Map<number, Started>();

  constructor(readonly runDir: string) {}

  /** Starts a long-lived process; stdout and stderr go to <runDir>/<name>.log. */
  start(name: string, cmd: string, args: readonly string[], env?: NodeJS.ProcessEnv): Started {
    const logFile = join(this.runDir, `${name}.log`);
    const fd = openSync(logFile, 'a');
    const child = spawn(cmd, args, { detached: true, stdio: ['ignore', fd, fd], env: env ?? process.env });
    if (child.pid === undefined) throw new Error(`cannot start ${name} (${cmd})`);
    const exited = new Promise<number | null>((resolve) => {
      child.on('exit', (code) => resolve(code));
      child.on('error', () => resolve(127));
    });
    const p: Started = { name, pid: child.pid, child, exited, logFile };
    this.live.set(p.pid, p);
    appendFileSync(join(this.runDir, 'pids'), `${p.pid} ${name}\n`);
    return p;
  }

  /** SIGTERM to the process, then SIGKILL to its whole group if it or any child outlives `graceMs`. */
  async stop(p: Started, graceMs = 8_000): Promise<void> {
    if (!this.live.has(p.pid)) return;
    if (p.child.exitCode === null && p.child.signalCode === null) {
      try {
        process.kill(p.pid, 'SIGTERM');
      } catch {
        /* already gone */
      }
      await Promise.race([p.exited, sleep(graceMs)]);
    }
    for (let i = 0; i < 50 && groupAlive(p.pid); i++) {
      if (i === 0 || i === 25) {
        try {
          process.kill(-p.pid, i === 0 ? 'SIGTERM' : 'SIGKILL');
        } catch {
          /* gone */
        }
      }
      await sleep(100);
    }
    if (groupAlive(p.pid)) {
      try {
        process.kill(-p.pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
    this.live.delete(p.pid);
  }

  async stopAll(): Promise<void> {
    for (const p of [...this.live.values()].reverse()) await this.stop(p);
  }

  /** Synchronous last resort (process 'exit' handler): SIGKILL every group still registered. */
  killAllNow(): void {
    for (const pid of this.live.keys()) {
      try {
        process.kill(-pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
    this.live.clear();
  }
}

function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch {
    return false;
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

export interface RunResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs a short-lived command to completion and collects its output. */
export function run(cmd: string, args: readonly string[], opts: { env?: NodeJS.ProcessEnv; cwd?: string; timeoutMs?: number } = {}): Promise<RunResult> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], env: opts.env ?? process.env, cwd: opts.cwd });
    running.add(child);
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = opts.timeoutMs === undefined ? undefined : setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs);
    child.on('error', (err) => {
      running.delete(child);
      if (timer) clearTimeout(timer);
      resolve({ code: 127, stdout, stderr: stderr + err.message });
    });
    child.on('close', (code) => {
      running.delete(child);
      if (timer) clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

export async function mustRun(cmd: string, args: readonly string[], opts: { env?: NodeJS.ProcessEnv; cwd?: string; timeoutMs?: number } = {}): Promise<RunResult> {
  const r = await run(cmd, args, opts);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.code}:\n${r.stderr.trim()}\n${r.stdout.trim()}`.trimEnd());
  return r;
}

// ---- CPU accounting from /proc ----

const CLK_TCK = 100;

/** utime+stime of one process in seconds (0 if it is gone). */
export function procCpu(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // fields after "(comm) ": state(3) ppid(4) ... utime(14) stime(15) → indexes 11 and 12 here
    return (Number(rest[11]) + Number(rest[12])) / CLK_TCK;
  } catch {
    return 0;
  }
}

/** The pid and every descendant of it (scans /proc). */
export function processTree(root: number): number[] {
  const parent = new Map<number, number[]>();
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const stat = readFileSync(`/proc/${e}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      const list = parent.get(ppid) ?? [];
      list.push(Number(e));
      parent.set(ppid, list);
    } catch {
      /* raced with exit */
    }
  }
  const out: number[] = [];
  const todo = [root];
  while (todo.length > 0) {
    const p = todo.pop();
    if (p === undefined) break;
    out.push(p);
    todo.push(...(parent.get(p) ?? []));
  }
  return out;
}

export function processName(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return '?';
  }
}

/** Busy and total jiffies of the whole machine (all cores), from /proc/stat. */
export function machineCpu(): { busy: number; total: number } {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '';
  const f = line.trim().split(/\s+/).slice(1).map(Number);
  const total = f.reduce((a, b) => a + b, 0);
  const idle = (f[3] ?? 0) + (f[4] ?? 0);
  return { busy: (total - idle) / CLK_TCK, total: total / CLK_TCK };
}
