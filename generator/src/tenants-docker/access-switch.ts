// `pgroute tenant enable|disable`: the operator's access switch over a tenant of any source
// (access.json, applied by the running pgroute without a reload), and ending the open sessions of a
// disabled tenant through HAProxy's admin socket. It lives beside the Docker tenants because the
// `tenant` commands share it; nothing here talks to Docker.

import { mkdir } from 'node:fs/promises';
import type { Logger } from 'pino';
import { loadRouteTable } from '../../../agent/src/index.js';
import { setAccess } from '../access.js';
import { readLayout } from '../generate.js';
import { haproxyCli } from '../haproxy/master.js';
import { statePaths } from '../settings.js';
import { tenantServers } from '../status/join.js';

/** Lets the tenant take new connections again; false when it already could. */
export async function enableTenant(stateDir: string, id: string, log: Logger): Promise<boolean> {
  await mkdir(stateDir, { recursive: true });
  const changed = await setAccess(stateDir, id, true);
  log.info({ tenant: id, changed }, 'tenant enabled in access.json');
  return changed;
}

export interface Disabled {
  /** False when the tenant was disabled already. */
  readonly changed: boolean;
  /** With killSessions: the servers whose sessions were shut down. */
  readonly servers?: readonly string[];
}

/**
 * Refuses new connections to the tenant. With `killSessions`, once the running pgroute has applied
 * the switch (or after 3 s), shuts down the open sessions of every server of the tenant, and once
 * more shortly after: a verdict computed just before the switch may open a session late.
 */
export async function disableTenant(stateDir: string, id: string, opts: { killSessions: boolean }, log: Logger): Promise<Disabled> {
  await mkdir(stateDir, { recursive: true });
  const changed = await setAccess(stateDir, id, false);
  log.info({ tenant: id, changed }, 'tenant disabled in access.json');
  if (!opts.killSessions) return { changed };
  const applied = await switchApplied(stateDir, id, 3_000);
  if (!applied) log.warn({ tenant: id }, 'the running pgroute did not confirm the switch within 3 s (routes.json); shutting the sessions down anyway');
  const servers = await killSessions(stateDir, id, log);
  await new Promise((r) => setTimeout(r, 250));
  await killSessions(stateDir, id, log).catch(() => undefined);
  log.info({ tenant: id, servers }, 'open sessions shut down');
  return { changed, servers };
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
