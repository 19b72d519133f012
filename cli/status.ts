// `pgroute status`: every tenant pgroute serves (routes.json, layout.json, access.json) with the
// health and sessions of each target's backend, as HAProxy's admin socket reports them (`show stat`).

import { Option, type Command } from 'commander';
import type { Logger } from 'pino';
import { existsSync } from 'node:fs';
import { collectStatus, ConfigError, stateDirOwner, statePaths, statusTable } from '../generator/src/index.js';

export function registerStatusCommand(program: Command, log: Logger): Command {
  return program
    .command('status')
    .description('every tenant with its state (enabled/disabled, access.json included) and, per target, backend health and sessions (current, rate, total); then each tenant\'s policy: allowed networks, limits, open connections, refusals over each limit; then this replica\'s name, initial resync and each peer (address, connected now, last handshake)')
    .addOption(new Option('--state-dir <dir>', 'state dir of the running pgroute').default('.pgroute').env('PGROUTE_STATE_DIR'))
    .option('--json', 'print JSON', false)
    .action(async (flags: { stateDir: string; json: boolean }) => {
      const paths = statePaths(flags.stateDir);
      if (!existsSync(paths.routes) && !existsSync(paths.layout)) {
        const owner = await stateDirOwner(paths.owner);
        if (owner !== undefined) throw new Error(`the pgroute up/watch on ${flags.stateDir} (${owner}) has not applied its first configuration yet (it may be waiting for its sources); try again in a moment`);
        throw new ConfigError(`--state-dir (PGROUTE_STATE_DIR): ${flags.stateDir} holds no routes.json or layout.json, so it is no state dir of a pgroute that ran; give the --state-dir the running pgroute was given`);
      }
      const report = await collectStatus(flags.stateDir);
      if (!report.haproxy.reachable) log.warn({ err: report.haproxy.error }, 'HAProxy admin socket did not answer; health and sessions unknown');
      process.stdout.write(flags.json ? `${JSON.stringify(report, null, 2)}\n` : statusTable(report));
      if (!report.haproxy.reachable) process.exitCode = 1;
    });
}
