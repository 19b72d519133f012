// Applies snapshots to the running system with the least disruption the change allows, keeping the
// agent and HAProxy in agreement at every instant: the agent only ever names backends HAProxy has
// with the right address, because it forgets vacated backends before HAProxy changes them and
// learns new ones only after HAProxy has them.

import { readFile, rm } from 'node:fs/promises';
import type { Logger } from 'pino';
import { toRouteTable } from '../../agent/src/route-table-document.js';
import type { RouteStore } from '../../agent/src/routes-store.js';
import { ConfigError } from './errors.js';
import { writeIfChanged } from './files.js';
import { readLayout, writeGeneration, type Generation } from './generate.js';
import { reloadMaster, showProc } from './haproxy/reload.js';
import { resetServerState, saveServerState } from './haproxy/server-state.js';
import { runRuntimeOps } from './haproxy/runtime.js';
import { desiredOccupants, layoutForReload, type Layout } from './layout.js';
import type { GeneratorMetrics } from './metrics.js';
import type { Deployment, TenantSnapshot } from './model.js';
import { planChange, type Plan } from './plan.js';
import { routeTableDocument } from './render/route-table.js';
import { statePaths, type Settings, type StatePaths } from './settings.js';
import { isIP } from 'node:net';

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
}

export type ApplyKind = 'initial' | 'runtime' | 'reload' | 'agent' | 'unchanged' | 'failed';

export interface ApplyResult {
  readonly kind: ApplyKind;
  readonly detail: string;
}

interface Applied {
  readonly deployment: Deployment;
  readonly snapshot: TenantSnapshot;
  readonly layout: Layout;
  readonly key: string;
}

export class Applier {
  readonly #opts: ApplierOptions;
  readonly #paths: StatePaths;
  #current: Applied | undefined;
  /** HAProxy is running on these files: changes go through its sockets. */
  #live = false;

  constructor(opts: ApplierOptions) {
    this.#opts = opts;
    this.#paths = statePaths(opts.settings.stateDir);
  }

  get layout(): Layout | undefined {
    return this.#current?.layout;
  }

  /** The listeners and policy last applied. */
  get deployment(): Deployment | undefined {
    return this.#current?.deployment;
  }

  /** From now on, changes are applied to the HAProxy running on the state dir's sockets. */
  attach(): void {
    this.#live = true;
  }

