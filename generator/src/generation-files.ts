// The files a generation writes in the state dir: saved before a change, and put back after a failed
// reload (files.ts saveFiles/restoreFiles), so that a later start or reload (and an agent reading
// routes.json) sees what the running workers have, not the rejected candidate.

import { publishedMaps } from './generate.js';
import type { Settings, StatePaths } from './settings.js';

/** In the order writeGeneration writes them: spoe.conf before haproxy.cfg, routes.json and deployment.json before layout.json. */
export function generationFiles(settings: Settings, paths: StatePaths): readonly string[] {
  return [paths.spoeConfig, paths.haproxyConfig, paths.routes, paths.deployment, paths.layout, ...publishedMaps(settings, paths).map((m) => m.file)];
}
