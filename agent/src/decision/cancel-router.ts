/*
 * Routing CancelRequests
 * ======================
 *
 * A PostgreSQL client cancels a running query by opening a NEW connection and sending a
 * CancelRequest: a process id and a secret key, and nothing else, no user, no database, no tenant.
 * The key was handed to the client by the backend server (BackendKeyData) inside a session whose
 * bytes the agent never sees, so the key cannot tell us where to go. What is known is the client's
 * address, and where that address was routed before.
 *
 * Those records are kept by HAProxy, not here (docs/cancel.md): each replica has its own stick
 * table keyed by the client address, holding the cancel ids (contract.ts cancelId) of the last
 * CANCEL_RECORDS distinct tenant targets the address was routed to THROUGH THAT REPLICA, written by
 * configuration rules on every routed startup, only by the replica that owns the table, and
 * replicated to the others by HAProxy's peers protocol. With a CancelRequest HAProxy hands the agent
 * the address's record from every replica's table; here their union becomes the list of backends
 * of this replica's route table to send the
 * cancel to: every one of them (the server that does not know the key ignores it, as PostgreSQL
 * ignores every bad cancel key, and the client gets no reply either way).
 *
 * Guarantees and bounds:
 *  - A cancel only ever goes to a backend of a tenant target that a startup from the SAME address
 *    was routed to (on any replica). An address with no record is refused ('cancel-unroutable').
 *  - At most CANCEL_MAX_DESTINATIONS destinations per cancel (CANCEL_RECORDS per table), the most
 *    recent of every table first.
 *  - Each address has a token bucket for cancels (default burst 500, refilled at 100 per second);
 *    a cancel beyond it is refused ('cancel-rate-limited'). The burst is sized for an application
 *    host whose pools cancel every running query at once (a client-side statement timeout, a
 *    shutdown); the bucket only stops an address from probing faster than that. A bucket is made
 *    only for an address that has a record, and at most `maxAddresses` buckets are kept (least
 *    recently used evicted: a new bucket is full, so eviction only ever forgives).
 *  - Pure: time is a parameter (`now`, ms), no timers, no I/O.
 */

import { CANCEL_MAX_DESTINATIONS, CANCEL_RECORDS, cancelId } from '../contract.js';
import type { CancelId, RouteTable } from './types.js';

export type { CancelId } from './types.js';

export interface CancelRateOptions {
  /** Most addresses with a bucket (least recently used evicted first). Default 100,000. */
  readonly maxAddresses?: number;
  /** Cancels an address may send in a burst. Default 500. */
  readonly cancelBurst?: number;
  /** Cancels per second refilled into an address's bucket. Default 100. */
  readonly cancelRefillPerSecond?: number;
}

/** Where a cancel goes: a tenant target and this replica's backend for it. */
export interface CancelTarget {
  readonly tenant: string;
  readonly target: string;
  readonly backend: string;
}

export type CancelRouting =
  | { readonly kind: 'route'; readonly to: readonly [CancelTarget, ...CancelTarget[]] }
  | { readonly kind: 'unroutable'; readonly detail: string }
  | { readonly kind: 'rate-limited'; readonly detail: string };

export const CANCEL_DEFAULTS = {
  maxAddresses: 100_000,
  cancelBurst: 500,
  cancelRefillPerSecond: 100,
} as const;

/** Words of a record: two per destination. */
export const CANCEL_RECORD_WORDS = 2 * CANCEL_RECORDS;

/**
 * The ids of a record as HAProxy hands it over: `words` are the table's gpt0..gpt7 (pairs, slot i
 * in words 2i and 2i+1), `written` its gpc0 (how many ids were ever written: slot (written - 1) mod
 * CANCEL_RECORDS is the newest). Most recent first; empty slots and repeats left out; anything that
 * is not a 32-bit word counts as empty.
 */
export function recordIds(words: readonly number[], written: number): CancelId[] {
  const out: CancelId[] = [];
  const newest = Number.isInteger(written) && written > 0 ? (written - 1) % CANCEL_RECORDS : CANCEL_RECORDS - 1;
  for (let k = 0; k < CANCEL_RECORDS; k++) {
    const slot = (newest - k + CANCEL_RECORDS) % CANCEL_RECORDS;
    const a = word(words[2 * slot]);
    const b = word(words[2 * slot + 1]);
    if (a === 0 && b === 0) continue;
    if (out.some(([x, y]) => x === a && y === b)) continue;
    out.push([a, b]);
  }
  return out;
}

/**
 * The union of several tables' records (recordIds() of each), deduplicated and bounded: the newest
 * id of every table, then the second newest of every table, ..., at most CANCEL_MAX_DESTINATIONS.
 */
export function mergeRecords(records: readonly (readonly CancelId[])[]): CancelId[] {
  const out: CancelId[] = [];
  const depth = Math.max(0, ...records.map((r) => r.length));
  for (let k = 0; k < depth; k++) {
    for (const r of records) {
      const id = r[k];
      if (id === undefined || out.some(([x, y]) => x === id[0] && y === id[1])) continue;
      if (out.length === CANCEL_MAX_DESTINATIONS) return out;
      out.push(id);
    }
  }
  return out;
}

