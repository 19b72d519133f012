// `pgroute plan`: what the sources' current view would change for the pgroute running on a state dir
// (tenants added, moved, disabled, removed; route table only, runtime API commands, or a reload and
// why), computed by the reconcile the pipeline applies with, without applying or writing anything.
// It takes the source and deployment flags of the `up`/`watch` it previews. Unless --no-check,
// `haproxy -c` judges the configuration the plan would write, in a temporary directory
// (generator/src/preview/check.ts): a configuration HAProxy would reject exits 2, as `generate` does.

import { type Command } from 'commander';
import type { Logger } from 'pino';
import { checkPlannedGeneration, loadTemplates, parsePolicy, planOnStateDir, previewText, tlsPaths, type PlanCheck, type Settings, type SourceView } from '../generator/src/index.js';
import { CommandFailure, EXIT } from './fail.js';
import { addDeploymentFlags, settingsFromFlags, type DeploymentFlags } from './settings-options.js';
import { addSourceFlags, checkSourceFlags, sourceFromFlags, type SourceFlags } from './sources.js';
import { checkTlsFlags, type TlsFlags } from './tls.js';

/** `plan` reads one view: a Docker engine or Kubernetes API server that has not given it within this time fails it (exit 1). */
const PLAN_FIRST_VIEW_TIMEOUT_MS = 10_000;

type PlanFlags = DeploymentFlags & TlsFlags & SourceFlags & { json: boolean; strict: boolean; check: boolean };

/** TLS as `up`/`watch` would serve it: the certificate they keep in the state dir (not made here). */
function withTls(flags: TlsFlags, settings: Settings): Settings {
  checkTlsFlags(flags);
  if (flags.tls !== 'auto' && flags.tlsCert === undefined) return settings;
  return { ...settings, tls: { crtPath: tlsPaths(settings.stateDir).serverPem, minVersion: flags.tlsMinVersion } };
}

export function registerPlanCommand(program: Command, log: Logger): Command {
  return addDeploymentFlags(
    addSourceFlags(
      program.command('plan').description('show what the sources would change on the running pgroute of --state-dir (tenants added, moved, disabled, removed; runtime commands or a reload), applying nothing'),
      'tenants file (YAML) to compare with what runs, for --source file',
    )
      .option('--json', 'print JSON', false)
      .option('--strict', `exit ${EXIT.refused} when any tenant definition is refused`, false)
      .option('--no-check', 'do not have haproxy -c check the configuration the plan would write (by default it does, and a rejection exits 2)'),
    // The transport of the `up`/`watch` it previews, so that `haproxy -c` checks the file they would write.
    'unix',
  ).action(async (flags: PlanFlags) => {
    // No state dir is made and no certificate prepared: plan only reads.
    const checked = checkSourceFlags(flags);
    const parsed = settingsFromFlags(flags);
    const { fallbackListener } = parsed;
    const settings = withTls(flags, parsed.settings);
    const source = await sourceFromFlags(checked, flags, fallbackListener, log, { firstViewTimeoutMs: PLAN_FIRST_VIEW_TIMEOUT_MS });
    let view: SourceView | undefined;
    await source.start((v) => (view ??= v));
    await source.stop();
    if (view === undefined) throw new Error(`the ${source.name} source started without a first view`);
    const deployment = view.deployment ?? { listeners: [fallbackListener], policy: parsePolicy(undefined, [fallbackListener]) };
    const { preview, generation } = await planOnStateDir(deployment, view.snapshot, settings);
    // Always a verdict, so that a script reads check.result alike with --no-check.
    const check: PlanCheck = flags.check ? await checkPlannedGeneration(generation, settings, loadTemplates()) : { result: 'not-checked', warnings: [], reason: '--no-check was given' };
    process.stdout.write(flags.json ? `${JSON.stringify({ ...preview, check }, null, 2)}\n` : previewText(preview, check));
    if (check.missing) throw new CommandFailure(`${check.reason ?? 'haproxy not found'} (or plan with --no-check)`, EXIT.failed);
    if (check.result === 'rejected') {
      throw new CommandFailure('HAProxy would reject the configuration this plan would write (haproxy -c; its words are in the plan above): applying it would fail and keep the running configuration', EXIT.usage);
    }
    const refused = preview.refused.length;
    if (refused > 0 && flags.strict) {
      throw new CommandFailure(`${refused} tenant definition${refused === 1 ? '' : 's'} refused (listed in the plan above; --strict)`, EXIT.refused);
    }
  });
}
