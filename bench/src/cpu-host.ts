// An emulated host: a cgroup v1 CPU group with a hard quota (cpu.cfs_quota_us), so the processes in
// it (and everything they fork later) get at most that many CPUs, as if they ran on a machine of
// that size. On a shared 2-core machine this stands for the tenants' database hosts and their
// clients, which in production are other machines than the router's: unlike nice or a small
// cpu.shares (a share of whatever is busy, which starves a storm on a loaded machine), a quota lets
// a process run whenever the machine has CPU and stops it when its host would be full. A host may
// also get its CPU first (a large cpu.shares), as a machine of its own would: what no quota gives.
//
// Needs root and the cgroup v1 cpu controller at /sys/fs/cgroup/cpu; cpuHostsAvailable() says
// whether both are there. Shared by test/e2e/tenant-policy-storm.test.ts and bench/storm.sh.

import { accessSync, constants, existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

const CGROUP = '/sys/fs/cgroup';
const ROOT = join(CGROUP, 'cpu');
const PERIOD_US = 100_000;
const PREFIX = 'pgroute-test-';

/** Throttling of a host so far (cpu.stat): periods in which its quota ran out, and how long it waited; and its CPU time (cpuacct). */
export interface CpuHostStat {
  readonly periods: number;
  readonly throttled: number;
  readonly throttledMs: number;
  /** CPU seconds its processes used since it opened (NaN without the cpuacct controller). */
  readonly cpuSeconds: number;
}

export interface CpuHostOptions {
  /** Its weight against the other groups and root processes when cores are busy (cpu.shares; a process's is 1024). */
  readonly shares?: number;
}

export interface CpuHost {
  readonly name: string;
  readonly cpus: number;
  /** Its group in the cpu controller. */
  readonly path: string;
  /** Moves a process (all its threads) and its descendants into this host; its later children are born in it. */
  add(pid: number): void;
  /** Moves a running PostgreSQL server (its postmaster and present children; backends forked later follow). */
  addPostgres(dataDir: string): void;
  /** [command, args] that runs `cmd args` inside this host from its first instruction (sh, then exec). */
  command(cmd: string, args: readonly string[]): [string, string[]];
  stat(): CpuHostStat;
  /** Moves whatever is left back to the root group and removes the group. Idempotent. */
  close(): void;
}

/** Whether hosts can be emulated here: the cgroup v1 cpu controller with CFS quotas, writable. */
export function cpuHostsAvailable(): boolean {
  try {
    accessSync(join(ROOT, 'cpu.cfs_quota_us'), constants.R_OK);
    accessSync(ROOT, constants.W_OK);
    return true;
  } catch {
    return false;
  }
}

function writeValue(file: string, value: string | number): void {
  writeFileSync(file, String(value));
}

function pidsOf(path: string): number[] {
  try {
    return readFileSync(join(path, 'cgroup.procs'), 'utf8').split('\n').filter((l) => l !== '').map(Number);
  } catch {
    return [];
  }
}

/** Whether pid runs (exists and is no zombie, which cannot be moved). */
function running(pid: number): boolean {
  try {
    return !readFileSync(`/proc/${pid}/stat`, 'utf8').includes(') Z ');
  } catch {
    return false;
  }
}

/** Moves pid to the group at `path`, ignoring a process that exited meanwhile. */
function moveTo(path: string, pid: number): void {
  try {
    writeValue(join(path, 'cgroup.procs'), pid);
  } catch (err) {
    if (running(pid)) throw new Error(`could not move process ${pid} into cgroup ${path}: ${(err as Error).message}; run as root with cgroup v1's cpu controller mounted at ${ROOT}`);
  }
}

/** Moves the group's processes to its controller's root group and removes it (waits up to 5 s for exiting ones). */
function removeGroup(path: string): void {
  const root = dirname(path);
  const pause = new Int32Array(new SharedArrayBuffer(4));
  for (let i = 0; i < 100; i++) {
    for (const p of pidsOf(path)) moveTo(root, p);
    try {
      rmdirSync(path);
      return;
    } catch (err) {
      if (!existsSync(path)) return;
      if (i === 99) throw new Error(`could not remove cgroup ${path} (processes ${pidsOf(path).join(', ')}): ${(err as Error).message}; move its processes (cgroup.procs) to ${root} and rmdir it`);
    }
    Atomics.wait(pause, 0, 0, 50); // a process still exiting (a zombie cannot be moved)
  }
}

/** The children of pid, now (from /proc). */
function childrenOf(pid: number): number[] {
  const out: number[] = [];
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const stat = readFileSync(`/proc/${e}/stat`, 'utf8');
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === pid) out.push(Number(e));
    } catch {
      /* exited meanwhile */
    }
  }
  return out;
}

