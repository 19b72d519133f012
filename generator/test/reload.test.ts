// Graceful reloads through the master CLI: `show proc` parsed from literal HAProxy 2.6.12 output,
// and reloadMaster against a fake master socket that re-executes (drops the connection), then
// reports a new worker, a failed reload, or nothing at all; and a master socket that refuses
// connections for a while (the master re-executing itself), or for good.

import { mkdtemp, rm, unlink } from 'node:fs/promises';
import { cliSocket } from './support.js';
import { staleSocket } from '../../test/support/stale-socket.js';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { finishingWorkers, parseShowProc, reloadMaster, showProc, type ProcStatus } from '../src/haproxy/reload.js';

// Captured from HAProxy 2.6.12 (`show proc` on the master CLI), byte for byte.
const FRESH =
  '#<PID>          <type>          <reloads>       <uptime>        <version>      \n' +
  '24440           master          0 [failed: 0]   0d00h00m01s     2.6.12-1+deb12u4\n' +
  '# workers\n' +
  '24453           worker          0               0d00h00m01s     2.6.12-1+deb12u4\n' +
  '# programs\n\n';
const WITH_OLD =
  '#<PID>          <type>          <reloads>       <uptime>        <version>      \n' +
  '24440           master          4 [failed: 0]   0d00h00m10s     2.6.12-1+deb12u4\n' +
  '# workers\n' +
  '26403           worker          0               0d00h00m01s     2.6.12-1+deb12u4\n' +
  '# old workers\n' +
  '26018           worker          1               0d00h00m03s     2.6.12-1+deb12u4\n' +
  '25990           worker          2               0d00h00m07s     2.6.12-1+deb12u4\n' +
  '# programs\n\n';
const FAILED =
  '#<PID>          <type>          <reloads>       <uptime>        <version>      \n' +
  '24440           master          2 [failed: 1]   0d00h00m04s     2.6.12-1+deb12u4\n' +
  '# workers\n' +
  '24792           worker          1               0d00h00m03s     2.6.12-1+deb12u4\n' +
  '# programs\n\n';

describe('parseShowProc', () => {
  it('reads the master, its reload count and the current worker', () => {
    expect(parseShowProc(FRESH)).toEqual({ masterPid: 24440, reloads: 0, failed: 0, workers: [24453], oldWorkers: [], serving: [24453] });
  });

  it('separates old workers from current ones', () => {
    expect(parseShowProc(WITH_OLD)).toEqual({ masterPid: 24440, reloads: 4, failed: 0, workers: [26403], oldWorkers: [26018, 25990], serving: [26403] });
  });

  it('reads the failed reload count', () => {
    expect(parseShowProc(FAILED)).toEqual({ masterPid: 24440, reloads: 2, failed: 1, workers: [24792], oldWorkers: [], serving: [24792] });
  });

  it('3.1+ after a failed reload: no current worker, the previous one still serves among the old ones', () => {
    // Captured from HAProxy 3.2.26 after a reload whose configuration failed to load (the worker
    // still accepted connections), with one more old worker still finishing its sessions.
    const text =
      '#<PID>          <type>          <reloads>       <uptime>        <version>      \n' +
      '20263           master          2 [failed: 1]   0d00h00m02s     3.2.26-1       \n' +
      '# workers\n' +
      '# old workers\n' +
      '20279           worker          1               0d00h00m02s     3.2.26-1       \n' +
      '20201           worker          2               0d00h00m09s     3.2.26-1       \n\n';
    expect(parseShowProc(text)).toEqual({ masterPid: 20263, reloads: 2, failed: 1, workers: [], oldWorkers: [20279, 20201], serving: [20279] });
    expect(finishingWorkers(parseShowProc(text) as ProcStatus)).toEqual([20201]);
    // The same list after a successful reload whose new worker is gone: nothing serves.
    expect(parseShowProc(text.replace('[failed: 1]', '[failed: 0]'))?.serving).toEqual([]);
  });

  it('accepts a master line without [failed: n] (older 2.x) and CRLF line ends', () => {
    const text = '#<PID>          <type>          <relative PID>  <reloads>       <uptime>        <version>\r\n1               master          0               3               0d00h00m08s     2.4.22\r\n# workers\r\n9               worker          1               0               0d00h00m08s     2.4.22\r\n';
    const s = parseShowProc(text);
    expect(s?.masterPid).toBe(1);
    expect(s?.failed).toBe(0);
    expect(s?.workers).toEqual([9]);
  });

  it('ignores programs and unknown sections', () => {
    const text = `${FRESH.replace('# programs\n', '# programs\n777             dataplaneapi    0               0d00h00m01s     -\n')}`;
    expect(parseShowProc(text)?.workers).toEqual([24453]);
  });

  it('is undefined when there is no master line', () => {
    expect(parseShowProc('')).toBeUndefined();
    expect(parseShowProc('Unknown command. Please enter one of the following commands only :\n  help\n')).toBeUndefined();
    expect(parseShowProc('#<PID>          <type>          <reloads>       <uptime>        <version>      \n# workers\n')).toBeUndefined();
  });
});

