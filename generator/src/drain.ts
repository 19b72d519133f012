// How a replica leaves a balancer's rotation: the options and their defaults, apart from run.ts so
// that the CLI's flags read the defaults without loading pgroute's runtime.

/** How a replica leaves a balancer's rotation without failing a new connection (docs/replicas.md). */
export interface DrainOptions {
  /**
   * After a drain begins, /readyz answers 503 this long while HAProxy still listens and routes, so
   * that balancers and Endpoints following readiness stop sending first.
   */
  readonly delayMs: number;
  /** Then HAProxy stops listening and serves the open sessions at most this long (spawned HAProxy),
   * or pgroute keeps its agent up at most this long for the HAProxy beside it to finish (external). */
  readonly timeoutMs: number;
}

export const DEFAULT_DRAIN: DrainOptions = { delayMs: 5_000, timeoutMs: 30_000 };
