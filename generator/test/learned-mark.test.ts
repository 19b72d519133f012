// The learned mark (docs/cancel.md "Across a reload"): each current worker is marked once, and only
// once its peers section reports the resync done; a worker gone from `show proc` is forgotten.
// Against a CLI that answers as HAProxy 2.6.12 does (the e2e cancel-reload test runs the real one).

import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { learnedAll, markLearnedOnce, startLearnedMark } from '../src/haproxy/learned-mark.js';
import { waitFor } from '../../test/support/process.js';

/** `show proc` as 2.6.12 prints it; the i-th old worker has been reloaded i + 1 times. */
const proc = (workers: readonly number[], old: readonly number[] = [], failed = 0): string =>
  '#<PID>          <type>          <reloads>       <uptime>        <version>      \n' +
  `24440           master          ${old.length} [failed: ${failed}]   0d00h00m01s     2.6.12-1+deb12u4\n` +
  '# workers\n' +
  workers.map((p) => `${p}           worker          0               0d00h00m01s     2.6.12-1+deb12u4\n`).join('') +
  (old.length > 0 ? '# old workers\n' + old.map((p, i) => `${p}           worker          ${i + 1}               0d00h00m09s     2.6.12-1+deb12u4\n`).join('') : '') +
  '# programs\n\n';
const REMOTE = '  0x5600fe085cb0: id=p2(remote,active) addr=127.0.0.22:31777 last_status=CONN last_hdshk=0s\n';
const peers = (flags: string, remote = REMOTE): string => `0x5600fe082ba0: [06/Dec/2026:08:58:16] id=pgroute disabled=0 flags=${flags} resync_timeout=4s task_calls=1\n${remote}`;

class FakeMaster {
  workers: number[] = [];
  old: number[] = [];
  failed = 0;
  readonly flags = new Map<number, string>();
  readonly sets: number[] = [];
  /** This many marks are dropped unanswered (never written). */
  dropSets = 0;
  readonly cli = async (_socket: string, command: string): Promise<string> => {
    if (command === 'show proc') return proc(this.workers, this.old, this.failed);
    const m = /^@!(\d+) (.*)$/.exec(command);
    const pid = Number(m?.[1]);
    if (!this.workers.includes(pid) && !this.old.includes(pid)) return `Can't find the target PID matching the prefix '@!${pid}'\n`;
    if (m?.[2] === 'show peers') return peers(this.flags.get(pid) ?? '0x0');
    if (m?.[2] === `set table pgroute-learned key 0; @!${pid} show table pgroute-learned`) {
      if (this.dropSets > 0) {
        this.dropSets -= 1;
        return ''; // closed unanswered: the master re-executing itself
      }
      this.sets.push(pid);
      return '\n# table: pgroute-learned, type: integer, size:1, used:1\n0x55c55fafa850: key=0 use=0 exp=0\n\n'; // HAProxy 2.6.12's answer
    }
    throw new Error(`unexpected command ${command}`);
  };
}

