// The drain flags of the long-running commands (up, watch): how a replica leaves a balancer's
// rotation on SIGTERM without failing a new connection (docs/replicas.md, "Rolling restarts and drain").

import { Option, type Command } from 'commander';
import { DEFAULT_DRAIN, type DrainOptions } from '../generator/src/index.js';
import { flagLabel, parseDurationMs } from './flag-values.js';

export interface DrainFlags {
  drainDelay: string;
  drainTimeout: string;
}

const DELAY = flagLabel('--drain-delay', 'PGROUTE_DRAIN_DELAY');
const TIMEOUT = flagLabel('--drain-timeout', 'PGROUTE_DRAIN_TIMEOUT');

export function addDrainFlags(cmd: Command): Command {
  return cmd
    .addOption(
      new Option('--drain-delay <duration>', 'on SIGTERM, /readyz answers 503 this long while HAProxy still listens, so balancers stop sending first (0: stop listening at once)')
        .default(`${DEFAULT_DRAIN.delayMs / 1_000}s`)
        .env('PGROUTE_DRAIN_DELAY'),
    )
    .addOption(
      new Option('--drain-timeout <duration>', 'then HAProxy stops listening and serves the open sessions at most this long before closing them')
        .default(`${DEFAULT_DRAIN.timeoutMs / 1_000}s`)
        .env('PGROUTE_DRAIN_TIMEOUT'),
    );
}

export function drainFromFlags(f: DrainFlags): DrainOptions {
  return { delayMs: parseDurationMs(DELAY, f.drainDelay, 0), timeoutMs: parseDurationMs(TIMEOUT, f.drainTimeout, 1) };
}