/** Groups of ours left behind by a process that is gone (a killed run): their processes back to the root. */
function removeStale(controller: string): void {
  const root = join(CGROUP, controller);
  for (const e of readdirSync(root)) {
    const m = new RegExp(`^${PREFIX}.*-(\\d+)$`).exec(e);
    if (m !== null && !existsSync(`/proc/${m[1]}`)) removeGroup(join(root, e));
  }
}

/**
 * Opens the emulated host `name` of `cpus` CPUs (e.g. 0.5): the group
 * /sys/fs/cgroup/cpu/pgroute-test-<name>-<pid of this process>, quota cpus × 100 ms per 100 ms
 * (Infinity: no quota, a group that only weighs `shares`); the same group under cpuacct (its CPU
 * time) where that controller is mounted.
 */
export function openCpuHost(name: string, cpus: number, opts: CpuHostOptions = {}): CpuHost {
  if (!cpuHostsAvailable()) throw new Error(`cannot emulate host "${name}": cgroup v1's cpu controller is not mounted writable at ${ROOT} (needs root)`);
  if (!(cpus > 0)) throw new Error(`cannot emulate host "${name}" of ${cpus} CPUs: give a positive number`);
  const group = `${PREFIX}${name}-${process.pid}`;
  const controllers = ['cpu', ...(existsSync(join(CGROUP, 'cpuacct', 'cpuacct.usage')) ? ['cpuacct'] : [])];
  const paths = controllers.map((c) => join(CGROUP, c, group));
  for (const c of controllers) removeStale(c);
  for (const p of paths) mkdirSync(p, { recursive: true });
  const path = paths[0] as string;
  writeValue(join(path, 'cpu.cfs_period_us'), PERIOD_US);
  writeValue(join(path, 'cpu.cfs_quota_us'), Number.isFinite(cpus) ? Math.round(cpus * PERIOD_US) : -1);
  if (opts.shares !== undefined) writeValue(join(path, 'cpu.shares'), opts.shares);
  const acct = controllers.includes('cpuacct') ? join(CGROUP, 'cpuacct', group, 'cpuacct.usage') : undefined;
  const add = (pid: number): void => {
    // The parent first: whatever it forks from now on is born in the group.
    for (const p of paths) moveTo(p, pid);
    for (const c of childrenOf(pid)) add(c);
  };
  let closed = false;
  return {
    name,
    cpus,
    path,
    add,
    addPostgres(dataDir: string): void {
      const pid = Number(readFileSync(join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
      if (!Number.isInteger(pid) || pid <= 0) throw new Error(`no postmaster pid in ${join(dataDir, 'postmaster.pid')}: is the server running?`);
      add(pid);
    },
    command: (cmd, args) => ['sh', ['-c', `${paths.map((p) => `echo $$ > ${join(p, 'cgroup.procs')} && `).join('')}exec "$@"`, 'sh', cmd, ...args]],
    stat(): CpuHostStat {
      const f = Object.fromEntries(readFileSync(join(path, 'cpu.stat'), 'utf8').split('\n').filter((l) => l !== '').map((l) => l.split(' ') as [string, string]));
      return {
        periods: Number(f['nr_periods']),
        throttled: Number(f['nr_throttled']),
        throttledMs: Number(f['throttled_time']) / 1e6,
        cpuSeconds: acct === undefined ? NaN : Number(readFileSync(acct, 'utf8')) / 1e9,
      };
    },
    close(): void {
      if (closed) return;
      closed = true;
      for (const p of paths) removeGroup(p);
    },
  };
}
