// `pgroute status`: what the pgroute on a state dir serves (routes.json, layout.json, access.json)
// and refuses (refused.json), joined with what HAProxy's admin socket reports (`show stat`).

import { readFile } from 'node:fs/promises';
import { readAccess } from '../access.js';
import { readLayout } from '../generate.js';
import { haproxyCli } from '../haproxy/master.js';
import type { RefusedTenant } from '../model.js';
import { statePaths } from '../settings.js';
import { joinStatus, type RoutesView, type StatusReport } from './join.js';
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
  const doc = JSON.parse(text) as { tenants?: unknown };
  return { tenants: Array.isArray(doc.tenants) ? (doc.tenants as RoutesView['tenants']) : [] };
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
  try {
    stats = parseShowStat(await haproxyCli(paths.adminSocket, 'show stat', 3_000));
    // A HAProxy rendered before the admission tables existed has none: no counters, no failure.
    counters = await haproxyCli(paths.adminSocket, `show table ${TENANTS_TABLE}`, 3_000).then(parseTenantCounters, () => undefined);
  } catch (err) {
    statsError = (err as Error).message;
  }
  // The replica's view of its peers (#10) is collected here and joined into the report.
  return joinStatus({
    routes,
    layout,
    disabled: access.disabled,
    refused,
    ...(stats === undefined ? {} : { stats }),
    ...(statsError === undefined ? {} : { statsError }),
    ...(counters === undefined ? {} : { counters }),
  });
}
