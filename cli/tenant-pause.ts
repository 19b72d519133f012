// `pgroute tenant pause|resume <id>`: hold a tenant's new connections while it is moved, then let
// them go to where it lives now (generator/src/tenants-docker/pause.ts; docs/pause.md).

import { Option, type Command } from 'commander';
import type { Logger } from 'pino';
import { checkTenantId, pauseTenant, resumeTenant, type AccessWritten } from '../generator/src/index.js';

export interface PauseCommandHelpers {
  readonly stateDirOption: () => Option;
  readonly checkKnownTenant: (stateDir: string, id: string) => Promise<void>;
  readonly whereWritten: (w: AccessWritten) => string;
}

export function registerPauseCommands(tenant: Command, log: Logger, h: PauseCommandHelpers): void {
  tenant
    .command('pause')
    .description(
      'hold the tenant\'s new connections on every replica (queued up to --pause-max-held per replica, at most --pause-timeout; then refused 57P03) while it is moved; ' +
        'open sessions are left alone; `pgroute tenant resume` lets them go to its backend of that moment (access.json and HAProxy\'s replicated table; HAProxy must be running)',
    )
    .argument('<id>', 'tenant id')
    .addOption(h.stateDirOption())
    .action(async (rawId: string, flags: { stateDir: string }) => {
      const id = checkTenantId(rawId);
      await h.checkKnownTenant(flags.stateDir, id);
      const written = await pauseTenant(flags.stateDir, id, log);
      process.stdout.write(`tenant ${id} paused${written.changed ? '' : ' (it was)'}: new connections wait for \`pgroute tenant resume ${id}\`; ${h.whereWritten(written)}\n`);
    });

  tenant
    .command('resume')
    .description('let a paused tenant\'s held and new connections go, to its backend as it is now (after a move: the new one), on every replica; a disabled tenant stays disabled')
    .argument('<id>', 'tenant id')
    .addOption(h.stateDirOption())
    .action(async (rawId: string, flags: { stateDir: string }) => {
      const id = checkTenantId(rawId);
      await h.checkKnownTenant(flags.stateDir, id);
      const written = await resumeTenant(flags.stateDir, id, log);
      process.stdout.write(`tenant ${id} resumed${written.changed ? '' : ' (it was not paused)'}: ${h.whereWritten(written)}\n`);
    });
}
