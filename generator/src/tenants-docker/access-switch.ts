// `pgroute tenant enable|disable`: the operator's access switch over a tenant of any source, and
// ending the open sessions of a disabled tenant through HAProxy's admin socket. The switch is
// written to this replica's access.json and to its HAProxy's replicated table pgroute-access, which
// the peers protocol carries to every other replica (replicas/access-sync.ts applies it there). It
// lives beside the Docker tenants because the `tenant` commands share it; nothing here talks to
// Docker.

import { mkdir } from 'node:fs/promises';
import type { Logger } from 'pino';
import { loadRouteTable } from '../../../agent/src/index.js';
import { accessPath, readAccess, setAccessState, type AccessState } from '../access.js';
import { readLayout } from '../generate.js';
import { haproxyCli } from '../haproxy/master.js';
import { showPeersSection } from '../haproxy/show-peers.js';
import { ACCESS_TABLE, tableEntry, teach } from '../replicas/access-sync.js';
import { storeOfStateDir } from '../replicas/access-durable.js';
import { PEERS_SECTION } from '../replicas/peers.js';
import { statePaths } from '../settings.js';
import { tenantServers } from '../status/join.js';

/** Where a switch was written. */
export interface AccessWritten {
  /** False when the tenant already was in that state. */
  readonly changed: boolean;
  /** The access.json written. */
  readonly file: string;
  readonly table: string;
  /** The other replicas this HAProxy replicates to. */
  readonly peers: readonly string[];
  /** The durable store the running pgroute keeps (watch --access-configmap), and whether this wrote it. */
  readonly durable?: { readonly where: string; readonly problem?: string };
}

/**
 * Writes the switch to access.json and to the local HAProxy's replicated table. Refuses, writing
 * nothing, when that HAProxy does not answer: a switch only this replica's file knew would be
 * obeyed here and nowhere else.
 */
export async function switchAccess(stateDir: string, id: string, state: AccessState, log: Logger): Promise<AccessWritten> {
  const socket = statePaths(stateDir).adminSocket;
  let known;
  try {
    known = await tableEntry(socket, id);
  } catch (err) {
    throw new Error(
      `HAProxy is not running on the state dir ${stateDir} (${(err as Error).message}): nothing was written, since the other replicas would not learn it; ` +
        'start pgroute (`pgroute up` or `pgroute watch`) or pass the --state-dir (PGROUTE_STATE_DIR) of the running one',
    );
  }
  await mkdir(stateDir, { recursive: true });
  const { changed, entry } = await setAccessState(stateDir, id, state, known?.version ?? 0);
  await teach(socket, [[id, entry]]);
  // Names only: a peer that is down learns the entry when it reconnects (a full resync);
  // `pgroute status` shows who is connected now.
  const shown = showPeersSection(await haproxyCli(socket, 'show peers'), PEERS_SECTION);
  const peers = (shown?.peers ?? []).filter((p) => !p.local).map((p) => p.name).sort();
  log.info({ tenant: id, state, version: entry.version, changed, peers }, `tenant ${state} in access.json and the replicated table`);
  const durable = await persistSwitch(stateDir, log);
  return { changed, file: accessPath(stateDir), table: ACCESS_TABLE, peers, ...(durable === undefined ? {} : { durable }) };
}

/**
 * Writes access.json's switches to the durable store of the pgroute running on the state dir, if it
 * keeps one. A failure is reported, not fatal: the table carries the switch to every replica, and
 * the running pgroute writes the store as soon as it answers.
 */
async function persistSwitch(stateDir: string, log: Logger): Promise<AccessWritten['durable']> {
  let where = 'the durable store';
  try {
    const store = await storeOfStateDir(stateDir);
    if (store === undefined) return undefined;
    where = store.where;
    await store.save((await readAccess(stateDir)).entries);
    return { where };
  } catch (err) {
    const problem = (err as Error).message;
    log.warn({ store: where, err: problem }, `the switch is not in the ${where} yet: the running pgroute writes it there once it answers`);
    return { where, problem };
  }
}

/** Lets the tenant take new connections again. */
export function enableTenant(stateDir: string, id: string, log: Logger): Promise<AccessWritten> {
  return switchAccess(stateDir, id, 'enabled', log);
}

export interface Disabled extends AccessWritten {
  /** With killSessions: the servers whose sessions were shut down. */
  readonly servers?: readonly string[];
}

/**
 * Refuses new connections to the tenant. With `killSessions`, once the running pgroute has applied
 * the switch (or after 3 s), shuts down the open sessions of every server of the tenant, and once
 * more shortly after: a verdict computed just before the switch may open a session late.
 */
export async function disableTenant(stateDir: string, id: string, opts: { killSessions: boolean }, log: Logger): Promise<Disabled> {
  const written = await switchAccess(stateDir, id, 'disabled', log);
  if (!opts.killSessions) return written;
  const applied = await switchApplied(stateDir, id, 3_000);
  if (!applied) log.warn({ tenant: id }, 'the running pgroute did not confirm the switch within 3 s (routes.json); shutting the sessions down anyway');
  const servers = await killSessions(stateDir, id, log);
  await new Promise((r) => setTimeout(r, 250));
  await killSessions(stateDir, id, log).catch(() => undefined);
  log.info({ tenant: id, servers }, 'open sessions shut down');
  return { ...written, servers };
}

/**
 * Waits until routes.json says the tenant is disabled (or absent): the running pgroute has applied
 * the switch, so the agent refuses new connections. False after `timeoutMs`.
 */
async function switchApplied(stateDir: string, id: string, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const t = (await loadRouteTable(statePaths(stateDir).routes)).tenants.get(id);
      if (t === undefined || !t.enabled) return true;
    } catch {
      // not there (yet): nothing runs on this state dir, or it is being replaced
    }
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** `shutdown sessions server` for every server of the tenant's backends; returns the servers done. */
async function killSessions(stateDir: string, id: string, log: Logger): Promise<string[]> {
  const servers = tenantServers(await readLayout(statePaths(stateDir).layout), id);
  if (servers.length === 0) {
    log.warn({ tenant: id }, 'no backend of this tenant in layout.json: no sessions to shut down');
    return [];
  }
  const socket = statePaths(stateDir).adminSocket;
  const done: string[] = [];
  for (const s of servers) {
    const answer = (await haproxyCli(socket, `shutdown sessions server ${s}`)).trim();
    if (answer === '') done.push(s);
    else log.warn({ server: s, haproxy: answer }, 'HAProxy refused to shut down the sessions of a server');
  }
  return done;
}
