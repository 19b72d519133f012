// pgroute's own generator functions, loaded at run time from the snapshot run.sh took of dist/
// (BENCH_PGROUTE_ROOT), so the benchmark times exactly the code it starts as `pgroute up`. bench/ is
// compiled on its own (rootDir bench/), so the types here are the minimal shapes the benchmark uses;
// everything else stays opaque.

import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

/** A value the benchmark only hands back to pgroute. */
export type Opaque = { readonly __pgroute: unique symbol } | object;

export interface Listener {
  readonly address: string;
  readonly port: number;
}

export interface Settings {
  readonly stateDir: string;
  readonly spares: number;
  readonly restMs: number;
  readonly agent: { readonly servers: readonly { host: string; port: number }[] } & Record<string, unknown>;
  readonly stats: { readonly enabled: boolean; readonly address: string; readonly port: number };
  readonly log: { readonly enabled: boolean; readonly target: string; readonly errorsOnly: boolean };
  readonly [k: string]: unknown;
}

export interface Snapshot {
  readonly tenants: readonly { readonly id: string }[];
  readonly refused: readonly unknown[];
}

export interface TenantsFile {
  readonly deployment: Opaque;
  readonly raws: readonly unknown[];
  readonly snapshot: Snapshot;
}

export interface Layout {
  readonly backends: readonly { readonly name: string; readonly spare: boolean; readonly state: { readonly kind: string } }[];
  readonly nextSpare: number;
}

export interface ProcStatus {
  readonly masterPid: number;
  readonly reloads: number;
  readonly failed: number;
  readonly workers: readonly number[];
  readonly oldWorkers: readonly number[];
}

export interface PgrouteModules {
  defaultSettings(stateDir?: string): Settings;
  statePaths(stateDir: string): { haproxyConfig: string; spoeConfig: string; routes: string; layout: string; adminSocket: string; masterSocket: string; pidFile: string };
  parseTenantsFile(text: string, origin: string, fallbackListener: Listener): TenantsFile;
  desiredOccupants(tenants: Snapshot['tenants']): Map<string, Opaque>;
  layoutForReload(current: Layout, wanted: Map<string, Opaque>, spares: number): Layout;
  readonly EMPTY_LAYOUT: Layout;
  planChange(current: Layout, wanted: Map<string, Opaque>, opts: { now: number; spares: number; restMs: number; forcedReload: readonly string[] }): { layout: Layout; ops: readonly unknown[]; reloadReasons: readonly string[] };
  routeTableDocument(deployment: Opaque, snapshot: Snapshot, layout: Layout): { version: string };
  renderConfig(deployment: Opaque, layout: Layout, settings: Settings, paths: ReturnType<PgrouteModules['statePaths']>, version: string): { haproxyConfig: string; spoeConfig: string };
  showProc(masterSocket: string): Promise<ProcStatus>;
  haproxyCli(socketPath: string, command: string, timeoutMs?: number): Promise<string>;
}

/** Imports the generator modules of the pgroute tree at `root` (a snapshot with dist/ and haproxy/). */
export async function loadPgroute(root: string): Promise<PgrouteModules> {
  const mod = async (rel: string): Promise<Record<string, unknown>> => (await import(pathToFileURL(join(root, 'dist/generator/src', rel)).href)) as Record<string, unknown>;
  const [settings, file, layout, plan, routes, render, reload, master] = await Promise.all([
    mod('settings.js'),
    mod('sources/file.js'),
    mod('layout.js'),
    mod('plan.js'),
    mod('render/route-table.js'),
    mod('render/haproxy-config.js'),
    mod('haproxy/reload.js'),
    mod('haproxy/master.js'),
  ]);
  // Templates are compiled once and passed to renderConfig since the render module became pure;
  // an older tree has no render/templates.js and reads them itself.
  const templates = await mod('render/templates.js').then((m) => (m.loadTemplates as () => unknown)(), () => undefined);
  const pick = <T>(m: Record<string, unknown>, name: string): T => {
    const v = m[name];
    if (v === undefined) throw new Error(`pgroute's dist/ has no export ${name} (the generator changed; update bench/src/pgroute-modules.ts)`);
    return v as T;
  };
  return {
    defaultSettings: pick(settings, 'defaultSettings'),
    statePaths: pick(settings, 'statePaths'),
    parseTenantsFile: pick(file, 'parseTenantsFile'),
    desiredOccupants: pick(layout, 'desiredOccupants'),
    layoutForReload: pick(layout, 'layoutForReload'),
    EMPTY_LAYOUT: pick(layout, 'EMPTY_LAYOUT'),
    planChange: pick(plan, 'planChange'),
    routeTableDocument: pick(routes, 'routeTableDocument'),
    renderConfig: (...args) => pick<(...a: unknown[]) => { haproxyConfig: string; spoeConfig: string }>(render, 'renderConfig')(...args, templates),
    showProc: pick(reload, 'showProc'),
    haproxyCli: pick(master, 'haproxyCli'),
  };
}
