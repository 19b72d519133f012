// A new HAProxy worker (a reload, a start) learns the replicated stick tables from the old worker,
// or from its peers; until it has, its cancel-record rules write an address it holds no record of
// into its local handover table (haproxy/partials/cancel-record.hbs, docs/cancel.md "Across a
// reload"), because the lesson would overwrite that record in the own table. This tells each worker
// that it has learned: key 0 of its LEARNED_TABLE, written once `show peers` reports the resync done
// (learnedAll). Through the master CLI, addressed to the worker by pid (`@!<pid>`), so a reload in
// between cannot mark the wrong worker. `up` and `watch` run startLearnedMark: workers are listed
// every `intervalMs` (any reload: pgroute's, `pgroute reload`, a signal), and an unmarked one is
// checked every `pollMs` until marked. `pgroute reload`, which exits, marks once (markLearnedOnce).
import type { Logger } from 'pino';
import { LEARNED_TABLE } from '../render/cancel-context.js';
import { PEERS_SECTION } from '../replicas/peers.js';
import { haproxyCli } from './master.js';
import { parseShowProc } from './reload.js';
import { RESYNC_LOCAL_DONE, showPeersSection } from './show-peers.js';

/**
 * Whether the worker has learned what it will learn: both resync bits; or, with no other replica in
 * its peers section, the lesson from the old worker alone (HAProxy otherwise sets the second bit only
 * after a 5 s wait for a peer that is not there).
 */
export function learnedAll(showPeers: string): boolean {
  const s = showPeersSection(showPeers, PEERS_SECTION);
  if (s === undefined) return false;
  return s.resynced || ((s.flags & RESYNC_LOCAL_DONE) !== 0 && s.peers.every((p) => p.local));
}

type Cli = (socket: string, command: string) => Promise<string>;

export interface LearnedMarkOptions {
  readonly masterSocket: string;
  readonly log: Logger;
  readonly intervalMs?: number;
  readonly pollMs?: number;
  /** The CLI (tests); HAProxy's master CLI otherwise. */
  readonly cli?: Cli;
}

export interface LearnedMark {
  stop(): Promise<void>;
}

const cliOf = (opts: { cli?: Cli }): Cli => opts.cli ?? ((socket: string, command: string) => haproxyCli(socket, command, 2_000));

/**
 * One look: marks every current worker that has learned and is not in `marked` (which it updates);
 * returns whether a current worker is still unmarked.
 */
async function look(cli: Cli, masterSocket: string, marked: Set<number>, log: Logger): Promise<boolean> {
  const proc = parseShowProc(await cli(masterSocket, 'show proc'));
  if (proc === undefined) throw new Error(`no "show proc" answer from the HAProxy master at ${masterSocket}`);
  for (const pid of [...marked]) if (!proc.serving.includes(pid)) marked.delete(pid);
  let waiting = false;
  for (const pid of proc.serving.filter((p) => !marked.has(p))) {
    if (!learnedAll(await cli(masterSocket, `@!${pid} show peers`))) {
      waiting = true;
      continue;
    }
    // Written, then read back: a connection the master drops unanswered (re-executing itself) must
    // not count as written.
    const answer = (await cli(masterSocket, `@!${pid} set table ${LEARNED_TABLE} key 0; @!${pid} show table ${LEARNED_TABLE}`)).trim();
    // An old configuration without the table: nothing to mark (its rules do not read it).
    if (!/^\S+: key=0 /m.test(answer) && !/unknown table|no such table/i.test(answer)) {
      if (answer !== '' && !answer.startsWith(`# table: ${LEARNED_TABLE},`)) throw new Error(`worker ${pid}: "set table ${LEARNED_TABLE}" answered: ${answer.slice(0, 200)}`);
      waiting = true;
      continue;
    }
    marked.add(pid);
    log.debug({ pid }, 'HAProxy worker learned the replicated tables; cancel records go to its own table');
  }
  return waiting;
}

/**
 * Once, for a command that reloads and exits (`pgroute reload`): marks the current workers as they
 * learn, polling every `pollMs`, until none is left unmarked (true) or `timeoutMs` has passed
 * (false: a worker not marked records new addresses in its handover table, which its rules stop
 * doing HANDOVER_LIMIT_SECONDS after it started). An error of the master CLI (a worker forked a
 * moment ago may not answer yet) is tried again until then; the last one is thrown at the deadline.
 */
export async function markLearnedOnce(opts: { masterSocket: string; log: Logger; timeoutMs: number; pollMs?: number; cli?: Cli }): Promise<boolean> {
  const cli = cliOf(opts);
  const marked = new Set<number>();
  const deadline = Date.now() + opts.timeoutMs;
  for (;;) {
    let failure: Error | undefined;
    try {
      if (!(await look(cli, opts.masterSocket, marked, opts.log))) return true;
    } catch (err) {
      failure = err as Error;
    }
    if (Date.now() >= deadline) {
      if (failure !== undefined) throw failure;
      return false;
    }
    await new Promise((resolve) => setTimeout(resolve, opts.pollMs ?? 50));
  }
}

export function startLearnedMark(opts: LearnedMarkOptions): LearnedMark {
  const cli = cliOf(opts);
  const marked = new Set<number>();
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let round: Promise<void> = Promise.resolve();
  let failing = false;

  const schedule = (ms: number): void => {
    if (stopped) return;
    timer = setTimeout(() => {
      round = look(cli, opts.masterSocket, marked, opts.log).then(
        (waiting) => {
          failing = false;
          schedule(waiting ? (opts.pollMs ?? 50) : (opts.intervalMs ?? 500));
        },
        (err: Error) => {
          // HAProxy restarting or reloading: said once, tried again.
          if (!failing) opts.log.debug({ err: err.message }, 'could not mark the HAProxy workers as learned; trying again');
          failing = true;
          schedule(opts.intervalMs ?? 500);
        },
      );
    }, ms);
    timer.unref();
  };
  schedule(0);
  return {
    stop: async () => {
      stopped = true;
      clearTimeout(timer);
      await round;
    },
  };
}
