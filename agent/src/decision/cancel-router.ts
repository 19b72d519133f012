/*
 * Routing CancelRequests
 * ======================
 *
 * A PostgreSQL client cancels a running query by opening a NEW connection and sending a
 * CancelRequest: a process id and a secret key, and nothing else, no user, no database, no tenant.
 * The key was handed to the client by the backend server (BackendKeyData) inside a session whose
 * bytes the agent never sees, so the key cannot tell us where to go.
 * What the agent does know is the client's address.
 *
 * So, on every routed startup the agent records (client address -> backend, last seen), and a
 * CancelRequest from an address goes to the backend this address was MOST RECENTLY routed to,
 * among its records that have not expired. The backend checks the key itself; a cancel that reaches
 * the wrong server of the right client is ignored by that server, as PostgreSQL ignores every bad
 * cancel key (and the client gets no reply either way).
 *
 * Guarantees and bounds:
 *  - A cancel is only ever routed to a backend that a startup from the SAME address was routed to.
 *    An address with no (unexpired) record is refused ('cancel-unroutable'); nothing is guessed.
 *  - Memory is bounded: at most `maxAddresses` addresses (default 100,000; the least recently
 *    recorded one is evicted first) and at most `maxBackendsPerAddress` distinct backends per
 *    address (default 4; the least recently used is dropped). Records expire `ttlMs` after the
 *    address's last routed startup to that backend (default 24 h: sessions are long-lived, and a
 *    cancel may come hours after the connect). Expired addresses are removed lazily: a little on
 *    every record(), and all at once with sweep(now).
 *  - Each address has a token bucket for cancels (default burst 500, refilled at 100 per second);
 *    a cancel beyond it is refused ('cancel-rate-limited'; the agent counts it in
 *    pgroute_agent_cancels_dropped_total and logs it). The burst is sized for an application
 *    host whose pools (several processes of up to ~100 connections each) cancel every running
 *    query at once, as on a client-side statement timeout or a shutdown; the bucket only stops an
 *    address from probing faster than that. Buckets live in the address records, so an address
 *    that was never routed costs no memory at all.
 *  - Pure: time is a parameter (`now`, ms), no timers, no I/O.
 *
 * Limits (on purpose, write them down):
 *  - Several tenants behind one NAT address: a cancel goes to the backend most recently routed for
 *    that address, which may belong to a different client behind the same NAT. The cancel then
 *    fails (wrong key on that server) and the original query runs on. The same holds for one client
 *    with sessions to several tenants: only the most recent tenant's sessions can be cancelled.
 *  - After the agent restarts, or after an address is evicted or expired, its sessions cannot be
 *    cancelled through the router until the address connects again.
 *  - Records are per agent process: with several agents behind one HAProxy, a cancel reaches the
 *    right backend only when it is decided by an agent that saw the startup (or the agents share
 *    nothing and the operator accepts that).
 */

import type { RouteVerdict } from './types.js';

export interface CancelRouterOptions {
  /** Most addresses remembered (least recently recorded evicted first). Default 100,000. */
  readonly maxAddresses?: number;
  /** Most distinct backends remembered per address. Default 4. */
  readonly maxBackendsPerAddress?: number;
  /** A record expires this long after the last routed startup it stands for. Default 24 h. */
  readonly ttlMs?: number;
  /** Cancels an address may send in a burst. Default 500. */
  readonly cancelBurst?: number;
  /** Cancels per second refilled into an address's bucket. Default 100. */
  readonly cancelRefillPerSecond?: number;
}

/** Where a routed startup went: the tenant, target and backend. A RouteVerdict fits as is. */
export interface CancelTarget {
  readonly tenant: string;
  readonly target: string;
  readonly backend: string;
}

export type CancelRouting =
  | { readonly kind: 'route'; readonly to: CancelTarget }
  | { readonly kind: 'unroutable'; readonly detail: string }
  | { readonly kind: 'rate-limited'; readonly detail: string };

interface Recent {
  to: CancelTarget;
  lastSeen: number;
}

interface AddressRecord {
  /** Most recent first; at most maxBackendsPerAddress entries, distinct backends. */
  readonly recent: Recent[];
  lastSeen: number;
  tokens: number;
  tokensAt: number;
}

export const CANCEL_DEFAULTS = {
  maxAddresses: 100_000,
  maxBackendsPerAddress: 4,
  ttlMs: 24 * 60 * 60 * 1000,
  cancelBurst: 500,
  cancelRefillPerSecond: 100,
} as const;

/** Normalizes the textual forms one client address may take (IPv4-mapped IPv6, hex case). */
export function normalizeAddress(address: string): string {
  const a = address.toLowerCase();
  return a.startsWith('::ffff:') && a.indexOf('.') > 7 ? a.slice(7) : a;
}

function positive(name: string, value: number | undefined, dflt: number, integer: boolean): number {
  if (value === undefined) return dflt;
  if (!Number.isFinite(value) || value <= 0 || (integer && !Number.isInteger(value))) {
    throw new RangeError(`CancelRouter: ${name} must be a positive ${integer ? 'integer' : 'number'}, got ${value}`);
  }
  return value;
}