describe('learned mark', () => {
  it('learned: both resync bits; the old worker\'s lesson alone when no other replica is listed', () => {
    expect(learnedAll(peers('0x11'))).toBe(false);
    expect(learnedAll(peers('0x1103'))).toBe(true);
    expect(learnedAll(peers('0x33'))).toBe(true);
    // With another replica, the first bit alone is not enough: its lesson may still come.
    expect(learnedAll(peers('0x1'))).toBe(false);
    const alone = '  0x55eb3ede5960: id=vm(local,inactive) addr=unix:0 last_status=NONE last_hdshk=<NEVER>\n';
    expect(learnedAll(peers('0x1', alone))).toBe(true);
    expect(learnedAll(peers('0x0', alone))).toBe(false);
    expect(learnedAll('')).toBe(false);
  });

  it('marks a worker only once its resync is done, once, and each new worker after a reload', async () => {
    const m = new FakeMaster();
    m.workers = [101];
    m.flags.set(101, '0x11'); // waiting for the old worker's lesson
    const mark = startLearnedMark({ masterSocket: '/nowhere', log: pino({ level: 'silent' }), cli: m.cli, intervalMs: 20, pollMs: 5 });
    try {
      // Several rounds pass without a mark while the resync is not done.
      await new Promise((r) => setTimeout(r, 100));
      expect(m.sets).toEqual([]);
      m.flags.set(101, '0x1103');
      await waitFor(() => m.sets.length === 1, { timeoutMs: 5_000, what: 'worker 101 marked' });
      // A reload: 101 becomes an old worker (already resynced: never marked again), 102 learns.
      m.old = [101];
      m.workers = [102];
      m.flags.set(102, '0x0');
      await new Promise((r) => setTimeout(r, 100));
      m.flags.set(102, '0x33'); // the wait for a peer's lesson given up: done too
      await waitFor(() => m.sets.length === 2, { timeoutMs: 5_000, what: 'worker 102 marked' });
      await new Promise((r) => setTimeout(r, 100));
      expect(m.sets).toEqual([101, 102]);
    } finally {
      await mark.stop();
    }
  });

  it('a mark the master dropped unanswered is not taken as written: written again', async () => {
    const m = new FakeMaster();
    m.workers = [31];
    m.flags.set(31, '0x1103');
    m.dropSets = 2;
    expect(await markLearnedOnce({ masterSocket: '/nowhere', log: pino({ level: 'silent' }), cli: m.cli, timeoutMs: 5_000, pollMs: 5 })).toBe(true);
    expect(m.sets).toEqual([31]);
    expect(m.dropSets).toBe(0);
  });

  it('after a failed reload on 3.1+ (no current worker listed), the previous worker, still serving, is the one marked', async () => {
    const m = new FakeMaster();
    m.failed = 1;
    m.old = [41, 40]; // 41 serves (reloaded once), 40 drains (reloaded twice)
    m.flags.set(41, '0x1103');
    m.flags.set(40, '0x1103');
    expect(await markLearnedOnce({ masterSocket: '/nowhere', log: pino({ level: 'silent' }), cli: m.cli, timeoutMs: 5_000, pollMs: 5 })).toBe(true);
    expect(m.sets).toEqual([41]);
  });

  it('keeps trying while the master does not answer, and stops for good', async () => {
    const m = new FakeMaster();
    let down = true;
    const cli = (socket: string, command: string): Promise<string> => (down ? Promise.reject(new Error('ECONNREFUSED')) : m.cli(socket, command));
    m.workers = [7];
    m.flags.set(7, '0x3');
    const mark = startLearnedMark({ masterSocket: '/nowhere', log: pino({ level: 'silent' }), cli, intervalMs: 10, pollMs: 5 });
    await new Promise((r) => setTimeout(r, 50));
    down = false;
    await waitFor(() => m.sets.length === 1, { timeoutMs: 5_000, what: 'worker 7 marked once the master answers' });
    await mark.stop();
    m.workers = [8];
    m.flags.set(8, '0x3');
    await new Promise((r) => setTimeout(r, 60));
    expect(m.sets).toEqual([7]);
  });

  it('once (pgroute reload): waits for the new worker to learn, marks it, and says so; false when it has not learned in time', async () => {
    const log = pino({ level: 'silent' });
    const m = new FakeMaster();
    m.old = [20];
    m.workers = [21];
    m.flags.set(20, '0x1103');
    m.flags.set(21, '0x11');
    setTimeout(() => m.flags.set(21, '0x1103'), 60);
    expect(await markLearnedOnce({ masterSocket: '/nowhere', log, cli: m.cli, timeoutMs: 5_000, pollMs: 5 })).toBe(true);
    expect(m.sets).toEqual([21]); // the old worker is not the one the rules of the new configuration read
    m.workers = [22];
    m.flags.set(22, '0x11');
    expect(await markLearnedOnce({ masterSocket: '/nowhere', log, cli: m.cli, timeoutMs: 50, pollMs: 5 })).toBe(false);
    expect(m.sets).toEqual([21]);
    // A new worker that does not answer yet: tried again; a master that never answers: its error at the deadline.
    m.workers = [23];
    m.flags.set(23, '0x1103');
    let refusals = 3;
    const flaky = (socket: string, command: string): Promise<string> => (command.startsWith('@!23') && refusals-- > 0 ? Promise.reject(new Error('Can\'t connect to the target CLI')) : m.cli(socket, command));
    expect(await markLearnedOnce({ masterSocket: '/nowhere', log, cli: flaky, timeoutMs: 5_000, pollMs: 5 })).toBe(true);
    expect(m.sets).toEqual([21, 23]);
    await expect(markLearnedOnce({ masterSocket: '/nowhere', log, cli: () => Promise.reject(new Error('ECONNREFUSED')), timeoutMs: 50, pollMs: 5 })).rejects.toThrow('ECONNREFUSED');
  });
});
