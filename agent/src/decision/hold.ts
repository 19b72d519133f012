// Held connections: those of a paused tenant, until it is resumed (`pgroute tenant pause|resume`),
// and those to a target whose backend HAProxy is adding (a change is applying it: the route table of
// that moment names the target as pending), until a table names the backend. HAProxy sends a held
// connection's startup packet again (the pgroute-hold message, in its own SPOE engine with a long
// `timeout processing`); the agent answers it only once the connection can go: when a new route
// table no longer holds it, it is decided again against that table (the tenant's current backend,
// after a move), or refused when the wait outlasts its timeout, or at once when too many of the
// tenant's connections are held already. Nothing is remembered between connections: each waiter
// holds its own redecide().

import { quoteValue } from '../quote.js';
import { SQLSTATE } from './decide.js';
import type { HoldCause, HoldVerdict, RefuseVerdict, Verdict } from './types.js';

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
  /** The latest 'hold' its redecide() gave (why it waits: the refusals say so). */
  held: HoldVerdict;
  readonly since: number;
  readonly redecide: () => Verdict;
  readonly answer: (v: Verdict) => void;
  timer: NodeJS.Timeout | undefined;
}

export function pauseTimeoutRefusal(held: HoldVerdict, timeoutMs: number): RefuseVerdict {
  const tenant = held.tenant;
  return {
    kind: 'refuse',
    reason: 'pause-timeout',
    sqlstate: SQLSTATE.cannotConnectNow,
    message: held.cause === 'paused'
      ? `tenant ${quoteValue(tenant)} is paused for maintenance and was not resumed within ${seconds(timeoutMs)}; try again later`
      : `tenant ${quoteValue(tenant)} is being reconfigured and its target ${quoteValue(held.target)} was not ready within ${seconds(timeoutMs)}; try again later`,
    logDetail: held.cause === 'paused'
      ? `held ${seconds(timeoutMs)} while tenant ${quoteValue(tenant)} stayed paused`
      : `held ${seconds(timeoutMs)} while HAProxy had no backend for target ${quoteValue(held.target)} of tenant ${quoteValue(tenant)} (the change adding it was not applied)`,
    tenant,
  };
}

export function pauseQueueFullRefusal(held: HoldVerdict, maxHeld: number): RefuseVerdict {
  const tenant = held.tenant;
  return {
    kind: 'refuse',
    reason: 'pause-queue-full',
    sqlstate: SQLSTATE.tooManyConnections,
    message: `too many connections are waiting for ${held.cause === 'paused' ? 'paused ' : ''}tenant ${quoteValue(tenant)}; try again later`,
    logDetail: `tenant ${quoteValue(tenant)} is ${causeText(held.cause)} and ${maxHeld} of its connections are held already (--pause-max-held)`,
    tenant,
  };
}

/** This replica stops for good while the connection is held: the client connects again (another
 * replica holds it there). 57P01, what PostgreSQL says when it shuts down: drivers and poolers retry it. */
export function pauseShutdownRefusal(held: HoldVerdict): RefuseVerdict {
  const tenant = held.tenant;
  return {
    kind: 'refuse',
    reason: 'pause-shutdown',
    sqlstate: SQLSTATE.adminShutdown,
    message: `the router holding this connection for ${held.cause === 'paused' ? 'paused ' : ''}tenant ${quoteValue(tenant)} is shutting down; connect again`,
    logDetail: `tenant ${quoteValue(tenant)} is ${causeText(held.cause)} and this replica is stopping`,
    tenant,
  };
}

function causeText(cause: HoldCause): string {
  return cause === 'paused' ? 'paused' : 'waiting for a target\'s backend';
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
      answer(pauseShutdownRefusal(first));
      return undefined;
    }
    let set = this.#waiting.get(tenant);
    if (set !== undefined && set.size >= this.#opts.maxHeld) {
      this.#events.ended?.('queue-full', tenant, 0);
      answer(pauseQueueFullRefusal(first, this.#opts.maxHeld));
      return undefined;
    }
    if (set === undefined) this.#waiting.set(tenant, (set = new Set()));
    const entry: Entry = { tenant, held: first, since: this.#now(), redecide, answer, timer: undefined };
    entry.timer = setTimeout(() => {
      if (this.#remove(entry)) {
        this.#events.ended?.('timed-out', tenant, this.#now() - entry.since);
        answer(pauseTimeoutRefusal(entry.held, this.#opts.timeoutMs));
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
    return this.#answerEach('shutdown', (entry) => pauseShutdownRefusal(entry.held));
  }

  /** Answers, in arrival order, every held connection whose verdict is no longer a 'hold'; returns how many. */
  #answerEach(outcome: HoldOutcome, verdictOf: (entry: Entry) => Verdict): number {
    let answered = 0;
    for (const set of [...this.#waiting.values()]) {
      for (const entry of [...set]) {
        const v = verdictOf(entry);
        if (v.kind === 'hold') {
          entry.held = v;
          continue;
        }
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
