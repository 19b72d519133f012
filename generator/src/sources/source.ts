// What every tenant source (file, Docker, Kubernetes) provides: complete snapshots, pushed whenever
// what it sees changes. A source never edits running state; one pipeline validates, renders, diffs
// and applies (generator/src/pipeline.ts).

import type { Logger } from 'pino';
import type { Deployment, RefusedTenant } from '../model.js';
import type { RawTenant } from '../tenants.js';

/** Everything a source sees at one instant, before validation (buildSnapshot validates). */
export interface SourceView {
  /** Raw definitions in a deterministic order: on a duplicate id the first one wins. */
  readonly raws: readonly RawTenant[];
  /** Definitions the source itself already refused (e.g. conflicting claims), with reasons. */
  readonly refused: readonly RefusedTenant[];
  /** Listeners and routing policy, when the source defines them (the file does). */
  readonly deployment?: Deployment;
}

export interface TenantSource {
  /** 'file', 'docker', 'kubernetes': used in logs and metrics. */
  readonly name: string;
  /**
   * Starts watching. `onView` is called with the first complete view as soon as it is known, and
   * again after every change (sources may call it with an unchanged view; the pipeline skips
   * identical output). Resolves once the first view has been delivered.
   */
  start(onView: (view: SourceView) => void): Promise<void>;
  /** Stops watching and releases every connection, timer and watcher. */
  stop(): Promise<void>;
}

export interface SourceContext {
  readonly log: Logger;
}
