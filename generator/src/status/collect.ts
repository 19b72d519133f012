// `pgroute status`: what the pgroute on a state dir serves (routes.json, layout.json, access.json)
// and refuses (refused.json), joined with what HAProxy's admin socket reports (`show stat`, the
// tenants' counters, `show peers`).

import { readFile } from 'node:fs/promises';
import { pausedTenants, readAccess } from '../access.js';
import { readLayout } from '../generate.js';
import { haproxyCli } from '../haproxy/master.js';
import { showPeersSection } from '../haproxy/show-peers.js';
import type { RefusedTenant } from '../model.js';
import { PEERS_SECTION } from '../replicas/peers.js';
import { statePaths } from '../settings.js';
import { joinStatus, replicaStatus, type ReplicaStatus, type RoutesView, type StatusReport } from './join.js';
import { parseShowStat, type StatRow } from './show-stat.js';
import { parseTenantCounters, TENANTS_TABLE, type TenantCounters } from './show-table.js';

/** routes.json as status shows it: leniently, an absent file being no tenants. */
async function readRoutes(path: string): Promise<RoutesView> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch {
    return { tenants: [] };
  }
  let doc: { tenants?: unknown };
  try {
    doc = JSON.parse(text) as { tenants?: unknown };
  } catch (err) {
    throw new Error(`${path} is not valid JSON (${(err as Error).message.split('\n')[0]}): is this a pgroute state dir? A run of generate, reload, up or watch on it writes it again`);
  }
  return { tenants: Array.isArray(doc?.tenants) ? (doc.tenants as RoutesView['tenants']) : [] };
}

/** refused.json as the pipeline wrote it: leniently, an absent or unreadable file being no refusals. */
async function readRefused(path: string): Promise<RefusedTenant[]> {
  try {
    const doc = JSON.parse(await readFile(path, 'utf8')) as unknown;
    if (!Array.isArray(doc)) return [];
    return doc.filter((r): r is RefusedTenant => typeof r === 'object' && r !== null && typeof (r as RefusedTenant).where === 'string' && typeof (r as RefusedTenant).reason === 'string');
  } catch {
    return [];
  }
}

/** The status of the pgroute on a state dir. Never throws for an absent HAProxy: health is then "unknown". */
export async function collectStatus(stateDir: string): Promise<StatusReport> {
  const paths = statePaths(stateDir);
  const [routes, layout, access, refused] = await Promise.all([readRoutes(paths.routes), readLayout(paths.layout), readAccess(stateDir), readRefused(paths.refused)]);
  let stats: StatRow[] | undefined;
  let statsError: string | undefined;
  let counters: Map<string, TenantCounters> | undefined;
  let replica: ReplicaStatus | undefined;
  try {
    stats = parseShowStat(await haproxyCli(paths.adminSocket, 'show stat', 3_000));
    // A HAProxy rendered before the admission tables existed has none: no counters, no failure.
    counters = await haproxyCli(paths.adminSocket, `show table ${TENANTS_TABLE}`, 3_000).then(parseTenantCounters, () => undefined);
    // This replica's view of its peers; a HAProxy without the section shows none, without failing.
    const section = await haproxyCli(paths.adminSocket, 'show peers', 3_000).then((answer) => showPeersSection(answer, PEERS_SECTION), () => undefined);
    if (section !== undefined) replica = replicaStatus(section);
  } catch (err) {
    statsError = (err as Error).message;
  }
  return joinStatus({
    routes,
    layout,
    disabled: access.disabled,
    paused: pausedTenants(access),
    refused,
    ...(stats === undefined ? {} : { stats }),
    ...(statsError === undefined ? {} : { statsError }),
    ...(counters === undefined ? {} : { counters }),
    ...(replica === undefined ? {} : { replica }),
  });
}