export class CancelRouter {
  readonly maxAddresses: number;
  readonly maxBackendsPerAddress: number;
  readonly ttlMs: number;
  readonly cancelBurst: number;
  readonly cancelRefillPerSecond: number;
  /** Insertion order = order of last record(): the first entry is the least recently recorded. */
  private readonly byAddress = new Map<string, AddressRecord>();
  private records = 0;
  /** The address recorded last, i.e. the last entry of byAddress (when it is still there). */
  private lastKey: string | undefined;

  constructor(options: CancelRouterOptions = {}) {
    this.maxAddresses = positive('maxAddresses', options.maxAddresses, CANCEL_DEFAULTS.maxAddresses, true);
    this.maxBackendsPerAddress = positive(
      'maxBackendsPerAddress',
      options.maxBackendsPerAddress,
      CANCEL_DEFAULTS.maxBackendsPerAddress,
      true,
    );
    this.ttlMs = positive('ttlMs', options.ttlMs, CANCEL_DEFAULTS.ttlMs, false);
    this.cancelBurst = positive('cancelBurst', options.cancelBurst, CANCEL_DEFAULTS.cancelBurst, false);
    this.cancelRefillPerSecond = positive(
      'cancelRefillPerSecond',
      options.cancelRefillPerSecond,
      CANCEL_DEFAULTS.cancelRefillPerSecond,
      false,
    );
  }

  /** Number of addresses currently remembered (expired ones included until swept). */
  get size(): number {
    return this.byAddress.size;
  }

  /** Remembers that a startup from `address` was routed to `to` at `now`. */
  record(address: string, to: CancelTarget, now: number): void {
    // No address: nothing a later cancel could be matched with.
    if (typeof address !== 'string' || address === '') return;
    const key = normalizeAddress(address);
    let rec = this.byAddress.get(key);
    if (rec === undefined) {
      rec = { recent: [{ to, lastSeen: now }], lastSeen: now, tokens: this.cancelBurst, tokensAt: now };
      this.byAddress.set(key, rec);
      if (this.byAddress.size > this.maxAddresses) this.evictOldest();
    } else {
      // Move to the most-recently-recorded end (already there when it was the last one recorded).
      if (key !== this.lastKey) {
        this.byAddress.delete(key);
        this.byAddress.set(key, rec);
      }
      rec.lastSeen = now;
      const recent = rec.recent;
      let i = 0;
      while (i < recent.length && (recent[i] as Recent).to.backend !== to.backend) i++;
      let item: Recent;
      if (i < recent.length) {
        item = recent[i] as Recent;
        item.to = to;
        item.lastSeen = now;
      } else {
        item = { to, lastSeen: now };
        if (recent.length < this.maxBackendsPerAddress) recent.push(item);
        else i = recent.length - 1; // overwrite the least recent
        recent[i] = item;
      }
      // Shift entries 0..i-1 down by one and put `item` first.
      for (let j = i; j > 0; j--) recent[j] = recent[j - 1] as Recent;
      recent[0] = item;
    }
    this.lastKey = key;
    // Lazy expiry, amortized: removes expired addresses faster than record() can add them.
    if ((++this.records & 63) === 0) this.sweep(now, 128);
  }

  /**
   * Where a CancelRequest from `address` goes. `accept` may reject a recorded target (e.g. one the
   * current route table no longer has); the most recent accepted, unexpired target is chosen.
   */
  route(address: string, now: number, accept?: (to: CancelTarget) => boolean): CancelRouting {
    if (typeof address !== 'string' || address === '') {
      return { kind: 'unroutable', detail: 'the cancel request has no client address' };
    }
    const key = normalizeAddress(address);
    const rec = this.byAddress.get(key);
    if (rec === undefined) return { kind: 'unroutable', detail: 'no startup from this address was routed (or it was evicted)' };
    if (now - rec.lastSeen > this.ttlMs) {
      this.byAddress.delete(key);
      return { kind: 'unroutable', detail: 'the records of this address have expired' };
    }
    // Rate limit before looking further, so probing costs tokens too.
    const elapsed = now - rec.tokensAt;
    if (elapsed > 0) {
      rec.tokens = Math.min(this.cancelBurst, rec.tokens + (elapsed * this.cancelRefillPerSecond) / 1000);
      rec.tokensAt = now;
    }
    if (rec.tokens < 1) {
      return {
        kind: 'rate-limited',
        detail: `more than ${this.cancelBurst} cancels in a burst or ${this.cancelRefillPerSecond}/s from this address`,
      };
    }
    rec.tokens -= 1;
    for (const r of rec.recent) {
      if (now - r.lastSeen > this.ttlMs) break; // most recent first: the rest are older still
      if (accept === undefined || accept(r.to)) return { kind: 'route', to: r.to };
    }
    return { kind: 'unroutable', detail: 'no unexpired record of this address names a backend the route table still has' };
  }

  /** Removes up to `max` expired addresses (oldest first); returns how many were removed. */
  sweep(now: number, max = Number.POSITIVE_INFINITY): number {
    let removed = 0;
    for (const [key, rec] of this.byAddress) {
      if (removed >= max || now - rec.lastSeen <= this.ttlMs) break;
      this.byAddress.delete(key);
      removed++;
    }
    return removed;
  }

  private evictOldest(): void {
    const oldest = this.byAddress.keys().next();
    if (oldest.done !== true) this.byAddress.delete(oldest.value);
  }
}
