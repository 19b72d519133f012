// The replicated access switch, pure: states and versions, their encoding in the HAProxy stick
// table `pgroute-access` (gpt0 = version << 2 | state), reading `show table`, and the merge by
// version that every replica runs the same way, so that all of them settle on the newest switch.

/** Index = the state's code in the table. `paused` is carried for the pause/resume policy. */
export const ACCESS_STATES = ['enabled', 'disabled', 'paused'] as const;
export type AccessState = (typeof ACCESS_STATES)[number];

export interface AccessEntry {
  readonly state: AccessState;
  /** Seconds since VERSION_EPOCH_MS, made strictly increasing per tenant (see nextVersion). */
  readonly version: number;
}

/** 2025-01-01T00:00:00Z: versions are seconds since then, 30 bits, enough until 2059. */
export const VERSION_EPOCH_MS = Date.UTC(2025, 0, 1);
/** gpt0 is an unsigned 32-bit tag; two bits hold the state. */
export const MAX_VERSION = 2 ** 30 - 1;
/** A table entry dated further ahead than this is refused as forged or broken. */
export const MAX_FUTURE_SECONDS = 3_600;

export function isVersion(v: unknown): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= MAX_VERSION;
}

/**
 * A version for a new switch: the clock (seconds since the epoch), but always above the newest
 * version known for the tenant, so that a switch set twice within a second, or on a replica whose
 * clock is behind, still wins (a hybrid logical clock).
 */
export function nextVersion(nowMs: number, known: number): number {
  return Math.min(MAX_VERSION, Math.max(Math.floor((nowMs - VERSION_EPOCH_MS) / 1000), known + 1));
}

export function encodeAccess(e: AccessEntry): number {
  return e.version * 4 + ACCESS_STATES.indexOf(e.state);
}

/** True when `a` wins over `b`: a newer version, or the same version and the higher state code. */
export function newer(a: AccessEntry, b: AccessEntry | undefined): boolean {
  if (b === undefined) return true;
  return a.version > b.version || (a.version === b.version && ACCESS_STATES.indexOf(a.state) > ACCESS_STATES.indexOf(b.state));
}

export interface BadTableEntry {
  /** The key as HAProxy printed it. */
  readonly key: string;
  readonly line: string;
  readonly reason: string;
}

export interface AccessTable {
  readonly entries: Readonly<Record<string, AccessEntry>>;
  readonly bad: readonly BadTableEntry[];
}

/** `0x55..: key=acme use=0 exp=0 gpt0=4097` (3.x adds `shard=0`); anything else is not an entry. */
const ENTRY_LINE = /^0x[0-9a-f]+: key=(\S+) use=\d+ exp=\d+(?: shard=\d+)? gpt0=(\d+)$/;

/**
 * The entries of `show table pgroute-access`. Whatever could not come from a pgroute (a key that is
 * no tenant id, an unknown state code, a version beyond 30 bits or dated in the future) is listed
 * in `bad` and never reaches routing.
 */
export function parseAccessTable(text: string, nowMs: number, validId: (id: string) => boolean): AccessTable {
  const entries: Record<string, AccessEntry> = {};
  const bad: BadTableEntry[] = [];
  const latest = nextVersion(nowMs, 0) + MAX_FUTURE_SECONDS;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const m = ENTRY_LINE.exec(line);
    if (m === null) {
      bad.push({ key: /key=(\S*)/.exec(line)?.[1] ?? '', line, reason: 'not an entry of the form key=<tenant> ... gpt0=<n>' });
      continue;
    }
    const key = m[1] ?? '';
    const value = Number(m[2]);
    const code = value % 4;
    const version = Math.floor(value / 4);
    const state = ACCESS_STATES[code];
    if (!validId(key)) bad.push({ key, line, reason: 'the key is not a tenant id' });
    else if (state === undefined) bad.push({ key, line, reason: `unknown state code ${code}` });
    else if (value > 2 ** 32 - 1) bad.push({ key, line, reason: 'gpt0 beyond 32 bits' });
    else if (version > latest) bad.push({ key, line, reason: `version ${version} is dated more than ${MAX_FUTURE_SECONDS} s ahead of this replica's clock` });
    else entries[key] = { state, version };
  }
  return { entries, bad };
}

export interface AccessMerge {
  /** The newest entry of each tenant, from either side. */
  readonly merged: Readonly<Record<string, AccessEntry>>;
  /** Tenants whose table entry won: what this replica learns. */
  readonly learned: readonly string[];
  /** Tenants whose local entry is newer than the table's, or missing from it: what it teaches. */
  readonly teach: readonly string[];
}

/** Newer wins, entry by entry; ties keep the local one (they are equal or tie-broken alike). */
export function mergeAccess(local: Readonly<Record<string, AccessEntry>>, table: Readonly<Record<string, AccessEntry>>): AccessMerge {
  const merged: Record<string, AccessEntry> = { ...local };
  const learned: string[] = [];
  const teach: string[] = [];
  for (const [id, t] of Object.entries(table)) {
    const l = local[id];
    if (newer(t, l)) {
      merged[id] = t;
      learned.push(id);
    }
  }
  for (const [id, l] of Object.entries(local)) if (newer(l, table[id])) teach.push(id);
  return { merged, learned: learned.sort(), teach: teach.sort() };
}