function word(v: number | undefined): number {
  return typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= 0xffff_ffff ? v : 0;
}

const idKey = (id: CancelId): string => `${id[0]}:${id[1]}`;

const indexes = new WeakMap<RouteTable, ReadonlyMap<string, CancelTarget>>();

/** cancel id -> target of this table; built on a table's first cancel and kept with the table. */
export function cancelTargetIndex(table: RouteTable): ReadonlyMap<string, CancelTarget> {
  let index = indexes.get(table);
  if (index === undefined) {
    const m = new Map<string, CancelTarget>();
    for (const t of table.tenants.values()) {
      for (const target of Object.keys(t.backends)) {
        const backend = t.backends[target];
        if (typeof backend === 'string' && backend !== '') m.set(idKey(cancelId(t.id, target)), { tenant: t.id, target, backend });
      }
    }
    index = m;
    indexes.set(table, index);
  }
  return index;
}

interface Bucket {
  tokens: number;
  at: number;
}

function positive(name: string, value: number | undefined, dflt: number, integer: boolean): number {
  if (value === undefined) return dflt;
  if (!Number.isFinite(value) || value <= 0 || (integer && !Number.isInteger(value))) {
    throw new RangeError(`CancelRateLimiter: ${name} must be a positive ${integer ? 'integer' : 'number'}, got ${value}`);
  }
  return value;
}

/** Normalizes the textual forms one client address may take (IPv4-mapped IPv6, hex case). */
export function normalizeAddress(address: string): string {
  const a = address.toLowerCase();
  return a.startsWith('::ffff:') && a.indexOf('.') > 7 ? a.slice(7) : a;
}

/** Per-address token buckets for cancels, bounded in number. */
export class CancelRateLimiter {
  readonly maxAddresses: number;
  readonly cancelBurst: number;
  readonly cancelRefillPerSecond: number;
  /** Insertion order = order of last use: the first entry is the least recently used. */
  private readonly buckets = new Map<string, Bucket>();

  constructor(options: CancelRateOptions = {}) {
    this.maxAddresses = positive('maxAddresses', options.maxAddresses, CANCEL_DEFAULTS.maxAddresses, true);
    this.cancelBurst = positive('cancelBurst', options.cancelBurst, CANCEL_DEFAULTS.cancelBurst, false);
    this.cancelRefillPerSecond = positive('cancelRefillPerSecond', options.cancelRefillPerSecond, CANCEL_DEFAULTS.cancelRefillPerSecond, false);
  }

  get size(): number {
    return this.buckets.size;
  }

  /** Takes one token from the address's bucket; false when it is empty. */
  take(address: string, now: number): boolean {
    const key = normalizeAddress(address);
    let b = this.buckets.get(key);
    if (b === undefined) {
      b = { tokens: this.cancelBurst, at: now };
      if (this.buckets.size >= this.maxAddresses) {
        const oldest = this.buckets.keys().next();
        if (oldest.done !== true) this.buckets.delete(oldest.value);
      }
    } else {
      this.buckets.delete(key);
      const elapsed = now - b.at;
      if (elapsed > 0) {
        b.tokens = Math.min(this.cancelBurst, b.tokens + (elapsed * this.cancelRefillPerSecond) / 1000);
        b.at = now;
      }
    }
    this.buckets.set(key, b);
    if (b.tokens < 1) return false;
    b.tokens -= 1;
    return true;
  }
}

/**
 * Where a CancelRequest from `address` goes, given the ids HAProxy recorded for that address
 * (recordIds()): every recorded target this table still serves (and `accept` takes, when given),
 * most recent first.
 */
export function routeCancel(
  address: string,
  ids: readonly CancelId[],
  table: RouteTable,
  limiter: CancelRateLimiter,
  now: number,
  accept?: (to: CancelTarget) => boolean,
): CancelRouting {
  if (typeof address !== 'string' || address === '') return { kind: 'unroutable', detail: 'the cancel request has no client address' };
  if (ids.length === 0) return { kind: 'unroutable', detail: 'no startup from this address was routed (or its record expired or was evicted)' };
  // Rate limit before looking further, so probing costs tokens too.
  if (!limiter.take(address, now)) {
    return {
      kind: 'rate-limited',
      detail: `more than ${limiter.cancelBurst} cancels in a burst or ${limiter.cancelRefillPerSecond}/s from this address`,
    };
  }
  const index = cancelTargetIndex(table);
  const to: CancelTarget[] = [];
  for (const id of ids.slice(0, CANCEL_MAX_DESTINATIONS)) {
    const t = index.get(idKey(id));
    if (t !== undefined && !to.some((x) => x.backend === t.backend) && (accept === undefined || accept(t))) to.push(t);
  }
  const [first, ...rest] = to;
  return first === undefined
    ? { kind: 'unroutable', detail: `none of the ${ids.length} recorded destinations of this address is a target the route table still has` }
    : { kind: 'route', to: [first, ...rest] };
}
