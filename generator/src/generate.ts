// One generation: layout -> render -> validate with `haproxy -c` -> write. A candidate that HAProxy
// rejects never replaces the files in place, and a write that fails part way puts back what was
// written. Used by `pgroute generate` and by every apply.

import { isIP } from 'node:net';
import { readFile, rm } from 'node:fs/promises';
import type { RouteTableDocument } from '../../agent/src/index.js';
import { ConfigError } from './errors.js';
import { restoreFiles, saveFiles, writeIfChanged } from './files.js';
import { ensureServerStateFile } from './haproxy/server-state.js';
import { checkHaproxyConfig } from './haproxy/check.js';
import { descriptorProblem } from './haproxy/fd-limit.js';
import { desiredOccupants, EMPTY_LAYOUT, layoutForReload, type Layout } from './layout.js';
import type { Deployment, TenantSnapshot } from './model.js';
import { renderConfig, type RenderedConfig } from './render/haproxy-config.js';
import { loadTemplates, type ConfigTemplates } from './render/templates.js';
import { generationOf, type GenerationPlan } from './reconcile.js';
import type { PublishedMap } from './haproxy/maps-publisher.js';
import { limitsEntries, limitsMapFile } from './limits/limits-map.js';
import { memoEntries, memoMapFile } from './memo/memo-map.js';
import { statePaths, type Settings, type StatePaths } from './settings.js';

export interface Generation {
  readonly paths: StatePaths;
  readonly layout: Layout;
  readonly rendered: RenderedConfig;
  readonly routes: RouteTableDocument;
  /** True when haproxy.cfg or spoe.conf changed on disk. */
  readonly configChanged: boolean;
  readonly routesChanged: boolean;
  /** `haproxy -c` warnings on a candidate it accepted (empty when unchecked). */
  readonly checkWarnings: readonly string[];
}

export interface GenerationOptions {
  /**
   * Have `haproxy -c` check the candidate before it replaces anything (default true). False only
   * for a first start that the caller's own HAProxy performs on these files: starting parses the
   * same file with the same checks and refuses to run a bad one, so a separate check would only
   * parse it twice (0.4 s at 10,000 tenants). Nothing is running yet that a bad file could break.
   */
  readonly check?: boolean;
}

/** Renders a generation, has HAProxy check it, and only then writes haproxy.cfg, spoe.conf, routes.json, layout.json. */
export async function writeGeneration(generation: GenerationPlan, settings: Settings, templates: ConfigTemplates, opts: GenerationOptions = {}): Promise<Generation> {
  const { deployment, layout, routes } = generation;
  const problem = generationProblem(generation, settings);
  if (problem !== undefined) throw new ConfigError(problem);
  const paths = statePaths(settings.stateDir);
  const rendered = renderConfig(deployment, layout, settings, paths, routes.version, templates);

  await ensureServerStateFile(paths.serverState);
  const check = opts.check !== false;
  // From the first write on, a failure (HAProxy refusing the candidate, a full disk) puts every file
  // of the generation back as it was: HAProxy loads the maps by their paths, so its check needs the
  // new ones in place, and a later start or reload must not read them beside the old haproxy.cfg.
  // (Without the check nothing runs on these files yet: HAProxy's own start checks them.)
  const saved = check ? await saveFiles(generationFiles(settings, paths)) : undefined;
  try {
    await writeMaps(settings, paths, routes);
    const checkWarnings = check ? await checkCandidate(paths, rendered) : [];
    const spoeChanged = await writeIfChanged(paths.spoeConfig, rendered.spoeConfig);
    const cfgChanged = await writeIfChanged(paths.haproxyConfig, rendered.haproxyConfig);
    if (check) {
      await rm(`${paths.haproxyConfig}.candidate`, { force: true });
      await rm(`${paths.spoeConfig}.candidate`, { force: true });
    }
    const routesChanged = await writeIfChanged(paths.routes, `${JSON.stringify(routes, null, 2)}\n`);
    await writeIfChanged(paths.deployment, `${JSON.stringify(deployment, null, 2)}\n`);
    await writeIfChanged(paths.layout, `${JSON.stringify(layout, null, 2)}\n`);
    return { paths, layout, rendered, routes, configChanged: cfgChanged || spoeChanged, routesChanged, checkWarnings };
  } catch (err) {
    if (saved !== undefined) {
      // The failure is the one to report (a refusal keeps its exit code); a failed put-back is added to it.
      await restoreFiles(saved).catch((e: Error) => {
        if (err instanceof Error) err.message += ` (and the previous files could not all be put back: ${e.message})`;
      });
    }
    throw err;
  }
}

/** In the order writeGeneration writes them: spoe.conf before haproxy.cfg, routes.json and deployment.json before layout.json. */
export function generationFiles(settings: Settings, paths: StatePaths): readonly string[] {
  return [paths.spoeConfig, paths.haproxyConfig, paths.routes, paths.deployment, paths.layout, ...publishedMaps(settings, paths).map((m) => m.file)];
}

/**
 * The maps HAProxy loads from the state dir and pgroute keeps in step with the route table
 * (haproxy/maps-publisher.ts): the limits' refusals (generator/src/limits/) always, the verdict
 * memo's (generator/src/memo/) with --memo on.
 */
