// `pgroute status`: every tenant pgroute serves (routes.json, layout.json, access.json) with the
// health and sessions of each target's backend, as HAProxy's admin socket reports them (`show stat`).

import { readFile } from 'node:fs/promises';
import { Option, type Command } from 'commander';
import type { Logger } from 'pino';
import { readAccess } from '../generator/src/access.js';
import { readLayout } from '../generator/src/generate.js';
import { haproxyCli } from '../generator/src/haproxy/master.js';
import { statePaths } from '../generator/src/settings.js';
import { joinStatus, type RoutesView, type StatusReport } from '../generator/src/status/join.js';
import { parseShowStat, type StatRow } from '../generator/src/status/show-stat.js';
import { statusTable } from '../generator/src/status/table.js';

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

/** The status of the pgroute on a state dir. Never throws for an absent HAProxy: health is then "unknown". */
export async function collectStatus(stateDir: string): Promise<StatusReport> {
  const paths = statePaths(stateDir);
  const [routes, layout, access] = await Promise.all([readRoutes(paths.routes), readLayout(paths.layout), readAccess(stateDir)]);
  let stats: StatRow[] | undefined;
  let statsError: string | undefined;
  try {
    stats = parseShowStat(await haproxyCli(paths.adminSocket, 'show stat', 3_000));
  } catch (err) {
    statsError = (err as Error).message;
  }
  return joinStatus({ routes, layout, disabled: access.disabled, ...(stats === undefined ? {} : { stats }), ...(statsError === undefined ? {} : { statsError }) });
}

export function registerStatusCommand(program: Command, log: Logger): Command {
  return program
    .command('status')
    .description('every tenant with its state (enabled/disabled, access.json included) and, per target, backend health and sessions (current, rate, total)')
    .addOption(new Option('--state-dir <dir>', 'state dir of the running pgroute').default('.pgroute').env('PGROUTE_STATE_DIR'))
    .option('--json', 'print JSON', false)
    .action(async (flags: { stateDir: string; json: boolean }) => {
      const report = await collectStatus(flags.stateDir);
      if (!report.haproxy.reachable) log.warn({ err: report.haproxy.error }, 'HAProxy admin socket did not answer; health and sessions unknown');
      process.stdout.write(flags.json ? `${JSON.stringify(report, null, 2)}\n` : statusTable(report));
      if (!report.haproxy.reachable) process.exitCode = 1;
    });
}
