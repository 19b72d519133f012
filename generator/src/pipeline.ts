// The one pipeline every source feeds (the aggregator): validated view -> operator switches ->
// apply. A view equal to the newest one is dropped (structural comparison, the only one); bursts
// are debounced here and only here (a quiet period, bounded by a longest wait); applies never
// overlap, and only the newest view is applied when several arrived meanwhile.

import type { Logger } from 'pino';
import type { Applier, ApplyResult } from './apply.js';
import type { GeneratorMetrics } from './metrics.js';
import type { Deployment, RefusedTenant } from './model.js';
import type { SourceView, TenantSource } from './sources/source.js';
import { mkdir } from 'node:fs/promises';
import { deepEqual } from './equal.js';
import { accessPath, applyAccess, NO_ACCESS, readAccess, type AccessFile } from './access.js';
import { watchFile, type FileWatch } from './file-watch.js';

export interface PipelineOptions {
  readonly source: TenantSource;
  readonly applier: Applier;
  /** Listeners and policy for sources that do not define them (Docker, Kubernetes). */
  readonly deployment: Deployment;
  readonly log: Logger;
  readonly metrics?: GeneratorMetrics;
  /** Apply once no new view arrived for this long... */
  readonly quietMs?: number;
  /** ...but never wait longer than this after the first view of a burst. */
  readonly maxWaitMs?: number;
  readonly onApplied?: (result: ApplyResult) => void;
  /** Where access.json (operator enable/disable switches) lives; omit to ignore it. */
  readonly stateDir?: string;
  /** After a failed apply, try again this much later. */
  readonly retryMs?: number;
}

export class Pipeline {
  readonly #o: PipelineOptions;
  #pending: SourceView | undefined;
  #firstPendingAt = 0;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;
  #stopped = false;
  #access: AccessFile = NO_ACCESS;
  #accessWatch: FileWatch | undefined;
  #lastRefusals: readonly RefusedTenant[] = [];
  /** The newest view the source delivered (what a retry applies). */
  #latest: SourceView | undefined;

  constructor(opts: PipelineOptions) {
    this.#o = opts;
  }

  /** Starts the source and applies its first view before resolving. */
  async start(): Promise<ApplyResult> {
    if (this.#o.stateDir !== undefined) {
      const dir = this.#o.stateDir;
      await mkdir(dir, { recursive: true });
      this.#access = await readAccess(dir);
      // An operator's enable/disable re-applies the newest view with the new switches.
      this.#accessWatch = await watchFile(accessPath(dir), () => {
        readAccess(dir).then(
          (access) => {
            this.#access = access;
            if (this.#latest !== undefined) this.#offer(this.#latest);
          },
          (err: Error) => this.#o.log.error({ err: err.message }, 'access.json unusable; keeping the previous switches'),
        );
      }, this.#o.log, 500);
    }
    let first: SourceView | undefined;
    await this.#o.source.start((view) => {
      if (first === undefined) this.#latest = first = view;
      else if (!deepEqual(view, this.#latest)) this.#offer(view);
    });
    if (first === undefined) throw new Error(`the ${this.#o.source.name} source started without a first view`);
    this.#firstPendingAt = Date.now();
    // Tracked like any other apply, so a view arriving meanwhile waits for it (no overlap).
    const applying = this.#applyNow(first);
    this.#track(applying);
    return applying;
  }

  async stop(): Promise<void> {
    this.#accessWatch?.stop();
    this.#stopped = true;
    clearTimeout(this.#timer);
    await this.#o.source.stop();
    await this.#running;
  }

  /**
   * Reads access.json again and, when the switches changed, applies the newest view with them;
   * resolves once applied (the access sync calls it before the replica reports it converged).
   */
  async refreshAccess(): Promise<void> {
    if (this.#o.stateDir === undefined) return;
    const access = await readAccess(this.#o.stateDir);
    if (deepEqual(access, this.#access)) return;
    this.#access = access;
    if (this.#latest !== undefined) this.#offer(this.#latest);
    while (!this.#stopped && (this.#pending !== undefined || this.#running !== undefined)) await new Promise((r) => setTimeout(r, 20));
  }

  #offer(view: SourceView): void {
    if (this.#stopped) return;
    if (this.#pending === undefined) this.#firstPendingAt = Date.now();
    this.#pending = view;
    this.#latest = view;
    clearTimeout(this.#timer);
    const quiet = this.#o.quietMs ?? 50;
    const waited = Date.now() - this.#firstPendingAt;
    this.#timer = setTimeout(() => this.#kick(), Math.max(0, Math.min(quiet, (this.#o.maxWaitMs ?? 500) - waited)));
  }

  #kick(): void {
    if (this.#running !== undefined || this.#pending === undefined || this.#stopped) return;
    const view = this.#pending;
    this.#pending = undefined;
    this.#track(this.#applyNow(view));
  }

  #track(applying: Promise<unknown>): void {
    this.#running = applying.then(
      () => {
        this.#running = undefined;
        if (this.#pending !== undefined) this.#kick();
      },
      () => {
        this.#running = undefined;
      },
    );
  }

  async #applyNow(view: SourceView): Promise<ApplyResult> {
    const since = this.#firstPendingAt;
    const snapshot = applyAccess(view.snapshot, this.#access);
    this.#reportRefusals(snapshot.refused);
    const result = await this.#o.applier.apply(view.deployment ?? this.#o.deployment, snapshot);
    if (result.kind !== 'unchanged') {
      this.#o.metrics?.applyLatency.labels(result.kind).observe((Date.now() - since) / 1000);
      const level = result.kind === 'failed' ? 'error' : 'info';
      this.#o.log[level]({ source: this.#o.source.name, kind: result.kind, detail: result.detail, tenants: snapshot.tenants.length, ms: Date.now() - since }, 'tenants applied');
    }
    if (result.kind === 'failed' && !this.#stopped) {
      // Try again with the newest view: the failure may have been passing (HAProxy starting, ...).
      // Only while it is still the newest view: a newer one is pending, or was applied already
      // (re-applying this one would undo it).
      setTimeout(() => {
        if (this.#pending === undefined && this.#latest === view) this.#offer(view);
      }, this.#o.retryMs ?? 2_000).unref();
    }
    this.#o.onApplied?.(result);
    return result;
  }

  /** Each refusal is logged once, not on every view. */
  #reportRefusals(refused: readonly RefusedTenant[]): void {
    if (deepEqual(refused, this.#lastRefusals)) return;
    this.#lastRefusals = refused;
    for (const r of refused) this.#o.log.warn({ where: r.where, tenant: r.id, reason: r.reason }, 'tenant definition refused');
  }
}
