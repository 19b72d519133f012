// Graceful reload through the master CLI (master-worker mode), verified with `show proc`: in 2.6
// the `reload` command itself prints nothing.

import { alertText, HaproxyCliError, masterCli } from './master.js';

export interface ProcStatus {
  readonly masterPid: number;
  readonly reloads: number;
  readonly failed: number;
  readonly workers: readonly number[];
  readonly oldWorkers: readonly number[];
  /**
   * The workers that accept new connections: the current ones. After a failed reload HAProxy 3.1+
   * lists none and keeps the previous worker serving among the old ones: the one reloaded least.
   */
  readonly serving: readonly number[];
}

/** Parses the master CLI's `show proc`. */
export function parseShowProc(text: string): ProcStatus | undefined {
  let section: 'master' | 'workers' | 'old' | 'other' = 'master';
  let masterPid = -1;
  let reloads = 0;
  let failed = 0;
  const workers: number[] = [];
  const old: { pid: number; reloads: number }[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#<PID>')) continue;
    if (line.startsWith('# workers')) section = 'workers';
    else if (line.startsWith('# old workers')) section = 'old';
    else if (line.startsWith('#')) section = 'other';
    else {
      const m = /^(\d+)\s+(\S+)\s+(\d+)(?:\s+\[failed: (\d+)\])?/.exec(line);
      if (!m) continue;
      const pid = Number(m[1]);
      if (m[2] === 'master') {
        masterPid = pid;
        reloads = Number(m[3]);
        failed = Number(m[4] ?? 0);
      } else if (m[2] === 'worker' && section === 'old') old.push({ pid, reloads: Number(m[3]) });
      else if (m[2] === 'worker') workers.push(pid);
    }
  }
  if (masterPid < 0) return undefined;
  const least = Math.min(...old.map((w) => w.reloads));
  const serving = workers.length > 0 || failed === 0 ? workers : old.filter((w) => w.reloads === least).map((w) => w.pid);
  return { masterPid, reloads, failed, workers, oldWorkers: old.map((w) => w.pid), serving };
}

/** The old workers only finishing their sessions (not the previous one still serving after a 3.1+ failed reload). */
export function finishingWorkers(p: ProcStatus): readonly number[] {
  return p.oldWorkers.filter((pid) => !p.serving.includes(pid));
}

/** `show proc`, tried again for up to `waitMs` while the master drops connections (masterCli). */
export async function showProc(masterSocket: string, waitMs = 1_000): Promise<ProcStatus> {
  const status = parseShowProc(await masterCli(masterSocket, 'show proc', { repeatable: true, waitMs }));
  if (status === undefined) throw new Error(`cannot read "show proc" from the HAProxy master at ${masterSocket}`);
  return status;
}

/** HAProxy 3.1+ answers `reload` itself: "Success=1" or "Success=0", then "--" and its messages. */
const RELOAD_BUSY = /^Success=0\n--\nAnother reload is still in progress/;
const RELOAD_FAILED = /^Success=0\n--\n/;

export interface ReloadOutcome {
  readonly ok: boolean;
  /** The master reports the new configuration failed to load: the workers run the previous one. */
  readonly rejected: boolean;
  readonly before: ProcStatus;
  readonly after: ProcStatus | undefined;
  readonly detail: string;
}

/**
 * Asks the master to reload and waits until `show proc` says whether it worked. A master that
 * drops connections (re-executing itself after a start or another reload, up to 3.0) or answers
 * that another reload is in progress (3.1+, also while its first load is) is waited for, up to
 * `busyWaitMs`.
 */
export async function reloadMaster(masterSocket: string, timeoutMs = 15_000, busyWaitMs = 5_000): Promise<ReloadOutcome> {
  const before = await showProc(masterSocket, busyWaitMs);
  const busyUntil = Date.now() + busyWaitMs;
  let answer: string;
  for (;;) {
    // Up to 3.0 the master re-executes and drops the connection. A refused or absent socket sent
    // nothing: said as such. Any other error is taken as sent (a connection reset just after an
    // answered `show proc` is the re-execution, not a master that never read the command).
    answer = await masterCli(masterSocket, 'reload', { repeatable: false, waitMs: busyWaitMs }).catch((err: unknown) => {
      if (err instanceof HaproxyCliError && (err.failure === 'refused' || err.failure === 'absent')) throw err;
      return '';
    });
    if (!RELOAD_BUSY.test(answer)) break;
    if (Date.now() >= busyUntil) return { ok: false, rejected: false, before, after: undefined, detail: `the master kept answering "Another reload is still in progress" for ${busyWaitMs} ms` };
    await new Promise((r) => setTimeout(r, 50));
  }
  // 3.1+ says why a load failed; up to 3.0 HAProxy's alerts are on its stderr only.
  const alerts = RELOAD_FAILED.test(answer) ? answer.split('\n').filter((l) => l.startsWith('[ALERT]')).map(alertText) : [];
  const deadline = Date.now() + timeoutMs;
  let after: ProcStatus | undefined;
  while (Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 50));
    after = await showProc(masterSocket).catch(() => undefined);
    if (after === undefined || after.reloads <= before.reloads) continue;
    if (after.failed > before.failed) {
      const why = alerts.length === 0 ? '' : `: ${alerts.slice(0, 3).join('; ')}`;
      return { ok: false, rejected: true, before, after, detail: `the master reports the new configuration failed to load; the previous workers keep serving${why}` };
    }
    const fresh = after.workers.filter((p) => !before.workers.includes(p));
    if (fresh.length > 0) return { ok: true, rejected: false, before, after, detail: `new worker ${fresh.join(',')}; ${after.oldWorkers.length} old worker(s) finishing their sessions` };
  }
  return { ok: false, rejected: false, before, after, detail: `no new worker within ${timeoutMs} ms of the reload` };
}
