// Keeps the access switch durable beyond every replica's state dir (docs/replicas.md, "Kubernetes"):
// at start, before the first configuration is rendered, the durable store's switches newer than
// access.json are written into it (so a replica restarted from an empty state dir refuses a
// disabled tenant from its first connection); then, every second, whatever access.json holds newer
// than the store (a `tenant disable` here, a switch learned from the replicated table) is written
// to the store. Every replica does the same, merging by version: racing writers converge.
//
// After start this module only reads access.json: access-sync.ts is its one writer while running.
// A store that could not be read within the start bound is read later and what it holds newer is
// written into HAProxy's replicated table, from where access-sync learns it like any switch.

import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { accessFile, readAccess, writeAccess, type AccessEntry } from '../access.js';
import { teach } from './access-sync.js';
import type { AccessStore, ConfigMapRef } from './access-configmap.js';
import { mergeAccess } from './access-version.js';
import { startRounds } from './rounds.js';

export interface AccessPersistenceOptions {
  readonly stateDir: string;
  readonly adminSocket: string;
  readonly store: AccessStore;
  /** Where the store is, written to the state dir for `pgroute tenant` (storePointer). */
  readonly pointer: StorePointer;
  readonly log: Logger;
  readonly intervalMs?: number;
  /** How long start() retries reading the store before going on without it (API server away). */
  readonly loadLimitMs?: number;
}

export interface AccessPersistence {
  stop(): Promise<void>;
}

/** What `pgroute tenant enable|disable` reads to write the same store (access-store.json). */
export interface StorePointer {
  readonly configMap: ConfigMapRef;
}

export function pointerPath(stateDir: string): string {
  return join(stateDir, 'access-store.json');
}

/** The store the running pgroute on this state dir persists to, if any. */
export async function storeOfStateDir(stateDir: string): Promise<AccessStore | undefined> {
  let text: string;
  try {
    text = await readFile(pointerPath(stateDir), 'utf8');
  } catch {
    return undefined;
  }
  const p = JSON.parse(text) as Partial<StorePointer>;
  if (typeof p.configMap?.namespace !== 'string' || typeof p.configMap.name !== 'string') throw new Error(`${pointerPath(stateDir)} names no ConfigMap: remove it, or restart pgroute to rewrite it`);
  // Loaded only here: a pgroute without a durable store never loads the Kubernetes client.
  const { ConfigMapAccessStore, configMapApi } = await import('./access-configmap.js');
  return new ConfigMapAccessStore(p.configMap, configMapApi());
}

export async function startAccessPersistence(opts: AccessPersistenceOptions): Promise<AccessPersistence> {
  const { log, store, stateDir } = opts;
  await writeFile(pointerPath(stateDir), `${JSON.stringify(opts.pointer)}\n`, { mode: 0o644 });
  let loaded = false;
  const deadline = Date.now() + (opts.loadLimitMs ?? 30_000);
  for (let attempt = 0; !loaded; attempt++) {
    try {
      const stored = await store.read();
      const local = await readAccess(stateDir);
      const m = mergeAccess(local.entries, stored);
      if (m.learned.length > 0) await writeAccess(stateDir, accessFile(m.merged));
      log.info({ store: store.where, learned: Object.fromEntries(m.learned.map((id) => [id, m.merged[id]])) }, `access switches read from the ${store.where} (before the first configuration)`);
      loaded = true;
    } catch (err) {
      if (Date.now() > deadline) {
        log.warn({ store: store.where, err: (err as Error).message }, `cannot read the ${store.where}; starting without its switches (they are read and applied as soon as it answers)`);
        break;
      }
      if (attempt === 0) log.warn({ store: store.where, err: (err as Error).message }, `cannot read the ${store.where}; retrying before the first configuration`);
      await new Promise((r) => setTimeout(r, 500));
    }
  }

  let saved = '';
  const round = async (): Promise<void> => {
    if (!loaded) {
      const stored = await store.read();
      const local = await readAccess(stateDir);
      const newer = mergeAccess(local.entries, stored).learned;
      await teach(opts.adminSocket, newer.map((id) => [id, stored[id] as AccessEntry]));
      log.info({ store: store.where, taught: newer }, `access switches read from the ${store.where} (late) and written to the replicated table`);
      loaded = true;
    }
    const local = await readAccess(stateDir);
    const text = JSON.stringify(local.entries);
    if (text === saved) return;
    const w = await store.save(local.entries);
    saved = text;
    if (w.written.length > 0) log.info({ store: store.where, written: w.written, conflicts: w.conflicts }, `access switches written to the ${store.where}`);
  };
  return startRounds({
    intervalMs: opts.intervalMs ?? 1_000,
    round,
    failed(err, first) {
      if (first) log.warn({ store: store.where, err: err.message }, `cannot write access switches to the ${store.where}; retrying every second`);
    },
    recovered() {
      log.info({ store: store.where }, `the ${store.where} answers again`);
    },
  });
}
