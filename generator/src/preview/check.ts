// `pgroute plan`'s configuration check: the generation a plan would write is rendered into a
// temporary directory of its own and judged there by `haproxy -c`, as an apply would judge it
// before replacing anything. The state dir is only read (the certificate HAProxy would load);
// nothing in it is written, and the temporary directory is removed.

import { access, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generationProblem, writeMaps } from '../generate.js';
import { checkHaproxyConfig } from '../haproxy/check.js';
import { ensureServerStateFile } from '../haproxy/server-state.js';
import type { GenerationPlan } from '../reconcile.js';
import { renderConfig } from '../render/haproxy-config.js';
import type { ConfigTemplates } from '../render/templates.js';
import { statePaths, type Settings } from '../settings.js';

/**
 * passed: HAProxy accepts it (maybe with warnings); rejected: applying it would fail and the running
 * configuration would stay; not-checked: it could not be judged (`reason` says why).
 */
export type PlanCheckResult = 'passed' | 'rejected' | 'not-checked';

export interface PlanCheck {
  readonly result: PlanCheckResult;
  /** HAProxy's [WARNING] lines (a passing check may have them). */
  readonly warnings: readonly string[];
  /** rejected: HAProxy's alerts, or pgroute's own refusal; not-checked: why. */
  readonly reason?: string;
  /** HAProxy missing: the caller decides whether that is a failure. */
  readonly missing?: true;
}

/** Has `haproxy -c` judge what the plan would write, in a directory of its own. */
export async function checkPlannedGeneration(generation: GenerationPlan, settings: Settings, templates: ConfigTemplates): Promise<PlanCheck> {
  const problem = generationProblem(generation, settings);
  if (problem !== undefined) return { result: 'rejected', warnings: [], reason: `pgroute refuses it: ${problem}` };
  if (settings.tls !== undefined && !(await exists(settings.tls.crtPath))) {
    return { result: 'not-checked', warnings: [], reason: `the certificate ${settings.tls.crtPath} does not exist yet (pgroute up or watch makes it when it starts), so HAProxy cannot load it for a check` };
  }
  const dir = await mkdtemp(join(tmpdir(), 'pgroute-plan-'));
  try {
    // Sockets, spoe.conf and the server-state file in the temporary directory; the certificate and
    // the Lua file are the real ones, read in place.
    const paths = statePaths(dir);
    const rendered = renderConfig(generation.deployment, generation.layout, settings, paths, generation.routes.version, templates);
    await ensureServerStateFile(paths.serverState);
    await writeMaps(settings, paths, generation.routes);
    await writeFile(paths.spoeConfig, rendered.spoeConfig);
    await writeFile(paths.haproxyConfig, rendered.haproxyConfig);
    const check = await checkHaproxyConfig(paths.haproxyConfig);
    // HAProxy names the files it read: the temporary directory is gone once this returns.
    const words = (text: string): string => text.split(`${dir}/`).join('');
    const warnings = check.warnings.map(words);
    if (check.missing) return { result: 'not-checked', warnings, reason: check.output, missing: true };
    if (!check.ok) return { result: 'rejected', warnings, reason: words(alerts(check.output)) };
    return { result: 'passed', warnings };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** HAProxy's [ALERT] lines (its [NOTICE] version banner says nothing about the configuration); all of it when none. */
function alerts(output: string): string {
  const lines = output.split('\n').filter((l) => l.trim().startsWith('[ALERT]'));
  return lines.length > 0 ? lines.join('\n') : output;
}

async function exists(path: string): Promise<boolean> {
  return access(path).then(
    () => true,
    () => false,
  );
}
