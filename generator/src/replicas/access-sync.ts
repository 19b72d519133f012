// Keeps this replica's access.json and the replicated HAProxy table `pgroute-access` in step:
// every ~500 ms it reads the table through the admin socket, learns the entries newer than its
// file (persisting them: the pipeline follows access.json and applies them without a reload), and
// teaches the table the entries it holds newer (or that the table lost, for instance at a reload
// in a worker's first seconds). HAProxy's peers protocol carries the table to the other replicas.
//
// A replica that starts while others run must not teach its older file before it has learned
// theirs: the peers protocol overwrites without comparing, so teaching waits until HAProxy's
// peers section has finished its resync (or a bound passes), while learning starts at once.

import type { Logger } from 'pino';
import { accessFile, readAccess, writeAccess } from '../access.js';
import { haproxyCli } from '../haproxy/master.js';
import { peersResynced } from '../haproxy/peers-resync.js';
import { tenantIdProblem } from '../validate.js';
import { PEERS_SECTION } from './peers.js';
import { startRounds } from './rounds.js';
import { encodeAccess, mergeAccess, parseAccessTable, type AccessEntry } from './access-version.js';

/** The table's name on the runtime API (haproxy/partials/access-table.hbs). */
export const ACCESS_TABLE = 'pgroute-access';

export interface AccessSyncOptions {
  readonly stateDir: string;
  readonly adminSocket: string;
  /** Whether other replicas are listed: alone, there is nothing to learn before teaching. */
  readonly hasRemotePeers: boolean;
  readonly log: Logger;
  readonly intervalMs?: number;
  /** Teach anyway this long after start when the resync never reports finished (peers all down). */
  readonly settleLimitMs?: number;
}

export interface AccessSync {
  /** Resolves once the first exchange after the resync is done (or the bound passed): converged. */
  readonly settled: Promise<void>;
  stop(): Promise<void>;
}

export function startAccessSync(opts: AccessSyncOptions): AccessSync {
  const { log } = opts;
  const started = Date.now();
  let resynced = !opts.hasRemotePeers;
  let markSettled: () => void = () => undefined;
  const settled = new Promise<void>((r) => (markSettled = r));
  const reported = new Set<string>();

  const round = async (): Promise<void> => {
    if (!resynced) resynced = peersResynced(await haproxyCli(opts.adminSocket, 'show peers'), PEERS_SECTION) === true || Date.now() - started > (opts.settleLimitMs ?? 10_000);
    const answer = await haproxyCli(opts.adminSocket, `show table ${ACCESS_TABLE}`);
    if (!answer.startsWith(`# table: ${ACCESS_TABLE},`)) throw new Error(`HAProxy answered "show table ${ACCESS_TABLE}" with ${JSON.stringify(answer.trim().slice(0, 120))}`);
    const table = parseAccessTable(answer, Date.now(), (id) => tenantIdProblem(id) === undefined);
    for (const b of table.bad) {
      const sig = `${b.key}\u0000${b.line.replace(/^0x[0-9a-f]+: /, '')}`;
      if (reported.has(sig)) continue;
      reported.add(sig);
      log.warn({ table: ACCESS_TABLE, key: b.key, entry: b.line, reason: b.reason }, 'ignored an entry of the replicated access table (never applied)');
    }
    const local = await readAccess(opts.stateDir);
    const m = mergeAccess(local.entries, table.entries);
    if (m.learned.length > 0) {
      await writeAccess(opts.stateDir, accessFile(m.merged));
      log.info({ learned: Object.fromEntries(m.learned.map((id) => [id, m.merged[id]])) }, 'access switches learned from the replicated table (access.json updated)');
    }
    if (resynced && m.teach.length > 0) {
      await teach(opts.adminSocket, m.teach.map((id) => [id, m.merged[id] as AccessEntry]));
      log.info({ taught: m.teach }, 'access switches written to the replicated table');
    }
    if (resynced) markSettled();
  };

  const rounds = startRounds({
    intervalMs: opts.intervalMs ?? 500,
    round,
    failed(err, first) {
      if (first) log.warn({ err: err.message }, 'cannot exchange access switches with HAProxy; retrying');
      // Whoever waits for convergence is not held forever by a HAProxy that does not answer.
      if (Date.now() - started > (opts.settleLimitMs ?? 10_000)) markSettled();
    },
    recovered() {
      log.info({ socket: opts.adminSocket }, 'the replicated access table answers again');
    },
  });

  return {
    settled,
    async stop() {
      await rounds.stop();
      markSettled();
    },
  };
}

/** Writes entries into the table, several per admin-socket connection; throws on a refusal. */
export async function teach(adminSocket: string, entries: readonly (readonly [string, AccessEntry])[]): Promise<void> {
  for (let i = 0; i < entries.length; i += 100) {
    const batch = entries.slice(i, i + 100);
    const answer = await haproxyCli(adminSocket, batch.map(([id, e]) => `set table ${ACCESS_TABLE} key ${id} data.gpt0 ${encodeAccess(e)}`).join('; '));
    if (answer.trim() !== '') throw new Error(`HAProxy refused to set the access table: ${answer.trim().slice(0, 200)}`);
  }
}

/** The table's entry for one tenant, if any (well-formed), through the admin socket. */
export async function tableEntry(adminSocket: string, id: string): Promise<AccessEntry | undefined> {
  const answer = await haproxyCli(adminSocket, `show table ${ACCESS_TABLE} key ${id}`);
  // 2.6 prints nothing at all for a key the table does not hold.
  if (answer.trim() === '') return undefined;
  if (!answer.startsWith(`# table: ${ACCESS_TABLE},`)) throw new Error(`HAProxy answered "show table ${ACCESS_TABLE}" with ${JSON.stringify(answer.trim().slice(0, 120))}`);
  return parseAccessTable(answer, Date.now(), (k) => k === id).entries[id];
}
