// The one loop of the replicas' periodic exchanges (the access switch with HAProxy's table and with
// a durable store, the peers keepalive): a round, then the next one intervalMs after it ended, never
// two at once. A failed round is retried at the same pace; the caller hears of every failure (with
// whether it is the first since a success, to log once) and of the first success after failures.

export interface RoundsOptions {
  readonly intervalMs: number;
  round(): Promise<void>;
  failed(err: Error, first: boolean): void;
  recovered?(): void;
}

export interface Rounds {
  /** No round starts after it; resolves once the round in flight ended. */
  stop(): Promise<void>;
}

export function startRounds(opts: RoundsOptions): Rounds {
  let stopped = false;
  let failing = false;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> = Promise.resolve();
  const tick = (): void => {
    if (stopped) return;
    running = opts.round().then(
      () => {
        if (failing) opts.recovered?.();
        failing = false;
      },
      (err: Error) => {
        opts.failed(err, !failing);
        failing = true;
      },
    );
    void running.then(() => {
      if (!stopped) timer = setTimeout(tick, opts.intervalMs);
    });
  };
  tick();
  return {
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await running;
    },
  };
}
