// client-node 1.4's Watch asks for no timeoutSeconds and keeps no deadline of its own (the 30 s
// AbortSignal.timeout in watch.js is overwritten on the next line), so a watch whose TCP connection
// silently died would wait forever. This Watch behaves like client-go's reflector instead:
// - asks the apiserver to end each watch after a randomized timeoutSeconds, and gives up on its own
//   a little later if the apiserver does not; either way ListWatch resumes from its
//   resourceVersion (no re-list), because an expired watch is reported as a normal end;
// - asks for BOOKMARK events, which keep ListWatch's resourceVersion fresh in a quiet namespace, so
//   a reconnect rarely meets 410 Gone and a full re-list;
// - aborts a watch that connects after its owner stopped (ListWatch.stop() cannot abort a request
//   whose response headers have not arrived yet).

import { type KubeConfig, Watch } from '@kubernetes/client-node';

type WatchCallback = Parameters<Watch['watch']>[2];
type DoneCallback = Parameters<Watch['watch']>[3];

export interface TimedWatchOptions {
  /** Base watch timeout; each watch asks for a random value in [base, 2 * base). */
  readonly timeoutSeconds: number;
  /** True once the informer using this watch was stopped for good. */
  readonly stopped: () => boolean;
}

export class TimedWatch extends Watch {
  private readonly options: TimedWatchOptions;

  constructor(config: KubeConfig, options: TimedWatchOptions) {
    super(config);
    this.options = options;
  }

  override async watch(path: string, queryParams: Record<string, string | number | boolean | undefined>, callback: WatchCallback, done: DoneCallback): Promise<AbortController> {
    const seconds = Math.max(1, Math.floor(this.options.timeoutSeconds * (1 + Math.random())));
    let deadline: NodeJS.Timeout | undefined;
    let expired = false;
    let finished = false;
    const finish = (err: unknown): void => {
      if (finished) return;
      finished = true;
      clearTimeout(deadline);
      // Our own deadline aborted the request: that is a normal end, not an error.
      done(expired ? null : err);
    };
    const params = { ...queryParams, allowWatchBookmarks: true, timeoutSeconds: seconds };
    const controller = await super.watch(path, params, callback, finish);
    if (this.options.stopped()) {
      controller.abort();
    } else if (!finished) {
      deadline = setTimeout(() => {
        expired = true;
        controller.abort();
      }, Math.ceil(seconds * 1100 + 1000));
      deadline.unref();
    }
    return controller;
  }
}