/** A fake master CLI. `reload` drops the connection (the master re-executes), then after `delayMs` the state changes as `outcome` says. */
interface FakeMaster {
  readonly path: string;
  readonly lines: string[];
  /** 'gone': the master stops right after answering `show proc`. */
  outcome: 'success' | 'failure' | 'failure-3.2' | 'nothing' | 'gone';
  /** Success leaves the previous worker running (open sessions) as an old worker. */
  keepOldWorker: boolean;
  /** This many `show proc` are read and closed unanswered (a master re-executing itself). */
  dropShowProc: number;
  /** This many `reload` are answered as 3.1+ does while a load is in progress, and do nothing. */
  busyReloads: number;
  close(): Promise<void>;
}

function showProcText(s: { reloads: number; failed: number; workers: number[]; old: number[] }): string {
  const col = (v: string | number): string => String(v).padEnd(15);
  const v = '2.6.12-1+deb12u4';
  let out = `#${'<PID>'.padEnd(14)} ${col('<type>')} ${col('<reloads>')} ${col('<uptime>')} ${col('<version>')}\n`;
  out += `${col(100)} ${col('master')} ${col(`${s.reloads} [failed: ${s.failed}]`)} ${col('0d00h01m00s')} ${v}\n`;
  out += '# workers\n';
  for (const w of s.workers) out += `${col(w)} ${col('worker')} ${col(0)} ${col('0d00h00m05s')} ${v}\n`;
  if (s.old.length > 0) {
    out += '# old workers\n';
    for (const w of s.old) out += `${col(w)} ${col('worker')} ${col(1)} ${col('0d00h00m30s')} ${v}\n`;
  }
  return `${out}# programs\n\n`;
}

async function fakeMaster(path: string, delayMs = 80): Promise<FakeMaster> {
  const state = { reloads: 0, failed: 0, workers: [200], old: [] as number[] };
  let nextPid = 201;
  const lines: string[] = [];
  const fake: FakeMaster = { path, lines, outcome: 'success', keepOldWorker: false, dropShowProc: 0, busyReloads: 0, close: async () => undefined };
  const server = await cliSocket(path, (line, sock) => {
    lines.push(line);
    const cmd = line.split(';')[0]?.trim();
    if (cmd === 'show proc' && fake.dropShowProc > 0) {
      fake.dropShowProc -= 1;
      sock.end();
    } else if (cmd === 'show proc' && fake.outcome === 'gone') {
      sock.end(showProcText(state));
      void fake.close(); // the socket file goes with the server: the reload that follows is never sent
    } else if (cmd === 'show proc') sock.end(showProcText(state));
    else if (cmd === 'reload' && fake.busyReloads > 0) {
      fake.busyReloads -= 1;
      sock.end('Success=0\n--\nAnother reload is still in progress.\n\n'); // HAProxy 3.2.26's words
    } else if (cmd === 'reload' && fake.outcome === 'failure-3.2') {
      // 3.2 answers once the new worker has failed, lists no current worker, and the previous one,
      // still serving, among the old ones (HAProxy 3.2.26's words, paths shortened).
      state.reloads += 1;
      state.failed += 1;
      state.old.unshift(...state.workers);
      state.workers = [];
      sock.end(
        'Success=0\n--\n[NOTICE]   (19735) : Initializing new worker (19753)\n' +
          "[ALERT]    (19753) : config : [/tmp/h2.cfg:12] : 'server b/s' : unknown keyword 'nosuchkeyword'.\n" +
          '[ALERT]    (19753) : config : Error(s) found in configuration file : /tmp/h2.cfg\n' +
          '[ALERT]    (19753) : config : Fatal errors found in configuration.\n' +
          '[WARNING]  (19735) : Failed to load worker (19753) exited with code 1 (Exit)\n\n',
      );
    } else if (cmd === 'reload') {
      sock.destroy(); // 2.6 prints nothing: the master re-executes
      setTimeout(() => {
        if (fake.outcome === 'nothing') return;
        state.reloads += 1;
        if (fake.outcome === 'failure') {
          state.failed += 1;
          return;
        }
        state.failed = 0; // a successful reload resets the count, as 2.6 does
        if (fake.keepOldWorker) state.old.push(...state.workers);
        state.workers = [nextPid++];
      }, delayMs);
    } else sock.end('Unknown command.\n');
  });
  fake.close = () => new Promise<void>((resolve) => server.close(() => resolve()));
  return fake;
}