export function publishedMaps(settings: Settings, paths: StatePaths): (PublishedMap & { readonly render: (e: ReadonlyMap<string, string>) => string })[] {
  return [
    ...(settings.memo.enabled ? [{ file: paths.memoMap, order: 'withdraw-first' as const, entries: memoEntries, render: memoMapFile }] : []),
    { file: paths.limitsMap, order: 'add-first' as const, entries: limitsEntries, render: limitsMapFile },
  ];
}

/** HAProxy loads the maps at start: they must exist before the check and say what the agent's table of this generation says. */
export async function writeMaps(settings: Settings, paths: StatePaths, routes: RouteTableDocument): Promise<void> {
  for (const m of publishedMaps(settings, paths)) await writeIfChanged(m.file, m.render(m.entries(routes)));
}

/** What pgroute itself refuses in a generation before HAProxy sees it (`pgroute plan` reports it too). */
export function generationProblem(generation: GenerationPlan, settings: Settings): string | undefined {
  const { deployment, layout } = generation;
  const tlsOnly = deployment.listeners.find((l) => l.tls === 'required');
  if (tlsOnly !== undefined && settings.tls === undefined) {
    return `listener port ${tlsOnly.port} requires TLS, but no certificate is configured: start with --tls auto, or --tls-cert and --tls-key`;
  }
  return sharedPortProblem(generation, settings) ?? descriptorProblem(settings.limits.maxconn, layout, deployment.listeners.length);
}

/** Whether `wild` is a wildcard address that takes connections to `other` too. */
function wildcardOf(wild: string, other: string): boolean {
  if (wild === '::' || wild === '*') return true;
  return wild === '0.0.0.0' && isIP(other) !== 6;
}

/**
 * A public port that is also HAProxy's stats port or this replica's peers port, on addresses that
 * overlap: HAProxy binds both (each socket with SO_REUSEPORT) and the kernel shares the port's
 * connections between them, so some PostgreSQL clients would reach the stats page or the peers
 * listener, and the other way round.
 */
function sharedPortProblem(generation: GenerationPlan, settings: Settings): string | undefined {
  const { deployment } = generation;
  const others: { what: string; address: string; port: number }[] = [];
  if (settings.stats.enabled) others.push({ what: 'the stats port (--stats-port)', address: settings.stats.address, port: settings.stats.port });
  const replicas = deployment.replicas ?? settings.replicas;
  const self = replicas.peers.find((p) => p.name === replicas.self);
  if (self !== undefined) others.push({ what: `this replica's peers port (--peer ${self.name}=...)`, address: self.host, port: self.port });
  // Two binds overlap on the same address, or when one is a wildcard of the other's family ("::"
  // takes IPv4 too). A host name may resolve to the other's address (localhost to 127.0.0.1), which
  // HAProxy learns only when it binds: on the same port it is taken to overlap.
  const overlap = (a: string, b: string): boolean => a === b || isIP(a) === 0 || isIP(b) === 0 || wildcardOf(a, b) || wildcardOf(b, a);
  for (const l of deployment.listeners) {
    const other = others.find((o) => o.port === l.port && overlap(o.address, l.address));
    if (other !== undefined) return `public port ${l.port} (on ${l.address}) is also ${other.what} (on ${other.address}): HAProxy would bind both, and clients of one would reach the other; give them different ports`;
  }
  return undefined;
}

/** Writes the candidate files and has `haproxy -c` check them; throws a ConfigError when it refuses, else returns its warnings. */
async function checkCandidate(paths: StatePaths, rendered: RenderedConfig): Promise<readonly string[]> {
  // The candidate haproxy.cfg points at a candidate spoe.conf, so that neither running file is
  // touched until HAProxy has accepted both. (Rendered once: only the spoe.conf path differs.)
  const candidateSpoe = `${paths.spoeConfig}.candidate`;
  const candidate = `${paths.haproxyConfig}.candidate`;
  await writeIfChanged(candidateSpoe, rendered.spoeConfig);
  await writeIfChanged(candidate, rendered.haproxyConfig.split(` config ${paths.spoeConfig}\n`).join(` config ${candidateSpoe}\n`));
  const check = await checkHaproxyConfig(candidate);
  if (check.missing) throw new Error(check.output);
  if (!check.ok) {
    throw new ConfigError(`HAProxy rejected the rendered configuration (kept at ${candidate}; the running files are untouched):\n${check.output}`);
  }
  return check.warnings;
}

/** One-shot generation: keeps the backend names of a previous layout.json in the state dir. */
export async function generate(deployment: Deployment, snapshot: TenantSnapshot, settings: Settings): Promise<Generation> {
  const previous = await readLayout(statePaths(settings.stateDir).layout);
  const layout = layoutForReload(previous, desiredOccupants(snapshot.tenants), settings.spares);
  return writeGeneration(generationOf(deployment, snapshot, layout), settings, loadTemplates());
}

export async function readLayout(path: string): Promise<Layout> {
  try {
    const parsed = JSON.parse(await readFile(path, 'utf8')) as Layout;
    if (Array.isArray(parsed.backends) && typeof parsed.nextSpare === 'number') return parsed;
  } catch {
    // no previous layout: start afresh
  }
  return EMPTY_LAYOUT;
}
