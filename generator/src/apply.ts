// Applies snapshots to the running system: skips what is applied already, plans the transition
// (reconcile.ts, pure) and performs it (execute.ts) through the real effects: the agent's route
// store, HAProxy's admin and master sockets, and the files of the state dir.

import type { Logger } from 'pino';
import { toRouteTable, type RouteStore } from '../../agent/src/index.js';
import { execute, TransitionError, type Effects } from './execute.js';
import { restoreFiles, saveFiles, type SavedFiles } from './files.js';
import { generationFiles, publishedMaps, readLayout, writeGeneration, type Generation } from './generate.js';
import { finishingWorkers, reloadMaster, showProc } from './haproxy/reload.js';
import { resetServerState, saveServerState } from './haproxy/server-state.js';
import { runRuntimeOps } from './haproxy/runtime.js';
import { EMPTY_LAYOUT, type Layout } from './layout.js';
import { countLayout, type ApplyMetricKind, type GeneratorMetrics } from './metrics.js';
import type { Deployment, TenantSnapshot } from './model.js';
import { isApplied, reconcile, type Applied } from './reconcile.js';
import { loadTemplates, type ConfigTemplates } from './render/templates.js';
import { statePaths, type Settings, type StatePaths } from './settings.js';
import { mapsPublisher, type MapsPublisher } from './haproxy/maps-publisher.js';

export interface ApplierOptions {
  readonly settings: Settings;
  readonly store: RouteStore;
  readonly log: Logger;
  readonly metrics?: GeneratorMetrics;
  /**
   * The caller starts HAProxy itself on the files of the first generation (`pgroute up`): that
   * start is the check, so the generations before attach() skip the separate `haproxy -c`.
   */
  readonly startsHaproxy?: boolean;
  /** The compiled templates; default: pgroute's own, read once here. */
  readonly templates?: ConfigTemplates;
}

export type ApplyKind = 'initial' | 'runtime' | 'reload' | 'agent' | 'unchanged' | 'failed';

export interface ApplyResult {
  readonly kind: ApplyKind;
  readonly detail: string;
}

export class Applier {
  readonly #opts: ApplierOptions;
  readonly #paths: StatePaths;
  readonly #templates: ConfigTemplates;
  readonly #effects: Effects<SavedFiles>;
  #applied: Applied | undefined;
  /** HAProxy is running on these files: changes go through its sockets. */
  #live = false;
  /** The `haproxy -c` warnings last logged: logged again only when they change. */
  #warnings = '';
  /** HAProxy's maps (the limits' refusals; the verdict memo's with --memo on), kept in step with every table the agent is given. */
  readonly #maps: MapsPublisher;
  /** The files a reload replaces (the maps' included), saved before it and put back if it fails. */
  readonly #files: readonly string[];

