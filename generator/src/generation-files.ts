// The files a generation writes in the state dir: saved before a change, and put back after a failed
// reload, so that a later start or reload (and an agent reading routes.json) sees what the running
// workers have, not the rejected candidate.

import { readFile, rm } from 'node:fs/promises';
import { writeIfChanged } from './files.js';
import { publishedMaps } from './generate.js';
import type { Settings, StatePaths } from './settings.js';

/** Each file's content, or undefined where there was none. */
export type SavedFiles = ReadonlyMap<string, string | undefined>;

/** In the order writeGeneration writes them: spoe.conf before haproxy.cfg, routes.json and deployment.json before layout.json. */
export function generationFiles(settings: Settings, paths: StatePaths): readonly string[] {
  return [paths.spoeConfig, paths.haproxyConfig, paths.routes, paths.deployment, paths.layout, ...publishedMaps(settings, paths).map((m) => m.file)];
}

export async function saveFiles(files: readonly string[]): Promise<SavedFiles> {
  const saved = new Map<string, string | undefined>();
  for (const path of files) saved.set(path, await readFile(path, 'utf8').catch(() => undefined));
  return saved;
}

export async function restoreFiles(saved: SavedFiles): Promise<void> {
  for (const [path, content] of saved) {
    if (content === undefined) await rm(path, { force: true });
    else await writeIfChanged(path, content);
  }
}
