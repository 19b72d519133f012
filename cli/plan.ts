// `pgroute plan`: what the sources' current view would change for the pgroute running on a state dir
// (tenants added, moved, disabled, removed; route table only, runtime API commands, or a reload and
// why), computed by the reconcile the pipeline applies with, without applying or writing anything.
// It takes the source and deployment flags of the `up`/`watch` it previews.

import { type Command } from 'commander';
import type { Logger } from 'pino';
import { parsePolicy, previewOnStateDir, previewText, type SourceView } from '../generator/src/index.js';
import { CommandFailure, EXIT } from './fail.js';
import { addDeploymentFlags, settingsFromFlags, type DeploymentFlags } from './settings-options.js';
import { addSourceFlags, sourceFromFlags, type SourceFlags } from './sources.js';

type PlanFlags = DeploymentFlags & SourceFlags & { json: boolean; strict: boolean };

export function registerPlanCommand(program: Command, log: Logger): Command {
  return addDeploymentFlags(
    addSourceFlags(
      program.command('plan').description('show what the sources would change on the running pgroute of --state-dir (tenants added, moved, disabled, removed; runtime commands or a reload), applying nothing'),
      'tenants file (YAML) to compare with what runs, for --source file',
    )
      .option('--json', 'print JSON', false)
      .option('--strict', `exit ${EXIT.refused} when any tenant definition is refused`, false),
  ).action(async (flags: PlanFlags) => {
    // No state dir is made and no certificate prepared: plan only reads.
    const { settings, fallbackListener } = settingsFromFlags(flags);
    const source = await sourceFromFlags(flags, fallbackListener, log);
    let view: SourceView | undefined;
    await source.start((v) => (view ??= v));
    await source.stop();
    if (view === undefined) throw new Error(`the ${source.name} source started without a first view`);
    const deployment = view.deployment ?? { listeners: [fallbackListener], policy: parsePolicy(undefined, [fallbackListener]) };
    const preview = await previewOnStateDir(deployment, view.snapshot, settings);
    process.stdout.write(flags.json ? `${JSON.stringify(preview, null, 2)}\n` : previewText(preview));
    const refused = preview.refused.length;
    if (refused > 0 && flags.strict) {
      throw new CommandFailure(`${refused} tenant definition${refused === 1 ? '' : 's'} refused (listed in the plan above; --strict)`, EXIT.refused);
    }
  });
}
