// What every tenant source (file, Docker, Kubernetes) provides: complete, validated snapshots,
// pushed whenever what it sees may have changed. A source never edits running state; one pipeline
// compares, throttles and applies (generator/src/pipeline.ts).

import type { Logger } from 'pino';
import type { Deployment, TenantSnapshot } from '../model.js';

/** Everything a source sees at one instant, validated through the shared parsers (tenants.ts). */
export interface SourceView {
  /** The tenants (sorted by id) and every definition refused, with its reason. */
  readonly snapshot: TenantSnapshot;
  /** Where each tenant of the snapshot is defined (id -> e.g. 'docker container acme-db (3f2a9c0d1e2b)'). */
  readonly where: Readonly<Record<string, string>>;
  /** Listeners and routing policy, when the source defines them (the file does). */
  readonly deployment?: Deployment;
}

export interface TenantSource {
  /** 'file', 'docker', 'kubernetes': used in logs and metrics. */
  readonly name: string;
  /**
   * Starts watching. `onView` is called with the first complete view as soon as it is known, and
   * again after every change (sources may call it with an unchanged view; the pipeline compares
   * and skips it). Resolves once the first view has been delivered.
   */
  start(onView: (view: SourceView) => void): Promise<void>;
  /** Stops watching and releases every connection, timer and watcher. */
  stop(): Promise<void>;
}

export interface SourceContext {
  readonly log: Logger;
}
