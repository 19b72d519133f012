// `pgroute plan`'s edge: reads what the state dir records as applied (routes.json, layout.json,
// deployment.json) and the operator's switches (access.json), and previews a desired state against
// them. Reads only: nothing in the state dir is written, no socket is used.

import { readFile } from 'node:fs/promises';
import { routeTableDocumentProblem, type RouteTableDocument } from '../../../agent/src/index.js';
import { applyAccess, readAccess } from '../access.js';
import { ConfigError } from '../errors.js';
import { readLayout } from '../generate.js';
import type { Deployment, TenantSnapshot } from '../model.js';
import { statePaths, type Settings } from '../settings.js';
import { appliedOf, type AppliedFiles } from './applied.js';
import type { GenerationPlan } from '../reconcile.js';
import { previewPlan, type ChangePreview } from './preview.js';

async function readJson(path: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new ConfigError(`cannot read ${path}: ${(err as Error).message}`);
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new ConfigError(`${path} is not JSON (${(err as Error).message}): is --state-dir the running pgroute's?`);
  }
}

/** The applied generation's files; undefined when nothing was applied on this state dir (no routes.json). */
export async function readAppliedFiles(stateDir: string): Promise<AppliedFiles | undefined> {
  const paths = statePaths(stateDir);
  const routes = await readJson(paths.routes);
  if (routes === undefined) return undefined;
  const problem = routeTableDocumentProblem(routes);
  if (problem !== undefined) throw new ConfigError(`${paths.routes} is unusable (${problem}): is --state-dir the running pgroute's?`);
  const deployment = (await readJson(paths.deployment)) as Deployment | undefined;
  return { routes: routes as RouteTableDocument, layout: await readLayout(paths.layout), ...(deployment === undefined ? {} : { deployment }) };
}

/** What applying `deployment` and `snapshot` (a source's view) would change on the state dir's running pgroute. */
export async function previewOnStateDir(deployment: Deployment, snapshot: TenantSnapshot, settings: Settings, now = Date.now()): Promise<ChangePreview> {
  return (await planOnStateDir(deployment, snapshot, settings, now)).preview;
}

/** The preview and the generation applying it would write (for `haproxy -c`: check.ts). */
export async function planOnStateDir(deployment: Deployment, snapshot: TenantSnapshot, settings: Settings, now = Date.now()): Promise<{ preview: ChangePreview; generation: GenerationPlan }> {
  const [files, access] = await Promise.all([readAppliedFiles(settings.stateDir), readAccess(settings.stateDir)]);
  // As the pipeline does: the operator's switches hold whatever the source says.
  const desired = { deployment, snapshot: applyAccess(snapshot, access) };
  const applied = files === undefined ? undefined : { ...appliedOf(files, deployment), version: files.routes.version };
  return previewPlan({
    ...(applied === undefined ? {} : { applied: { state: applied.applied, version: applied.version, listenersKnown: applied.listenersKnown } }),
    desired,
    ctx: { now, spares: settings.spares, restMs: settings.restMs, previousLayout: files?.layout ?? (await readLayout(statePaths(settings.stateDir).layout)) },
  });
}