  /** Applies one snapshot. Never throws: a failure keeps the running state and is reported. */
  async apply(deployment: Deployment, snapshot: TenantSnapshot): Promise<ApplyResult> {
    const key = JSON.stringify([deployment, snapshot.tenants]);
    this.#countTenants(snapshot);
    if (this.#current?.key === key) return { kind: 'unchanged', detail: 'same tenants and listeners' };
    try {
      return await this.#apply(deployment, snapshot, key);
    } catch (err) {
      this.#opts.metrics?.applies.labels('failed').inc();
      const detail = err instanceof Error ? err.message : String(err);
      this.#opts.log.error({ err: detail }, 'apply failed; the running configuration is unchanged');
      return { kind: 'failed', detail };
    }
  }

  async #apply(deployment: Deployment, snapshot: TenantSnapshot, key: string): Promise<ApplyResult> {
    const { settings, log } = this.#opts;
    const current = this.#current;
    const wanted = desiredOccupants(snapshot.tenants);

    if (current === undefined || !this.#live) {
      // Nothing runs on these files yet: render the whole state; HAProxy will start from it.
      const layout = layoutForReload(current?.layout ?? (await this.#previousLayout()), wanted, settings.spares);
      await writeGeneration(deployment, snapshot, layout, settings, { check: this.#opts.startsHaproxy !== true });
      this.#publish(deployment, snapshot, layout);
      this.#current = { deployment, snapshot, layout, key };
      return { kind: 'initial', detail: `${snapshot.tenants.length} tenant(s) rendered` };
    }

    const forced: string[] = [];
    if (JSON.stringify(current.deployment.listeners) !== JSON.stringify(deployment.listeners)) forced.push('listeners changed');
    for (const o of wanted.values()) {
      // The runtime API takes addresses, not names: a host name needs the reload's resolver set-up.
      if (isIP(o.endpoint.host) === 0 && !sameEndpointPlaced(current.layout, o.tenant, o.target, o.endpoint.host, o.endpoint.port)) {
        forced.push(`${o.tenant}/${o.target} is at a host name (${o.endpoint.host})`);
        break;
      }
    }
    let plan: Plan = planChange(current.layout, wanted, { now: Date.now(), spares: settings.spares, restMs: settings.restMs, forcedReload: forced });

    // 1. The agent forgets what is going away (and learns new enabled flags and policy).
    this.#publish(deployment, snapshot, plan.interim);

    // 2. The runtime API, when the backends can stay as they are.
    if (plan.reloadReasons.length === 0) {
      let commands = -1;
      try {
        commands = await runRuntimeOps(this.#paths.adminSocket, plan.ops);
      } catch (err) {
        log.warn({ err: (err as Error).message }, 'runtime API apply failed; falling back to a reload');
        plan = { ...plan, layout: layoutForReload(current.layout, wanted, settings.spares), ops: [], reloadReasons: ['runtime API failed'] };
      }
      if (commands >= 0) {
        this.#publish(deployment, snapshot, plan.layout);
        this.#current = { deployment, snapshot, layout: plan.layout, key };
        const kind = plan.ops.length === 0 ? 'agent' : 'runtime';
        this.#opts.metrics?.applies.labels(kind).inc();
        this.#countSpares(plan.layout);
        // The files must say the same, or the next reload would undo it. Written after the agent
        // learned the change, so `haproxy -c` is not on the path to routable.
        await writeGeneration(deployment, snapshot, plan.layout, settings).catch((err: Error) =>
          log.error({ err: err.message }, 'applied through the runtime API, but writing the matching files failed; the next reload re-renders them'),
        );
        return { kind, detail: plan.ops.length === 0 ? 'route table only' : `${plan.ops.length} operation(s), ${commands} command(s)` };
      }
    }

    // 3. A graceful reload: check, swap, reload, verify; roll back to the last-known-good files.
    log.info({ reasons: plan.reloadReasons }, 'reloading HAProxy');
    const lastGood = await this.#readFiles();
    let generation: Generation;
    try {
      generation = await writeGeneration(deployment, snapshot, plan.layout, settings);
    } catch (err) {
      if (err instanceof ConfigError) throw new Error(`the new configuration was refused before any reload: ${err.message}`);
      throw err;
    }
    // Health carried over (haproxy/server-state.ts); without it the new worker starts from scratch.
    await saveServerState(this.#paths).catch((err: Error) => log.warn({ err: err.message }, 'could not save the servers\' state; the new worker starts their health checks afresh'));
    const outcome = await reloadMaster(this.#paths.masterSocket).catch((err: Error) => ({ ok: false, detail: err.message, after: undefined }));
    await resetServerState(this.#paths.serverState);
    if (!outcome.ok) {
      this.#opts.metrics?.reloadFailures.inc();
      await this.#restore(lastGood);
      this.#opts.metrics?.rollbacks.inc();
      // The agent stays on the interim table: a subset of what the still-running workers have.
      this.#current = { deployment: current.deployment, snapshot: current.snapshot, layout: current.layout, key: '' };
      throw new Error(`HAProxy reload failed (${outcome.detail}); restored the last-known-good configuration`);
    }
    this.#opts.metrics?.oldWorkers.set(outcome.after?.oldWorkers.length ?? 0);
    this.#publish(deployment, snapshot, generation.layout);
    this.#current = { deployment, snapshot, layout: generation.layout, key };
    this.#opts.metrics?.applies.labels('reload').inc();
    this.#countSpares(generation.layout);
    return { kind: 'reload', detail: `${plan.reloadReasons.join('; ')}: ${outcome.detail}` };
  }

  /** Old workers still alive, for the metric (called periodically by the pipeline). */
  async refreshWorkers(): Promise<void> {
    if (!this.#live) return;
    const status = await showProc(this.#paths.masterSocket).catch(() => undefined);
    if (status) this.#opts.metrics?.oldWorkers.set(status.oldWorkers.length);
  }

  #publish(deployment: Deployment, snapshot: TenantSnapshot, layout: Layout): void {
    const table = toRouteTable(routeTableDocument(deployment, snapshot, layout));
    this.#opts.store.replace(table);
  }

  #countTenants(snapshot: TenantSnapshot): void {
    const m = this.#opts.metrics;
    if (!m) return;
    const enabled = snapshot.tenants.filter((t) => t.enabled).length;
    m.tenants.labels('enabled').set(enabled);
    m.tenants.labels('disabled').set(snapshot.tenants.length - enabled);
    m.tenants.labels('refused').set(snapshot.refused.length);
  }

  #countSpares(layout: Layout): void {
    const m = this.#opts.metrics;
    if (!m) return;
    m.spares.labels('free').set(layout.backends.filter((b) => b.spare && b.state.kind === 'free').length);
    m.spares.labels('resting').set(layout.backends.filter((b) => b.state.kind === 'resting').length);
  }

  #previousLayout(): Promise<Layout> {
    return readLayout(this.#paths.layout);
  }

  /** The files a reload replaces, as they are now (undefined: not there). */
  async #readFiles(): Promise<Map<string, string | undefined>> {
    const p = this.#paths;
    const files = new Map<string, string | undefined>();
    for (const path of [p.spoeConfig, p.haproxyConfig, p.routes, p.layout]) {
      files.set(path, await readFile(path, 'utf8').catch(() => undefined));
    }
    return files;
  }

  /** Puts every file of the last-known-good generation back, so that a later start or reload (and
   * an agent reading routes.json) sees what the running workers have, not the rejected candidate. */
  async #restore(files: Map<string, string | undefined>): Promise<void> {
    // spoe.conf before haproxy.cfg, routes.json before layout.json: the order writeGeneration uses.
    for (const [path, content] of files) {
      if (content === undefined) await rm(path, { force: true });
      else await writeIfChanged(path, content);
    }
  }
}

/** Already there at this host and port: nothing for the runtime API to set (a new port would be a `set server addr <host name>`, which HAProxy refuses). */
function sameEndpointPlaced(layout: Layout, tenant: string, target: string, host: string, port: number): boolean {
  return layout.backends.some(
    (b) => b.state.kind === 'occupied' && b.state.occupant.tenant === tenant && b.state.occupant.target === target && b.state.occupant.endpoint.host === host && b.state.occupant.endpoint.port === port,
  );
}
