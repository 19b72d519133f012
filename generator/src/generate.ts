// One generation: snapshot -> render -> validate with `haproxy -c` -> write. A candidate that HAProxy
// rejects never replaces the files in place.

import { rm } from 'node:fs/promises';
import { ConfigError } from './errors.js';
import { writeIfChanged } from './files.js';
import { checkHaproxyConfig } from './haproxy/check.js';
import type { Deployment, TenantSnapshot } from './model.js';
import { renderConfig, type RenderedConfig } from './render/haproxy-config.js';
import type { RouteTableDocument } from '../../agent/src/route-table-document.js';
import { routeTableDocument } from './render/route-table.js';
import { statePaths, type Settings, type StatePaths } from './settings.js';

export interface Generation {
  readonly paths: StatePaths;
  readonly rendered: RenderedConfig;
  readonly routes: RouteTableDocument;
  /** True when haproxy.cfg or spoe.conf changed on disk. */
  readonly configChanged: boolean;
  readonly routesChanged: boolean;
}

export async function generate(deployment: Deployment, snapshot: TenantSnapshot, settings: Settings): Promise<Generation> {
  const paths = statePaths(settings.stateDir);
  const routes = routeTableDocument(deployment, snapshot);
  const rendered = renderConfig(deployment, snapshot, settings, paths, routes.version);

  // The candidate haproxy.cfg points at a candidate spoe.conf, so that neither running file is
  // touched until HAProxy has accepted both.
  const candidatePaths: StatePaths = { ...paths, spoeConfig: `${paths.spoeConfig}.candidate` };
  const candidateRendered = renderConfig(deployment, snapshot, settings, candidatePaths, routes.version);
  const candidate = `${paths.haproxyConfig}.candidate`;
  await writeIfChanged(candidatePaths.spoeConfig, candidateRendered.spoeConfig);
  await writeIfChanged(candidate, candidateRendered.haproxyConfig);
  const check = await checkHaproxyConfig(candidate);
  if (!check.ok) {
    throw new ConfigError(`HAProxy rejected the rendered configuration (kept at ${candidate}; the running files are untouched):\n${check.output}`);
  }
  const spoeChanged = await writeIfChanged(paths.spoeConfig, rendered.spoeConfig);
  const cfgChanged = await writeIfChanged(paths.haproxyConfig, rendered.haproxyConfig);
  await rm(candidate, { force: true });
  await rm(candidatePaths.spoeConfig, { force: true });
  const routesChanged = await writeIfChanged(paths.routes, `${JSON.stringify(routes, null, 2)}\n`);
  return { paths, rendered, routes, configChanged: cfgChanged || spoeChanged, routesChanged };
}