let dir: string;
let n = 0;
const open: FakeMaster[] = [];
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'pgroute-reload-'));
});
afterEach(async () => {
  for (const f of open.splice(0)) await f.close();
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});
async function master(delayMs?: number): Promise<FakeMaster> {
  const f = await fakeMaster(join(dir, `master-${n++}.sock`), delayMs);
  open.push(f);
  return f;
}

describe('the fake master speaks like HAProxy', () => {
  it('its show proc parses like the real one', async () => {
    const f = await master();
    expect(await showProc(f.path)).toEqual({ masterPid: 100, reloads: 0, failed: 0, workers: [200], oldWorkers: [], serving: [200] });
    expect(f.lines).toEqual(['show proc; quit']);
  });
});

describe('reloadMaster', () => {
  it('success: the reload count increments and a new worker appears', async () => {
    const f = await master();
    const r = await reloadMaster(f.path, 5_000);
    expect(r.ok).toBe(true);
    expect(r.before).toMatchObject({ reloads: 0, workers: [200] });
    expect(r.after).toMatchObject({ reloads: 1, failed: 0, workers: [201] });
    expect(r.detail).toBe('new worker 201; 0 old worker(s) finishing their sessions');
    expect(f.lines[0]).toBe('show proc; quit');
    expect(f.lines[1]).toBe('reload; quit');
    expect(f.lines.slice(2).every((l) => l === 'show proc; quit')).toBe(true);
  });

  it('success with the previous worker still finishing sessions', async () => {
    const f = await master();
    f.keepOldWorker = true;
    const r = await reloadMaster(f.path, 5_000);
    expect(r.ok).toBe(true);
    expect(r.after?.oldWorkers).toEqual([200]);
    expect(r.detail).toBe('new worker 201; 1 old worker(s) finishing their sessions');
    // A second reload: the count goes on from where it was.
    const again = await reloadMaster(f.path, 5_000);
    expect(again.ok).toBe(true);
    expect(again.before.reloads).toBe(1);
    expect(again.after?.workers).toEqual([202]);
    expect(again.after?.oldWorkers).toEqual([200, 201]);
  });

  it('failure: the failed count increments, the previous worker keeps serving', async () => {
    const f = await master();
    f.outcome = 'failure';
    const r = await reloadMaster(f.path, 5_000);
    expect(r.ok).toBe(false);
    expect(r.after).toMatchObject({ reloads: 1, failed: 1, workers: [200] });
    expect(r.detail).toMatch(/failed to load/);
  });

  it('a failure after an earlier failure is still a failure; a success after it resets the count', async () => {
    const f = await master();
    f.outcome = 'failure';
    expect((await reloadMaster(f.path, 5_000)).ok).toBe(false);
    const second = await reloadMaster(f.path, 5_000);
    expect(second.ok).toBe(false);
    expect(second.after).toMatchObject({ reloads: 2, failed: 2 });
    f.outcome = 'success';
    const third = await reloadMaster(f.path, 5_000);
    expect(third.ok).toBe(true);
    expect(third.after).toMatchObject({ reloads: 3, failed: 0 });
  });

  it('timeout: no new worker within the time allowed', async () => {
    const f = await master();
    f.outcome = 'nothing';
    const started = Date.now();
    const r = await reloadMaster(f.path, 300);
    expect(r.ok).toBe(false);
    expect(r.detail).toBe('no new worker within 300 ms of the reload');
    expect(r.after).toMatchObject({ reloads: 0, workers: [200] });
    expect(Date.now() - started).toBeGreaterThanOrEqual(300);
    expect(Date.now() - started).toBeLessThan(3_000);
  });

  it('a master that answers only after a while is waited for', async () => {
    const f = await master(400);
    const r = await reloadMaster(f.path, 5_000);
    expect(r.ok).toBe(true);
    expect(f.lines.filter((l) => l === 'show proc; quit').length).toBeGreaterThan(2);
  });

  it('a master refusing connections (re-executing itself) is waited for, and the reload is sent once', async () => {
    const path = staleSocket(join(dir, `master-${n++}.sock`));
    const waiting = reloadMaster(path, 5_000, 5_000);
    await new Promise((r) => setTimeout(r, 300));
    await unlink(path);
    const f = await fakeMaster(path);
    open.push(f);
    const r = await waiting;
    expect(r.ok).toBe(true);
    expect(f.lines.filter((l) => l === 'reload; quit')).toHaveLength(1);
  });

  it('a master closing connections unanswered (re-executing itself) is waited for', async () => {
    const f = await master();
    f.dropShowProc = 3;
    const r = await reloadMaster(f.path, 5_000, 5_000);
    expect(r.ok).toBe(true);
    expect(f.lines.slice(0, 5)).toEqual(['show proc; quit', 'show proc; quit', 'show proc; quit', 'show proc; quit', 'reload; quit']);
  });

  it('3.1+: a reload answered "Another reload is still in progress" did nothing and is asked again', async () => {
    const f = await master();
    f.busyReloads = 2;
    const r = await reloadMaster(f.path, 5_000, 5_000);
    expect(r.ok).toBe(true);
    expect(r.after).toMatchObject({ reloads: 1, workers: [201] });
    expect(f.lines.filter((l) => l === 'reload; quit')).toHaveLength(3);
    // Busy for longer than the wait: not done, and said so.
    const g = await master();
    g.busyReloads = 1_000;
    const busy = await reloadMaster(g.path, 5_000, 300);
    expect(busy.ok).toBe(false);
    expect(busy.detail).toBe('the master kept answering "Another reload is still in progress" for 300 ms');
  });

  it('3.1+: a failed load is reported with the reason HAProxy gave in its answer', async () => {
    const f = await master();
    f.outcome = 'failure-3.2';
    const r = await reloadMaster(f.path, 5_000);
    expect(r.ok).toBe(false);
    expect(r.detail).toBe(
      "the master reports the new configuration failed to load; the previous workers keep serving: config : [/tmp/h2.cfg:12] : 'server b/s' : unknown keyword 'nosuchkeyword'.; config : Error(s) found in configuration file : /tmp/h2.cfg; config : Fatal errors found in configuration.",
    );
    expect(r.after?.serving).toEqual([200]);
  });

  it('a master gone before the reload could be sent: an error, not a reload waited for', async () => {
    const f = await master();
    f.outcome = 'gone';
    const started = Date.now();
    await expect(reloadMaster(f.path, 15_000, 300)).rejects.toThrow(`no HAProxy master socket at ${f.path}: is HAProxy running?`);
    expect(Date.now() - started).toBeLessThan(5_000);
  });

  it('a socket nothing accepts on: one error that says what to check, once the wait is over', async () => {
    const path = staleSocket(join(dir, `master-${n++}.sock`));
    const started = Date.now();
    await expect(reloadMaster(path, 300, 300)).rejects.toThrow(
      new RegExp(`^the HAProxy master on ${path} kept refusing or dropping connections for 300 ms \\(connect ECONNREFUSED\\): is HAProxy running\\?$`),
    );
    expect(Date.now() - started).toBeGreaterThanOrEqual(300);
  });

  it('no master at all: rejects at once, saying what to check', async () => {
    const path = join(dir, 'missing.sock');
    await expect(reloadMaster(path, 300)).rejects.toThrow(`no HAProxy master socket at ${path}: is HAProxy running?`);
  });
});
