// `pgroute tenant pause|resume`: the access switch's third state. Paused, a tenant's new
// connections are held (HAProxy's hold frontend, the agent's hold queue) instead of refused, while
// the operator moves it; resumed, they go to its backend of that moment. Replicated like enable and
// disable (access.json and the table pgroute-access), so a pause holds on every replica and a resume
// on any replica releases on all. Open sessions are left alone.

import type { Logger } from 'pino';
import { readAccess, type AccessEntry } from '../access.js';
import { ConfigError } from '../errors.js';
import { statePaths } from '../settings.js';
import { tableEntry } from '../replicas/access-sync.js';
import { switchAccess, type AccessWritten } from './access-switch.js';

/** Holds the tenant's new connections. A disabled tenant is refused: pausing would let it in at resume. */
export async function pauseTenant(stateDir: string, id: string, log: Logger): Promise<AccessWritten> {
  if ((await newestSwitch(stateDir, id))?.state === 'disabled') {
    throw new ConfigError(`tenant ${id} is disabled: its connections are refused, there is nothing to hold (\`pgroute tenant enable ${id}\` first, if it should take connections)`);
  }
  return switchAccess(stateDir, id, 'paused', log);
}

/** The newest of this replica's access.json entry and its HAProxy's replicated one. */
async function newestSwitch(stateDir: string, id: string): Promise<AccessEntry | undefined> {
  const [file, table] = await Promise.all([readAccess(stateDir), tableEntry(statePaths(stateDir).adminSocket, id).catch(() => undefined)]);
  const local = file.entries[id];
  return table !== undefined && (local === undefined || table.version > local.version) ? table : local;
}

/**
 * Lets the held and the new connections of a paused tenant go. A disabled tenant stays disabled
 * (resume is not enable: its connections would be routed); resuming a tenant that is not paused
 * changes nothing.
 */
export async function resumeTenant(stateDir: string, id: string, log: Logger): Promise<AccessWritten> {
  const newest = await newestSwitch(stateDir, id);
  if (newest?.state === 'disabled') {
    throw new ConfigError(`tenant ${id} is disabled, not paused: nothing to resume (\`pgroute tenant enable ${id}\` lets it take connections)`);
  }
  if (newest?.state !== 'paused') {
    return { ...(await switchAccess(stateDir, id, 'enabled', log)), changed: false };
  }
  return switchAccess(stateDir, id, 'enabled', log);
}
