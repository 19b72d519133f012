// Connections of a paused tenant, held until the tenant is resumed (`pgroute tenant pause|resume`).
// HAProxy sends a held connection's startup packet again (the pgroute-hold message, in its own SPOE
// engine with a long `timeout processing`); the agent answers it only once the connection can go:
// when a new route table no longer says the tenant is paused it is decided again against that table
// (the tenant's current backend, after a move), or refused when the pause outlasts its timeout, or
// at once when too many of the tenant's connections are held already. Nothing is remembered between
// connections: each waiter holds its own redecide().

import { quoteValue } from '../quote.js';
import { SQLSTATE } from './decide.js';
import type { RefuseVerdict, Verdict } from './types.js';

export interface HoldOptions {
  /** Longest a connection is held; then it is refused (57P03). */
  readonly timeoutMs: number;
  /** Most connections of one tenant held at once (this agent); more are refused (53300). */
  readonly maxHeld: number;
}

export const HOLD_DEFAULTS: HoldOptions = { timeoutMs: 30_000, maxHeld: 200 };

/** How a held connection ended (pgroute_hold_total{outcome}). */
export type HoldOutcome = 'released' | 'timed-out' | 'queue-full' | 'abandoned' | 'shutdown';
export const HOLD_OUTCOMES: readonly HoldOutcome[] = ['released', 'timed-out', 'queue-full', 'abandoned', 'shutdown'];

export interface HoldEvents {
  /** A connection started waiting, or stopped (held is the tenant's count now). */
  held?(tenant: string, heldNow: number): void;
  ended?(outcome: HoldOutcome, tenant: string, heldMs: number): void;
}

export interface Waiter {
  /** Stops waiting without an answer (HAProxy's connection to the agent closed). */
  cancel(): void;
}

interface Entry {
  readonly tenant: string;
  readonly since: number;
  readonly redecide: () => Verdict;
  readonly answer: (v: Verdict) => void;
  timer: NodeJS.Timeout | undefined;
}

export function pauseTimeoutRefusal(tenant: string, timeoutMs: number): RefuseVerdict {
  return {
    kind: 'refuse',
    reason: 'pause-timeout',
    sqlstate: SQLSTATE.cannotConnectNow,
    message: `tenant ${quoteValue(tenant)} is paused for maintenance and was not resumed within ${seconds(timeoutMs)}; try again later`,
    logDetail: `held ${seconds(timeoutMs)} while tenant ${quoteValue(tenant)} stayed paused`,
    tenant,
  };
}

export function pauseQueueFullRefusal(tenant: string, maxHeld: number): RefuseVerdict {
  return {
    kind: 'refuse',
    reason: 'pause-queue-full',
    sqlstate: SQLSTATE.tooManyConnections,
    message: `too many connections are waiting for paused tenant ${quoteValue(tenant)}; try again later`,
    logDetail: `tenant ${quoteValue(tenant)} is paused and ${maxHeld} of its connections are held already (--pause-max-held)`,
    tenant,
  };
}

/** This replica stops for good while the tenant is paused: the client connects again (another
 * replica holds it there). 57P01, what PostgreSQL says when it shuts down: drivers and poolers retry it. */
export function pauseShutdownRefusal(tenant: string): RefuseVerdict {
  return {
    kind: 'refuse',
    reason: 'pause-shutdown',
    sqlstate: SQLSTATE.adminShutdown,
    message: `the router holding this connection for paused tenant ${quoteValue(tenant)} is shutting down; connect again`,
    logDetail: `tenant ${quoteValue(tenant)} is paused and this replica is stopping`,
    tenant,
  };
}

function seconds(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`;
}

export class HoldQueue {
  readonly #opts: HoldOptions;
  readonly #events: HoldEvents;
  readonly #now: () => number;
  /** Per tenant, in arrival order (released first come, first served). */
  readonly #waiting = new Map<string, Set<Entry>>();
  /** shutdown() was called: nothing is held any more. */
  #closing = false;

  constructor(opts: HoldOptions = HOLD_DEFAULTS, events: HoldEvents = {}, now: () => number = Date.now) {
    this.#opts = opts;
    this.#events = events;
    this.#now = now;
  }

  /**
   * Decides now; a 'hold' waits until a later decide gives anything else (release()), the timeout
   * passes, or cancel(). `answer` is called at most once, never with a 'hold'.
   */
  wait(redecide: () => Verdict, answer: (v: Verdict) => void): Waiter | undefined {
    const first = redecide();
    if (first.kind !== 'hold') {
      answer(first);
      return undefined;
    }
    const tenant = first.tenant;
    if (this.#closing) {
      this.#events.ended?.('shutdown', tenant, 0);
      answer(pauseShutdownRefusal(tenant));
      return undefined;
    }
    let set = this.#waiting.get(tenant);
    if (set !== undefined && set.size >= this.#opts.maxHeld) {
      this.#events.ended?.('queue-full', tenant, 0);
      answer(pauseQueueFullRefusal(tenant, this.#opts.maxHeld));
      return undefined;
    }
    if (set === undefined) this.#waiting.set(tenant, (set = new Set()));
    const entry: Entry = { tenant, since: this.#now(), redecide, answer, timer: undefined };
    entry.timer = setTimeout(() => {
      if (this.#remove(entry)) {
        this.#events.ended?.('timed-out', tenant, this.#now() - entry.since);
        answer(pauseTimeoutRefusal(tenant, this.#opts.timeoutMs));
      }
    }, this.#opts.timeoutMs);
    set.add(entry);
    this.#events.held?.(tenant, set.size);
    return {
      cancel: () => {
        if (this.#remove(entry)) this.#events.ended?.('abandoned', tenant, this.#now() - entry.since);
      },
    };
  }

  /**
   * Decides every held connection again (call it when the route table changed): those no longer
   * held are answered, in arrival order. Returns how many were released.
   */
  release(): number {
    return this.#answerEach('released', (entry) => entry.redecide());
  }

  /**
   * This replica stops for good (not a reload): HAProxy will close whatever it still holds when it
   * stops, without a word. Every held connection is answered now with a refusal its client can act
   * on (connect again: the other replicas hold it), and so is every later one. Returns how many.
   */
  shutdown(): number {
    this.#closing = true;
    return this.#answerEach('shutdown', (entry) => pauseShutdownRefusal(entry.tenant));
  }

  /** Answers, in arrival order, every held connection whose verdict is no longer a 'hold'; returns how many. */
  #answerEach(outcome: HoldOutcome, verdictOf: (entry: Entry) => Verdict): number {
    let answered = 0;
    for (const set of [...this.#waiting.values()]) {
      for (const entry of [...set]) {
        const v = verdictOf(entry);
        if (v.kind === 'hold') continue;
        this.#remove(entry);
        answered++;
        this.#events.ended?.(outcome, entry.tenant, this.#now() - entry.since);
        entry.answer(v);
      }
    }
    return answered;
  }

  /** Connections held now, by tenant. */
  heldByTenant(): ReadonlyMap<string, number> {
    return new Map([...this.#waiting].map(([t, s]) => [t, s.size]));
  }

  get size(): number {
    let n = 0;
    for (const s of this.#waiting.values()) n += s.size;
    return n;
  }

  #remove(entry: Entry): boolean {
    const set = this.#waiting.get(entry.tenant);
    if (set === undefined || !set.delete(entry)) return false;
    clearTimeout(entry.timer);
    if (set.size === 0) this.#waiting.delete(entry.tenant);
    this.#events.held?.(entry.tenant, set.size);
    return true;
  }
}
