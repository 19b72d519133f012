// How HAProxy's maps follow the agent's route table (docs/memo.md "Invalidation", docs/policy
// "Refusals over a limit"): at every publish, CLI commands in two phases around the moment the agent
// learns the new table. Pure: what HAProxy's map holds and what it must hold in, commands out.
//
// Two kinds of map, by what an entry's presence means:
// - 'withdraw-first' (the verdict memo's map): an entry lets HAProxy route without asking the agent,
//   so an entry removed or changed leaves BEFORE the agent learns the table, and new or changed ones
//   come AFTER: no connection is routed by a verdict the table no longer gives;
// - 'add-first' (the limits map): a key names its own content (a limit's value is in the key), so
//   new keys come BEFORE the agent learns the table (its new verdicts find them) and keys no longer
//   used leave AFTER (verdicts in flight with the old limits still find theirs).

export type MapOrder = 'withdraw-first' | 'add-first';

export interface MapSync {
  readonly file: string;
  readonly order: MapOrder;
  /** What HAProxy's map holds (undefined: unknown, then it is cleared first). */
  readonly before: ReadonlyMap<string, string> | undefined;
  readonly after: ReadonlyMap<string, string>;
}

export interface MapPhases {
  /** Sent before the agent learns the table. */
  readonly before: readonly string[];
  /** Sent after it. */
  readonly after: readonly string[];
  /** Keys of 'withdraw-first' maps whose entry was withdrawn for good or changed (pgroute_memo_invalidations_total). */
  readonly invalidated: number;
}

/** The commands of one map's sync. */
export function mapPhases(m: MapSync): MapPhases {
  const clear = m.before === undefined ? [`clear map ${m.file}`] : [];
  const before = m.before ?? new Map<string, string>();
  const del = (k: string): string => `del map ${m.file} ${k}`;
  const add = ([k, v]: readonly [string, string]): string => `add map ${m.file} ${k} ${v}`;
  const changed = [...before].filter(([k, v]) => m.after.has(k) && m.after.get(k) !== v).map(([k]) => k);
  const removed = [...before.keys()].filter((k) => !m.after.has(k));
  const fresh = [...m.after].filter(([k]) => !before.has(k));
  if (m.order === 'withdraw-first') {
    // A key added anew may still be in the map (a reload loaded it from the file): withdrawn first, so
    // that `add map` never leaves two entries for one key (a hit must never find an old one).
    return {
      before: [...clear, ...[...changed, ...removed, ...(m.before === undefined ? [] : fresh.map(([k]) => k))].map(del)],
      after: [...changed.map((k) => [k, m.after.get(k) as string] as const), ...fresh].map(add),
      invalidated: changed.length + removed.length,
    };
  }
  // A key anew that a reload loaded already gets a second, identical entry: harmless (a lookup finds
  // the same bytes), and `del map` removes both. A changed value (a new pgroute's wording) is
  // replaced before the agent learns the table; a lookup in between falls back to the generic refusal.
  return {
    before: [...clear, ...changed.map(del), ...[...changed.map((k) => [k, m.after.get(k) as string] as const), ...fresh].map(add)],
    after: removed.map(del),
    invalidated: 0,
  };
}
