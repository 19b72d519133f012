// Carries servers' health across a reload. A new HAProxy worker starts every checked server UP but
// one failed check away from DOWN (health = rise): right after a reload, a single check that times
// out on a loaded machine refuses a healthy tenant. So, before a reload, the running worker's
// `show servers state` is saved to the file haproxy.cfg names in `server-state-file`, and the new
// worker loads it (`load-server-state-from-file global`): a server UP before is UP with full
// health after, and only `fall` failed checks in a row mark it DOWN.
//
// Only the health of a server that stays what it was is carried over: HAProxy would also apply
// the saved address and port (and maintenance), which the new configuration may have changed on
// purpose. A server whose backend, address or port differs in the new configuration, or that the
// new configuration disables, is left out and starts as configured. So is a server the running
// worker holds in maintenance: it is not checked there, so its DOWN state says nothing of its
// health. That is a vacated backend (a removed tenant) that the reload recreates when the tenant
// comes back: it must serve at once, as a new backend does, not wait for its first check (57P03).

import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { StatePaths } from '../settings.js';
import { haproxyCli } from './master.js';

/** Columns of `show servers state` (format version 1) that are read or rewritten. */
const COL = { backend: 1, server: 3, addr: 4, adminState: 6, fqdn: 17, port: 18 } as const;

/** srv_admin_state bits of maintenance (HAProxy's SRV_ADMF_FMAINT, IMAINT, CMAINT, RMAINT); drain is not. */
const ADMIN_MAINT = 0x01 | 0x02 | 0x04 | 0x20;

interface ConfiguredServer {
  readonly host: string;
  readonly port: string;
}

/** `backend/server` -> where the rendered haproxy.cfg points it; disabled servers are left out. */
export function configuredServers(haproxyConfig: string): Map<string, ConfiguredServer> {
  const servers = new Map<string, ConfiguredServer>();
  let backend: string | undefined;
  for (const line of haproxyConfig.split('\n')) {
    const section = /^(\S+)\s+(\S+)?/.exec(line);
    if (section) {
      backend = section[1] === 'backend' ? section[2] : undefined;
      continue;
    }
    if (backend === undefined) continue;
    const words = line.trim().split(/\s+/);
    if (words[0] !== 'server' || words.length < 3 || words.includes('disabled')) continue;
    const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d+)$/.exec(words[2] as string);
    if (m) servers.set(`${backend}/${words[1]}`, { host: (m[1] ?? m[2]) as string, port: m[3] as string });
  }
  return servers;
}

/**
 * The lines of `showServersState` (the CLI's answer) that the new configuration can take as they
 * are (servers in maintenance left out), with the administrative state cleared (the new
 * configuration decides maintenance and drain).
 */
export function carriedServerState(showServersState: string, newConfig: string): string {
  const lines = showServersState.split('\n');
  if (lines[0]?.trim() !== '1') return '';
  const configured = configuredServers(newConfig);
  const kept = ['1'];
  for (const line of lines.slice(1)) {
    if (line.startsWith('#')) {
      kept.push(line);
      continue;
    }
    const f = line.trim().split(' ');
    if (f.length <= COL.port) continue;
    const want = configured.get(`${f[COL.backend]}/${f[COL.server]}`);
    if (want === undefined || want.port !== f[COL.port] || (want.host !== f[COL.addr] && want.host !== f[COL.fqdn])) continue;
    if ((Number(f[COL.adminState]) & ADMIN_MAINT) !== 0) continue;
    f[COL.adminState] = '0';
    kept.push(f.join(' '));
  }
  return `${kept.join('\n')}\n`;
}

/**
 * Saves what the running worker knows of its servers for the worker the next reload starts, once
 * the new haproxy.cfg is in place.
 */
export async function saveServerState(paths: Pick<StatePaths, 'adminSocket' | 'haproxyConfig' | 'serverState'>): Promise<void> {
  const [shown, newConfig] = await Promise.all([haproxyCli(paths.adminSocket, 'show servers state'), readFile(paths.haproxyConfig, 'utf8')]);
  await replace(paths.serverState, carriedServerState(shown, newConfig) || NO_SERVER_STATE);
}

/** A state file that carries nothing: HAProxy reads it without a warning (a missing one warns). */
const NO_SERVER_STATE = '1\n';

/** Creates the empty state file unless there is one, before HAProxy first reads its configuration. */
export async function ensureServerStateFile(path: string): Promise<void> {
  await mkdir(dirname(path), { recursive: true, mode: 0o755 });
  await writeFile(path, NO_SERVER_STATE, { mode: 0o600, flag: 'wx' }).catch((err: NodeJS.ErrnoException) => {
    if (err.code !== 'EEXIST') throw err;
  });
}

/** After the reload the new worker has read it; a later start must not take stale health from it. */
export async function resetServerState(path: string): Promise<void> {
  await replace(path, NO_SERVER_STATE);
}

async function replace(path: string, content: string): Promise<void> {
  const tmp = `${path}.${process.pid}.tmp`;
  await writeFile(tmp, content, { mode: 0o600 });
  await rename(tmp, path);
}