  constructor(opts: ApplierOptions) {
    this.#opts = opts;
    this.#paths = statePaths(opts.settings.stateDir);
    this.#templates = opts.templates ?? loadTemplates();
    const published = publishedMaps(opts.settings, this.#paths);
    this.#files = generationFiles(opts.settings, this.#paths);
    const maps = mapsPublisher(this.#paths.adminSocket, published);
    this.#maps = maps;
    this.#effects = {
      publish: (routes, phase) => maps.publish(routes, { live: this.#live, interim: phase !== 'final' }, () => opts.store.replace(toRouteTable(routes))),
      runtime: (ops) => runRuntimeOps(this.#paths.adminSocket, ops),
      save: () => saveFiles(this.#files),
      restore: (files) => restoreFiles(files),
      write: async (generation, check) => {
        this.#reportWarnings(await writeGeneration(generation, opts.settings, this.#templates, { check }));
      },
      reload: async () => {
        // Health carried over (haproxy/server-state.ts); without it the new worker starts from scratch.
        await saveServerState(this.#paths).catch((err: Error) => opts.log.warn({ err: err.message }, "could not save the servers' state; the new worker starts their health checks afresh"));
        const outcome = await reloadMaster(this.#paths.masterSocket).finally(() => resetServerState(this.#paths.serverState));
        if (outcome.ok) this.#opts.metrics?.oldWorkers.set(outcome.after === undefined ? 0 : finishingWorkers(outcome.after).length);
        return outcome;
      },
    };
  }

  get layout(): Layout | undefined {
    return this.#applied?.layout;
  }

  /** Verdicts withdrawn from the memo since the start (0 with the memo off). */
  get memoInvalidations(): number {
    return this.#maps.invalidations;
  }

  /** The listeners and policy last applied. */
  get deployment(): Deployment | undefined {
    return this.#applied?.deployment;
  }

  /** From now on, changes are applied to the HAProxy running on the state dir's sockets. */
  attach(): void {
    this.#live = true;
  }

  /** Applies one snapshot. Never throws: a failure keeps the running state and is reported. */
  async apply(deployment: Deployment, snapshot: TenantSnapshot): Promise<ApplyResult> {
    this.#countTenants(snapshot);
    const desired = { deployment, snapshot };
    if (isApplied(this.#applied, desired)) return { kind: 'unchanged', detail: 'same tenants and listeners' };
    const metrics = this.#opts.metrics;
    // What was tried, for pgroute_applies_total{kind,result} (a reconcile failure: the first apply or a reload).
    let kind: ApplyMetricKind = this.#applied === undefined ? 'initial' : 'reload';
    try {
      const { settings } = this.#opts;
      const previousLayout = this.#applied === undefined ? await readLayout(this.#paths.layout) : EMPTY_LAYOUT;
      const transition = reconcile(this.#applied, desired, { now: Date.now(), spares: settings.spares, restMs: settings.restMs, live: this.#live, startsHaproxy: this.#opts.startsHaproxy === true, previousLayout, memo: settings.memo.enabled });
      kind = transition.kind;
      const done = await execute(transition, this.#effects, this.#opts.log);
      this.#applied = done.applied;
      if (metrics) {
        metrics.applies.labels(done.kind, 'ok').inc();
        countLayout(metrics, done.applied.layout);
      }
      return { kind: done.kind, detail: done.detail };
    } catch (err) {
      if (err instanceof TransitionError) {
        kind = err.kind;
        // Undefined: HAProxy is as it was, but the agent may hold a table of the change.
        if (err.applied !== undefined) this.#applied = err.applied;
        else if (this.#applied !== undefined) this.#applied = { ...this.#applied, settled: false };
      }
      if (metrics) {
        metrics.applies.labels(kind, 'failed').inc();
        if (this.#applied !== undefined) countLayout(metrics, this.#applied.layout);
      }
      const detail = err instanceof Error ? err.message : String(err);
      // After HAProxy's change only HAProxy's maps failed (the final table): it runs the change.
      const changed = err instanceof TransitionError && err.applied !== undefined && err.applied.snapshot === snapshot;
      this.#opts.log.error({ err: detail }, changed ? "apply failed after HAProxy took the change (its maps were not updated); retried" : 'apply failed; the running configuration is unchanged');
      return { kind: 'failed', detail };
    }
  }

  #reportWarnings(g: Generation): void {
    const now = g.checkWarnings.join('\n');
    if (now !== '' && now !== this.#warnings) this.#opts.log.warn({ haproxy: g.checkWarnings }, 'haproxy -c accepted the configuration with warnings');
    this.#warnings = now;
  }

  /** Old workers still alive, for the metric (called periodically by the pipeline). */
  async refreshWorkers(): Promise<void> {
    if (!this.#live) return;
    const status = await showProc(this.#paths.masterSocket).catch(() => undefined);
    if (status) this.#opts.metrics?.oldWorkers.set(finishingWorkers(status).length);
  }

  #countTenants(snapshot: TenantSnapshot): void {
    const m = this.#opts.metrics;
    if (!m) return;
    const enabled = snapshot.tenants.filter((t) => t.enabled).length;
    m.tenants.labels('enabled').set(enabled);
    m.tenants.labels('disabled').set(snapshot.tenants.length - enabled);
    m.tenants.labels('refused').set(snapshot.refused.length);
  }
}
