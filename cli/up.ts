// `pgroute up`: the embedded default. The tenants file (watched) through the pipeline, the agent in
// this process and HAProxy (master-worker) as a child; Ctrl-C or SIGTERM stops all of it cleanly.

import type { Logger } from 'pino';
import { FileSource, parsePolicy, type Listener, type Settings } from '../generator/src/index.js';
import type { TlsFlags } from './tls.js';
import { runPgroute, type Running } from './run.js';

export interface UpOptions {
  readonly tenantsFile: string;
  readonly settings: Settings;
  readonly fallbackListener: Listener;
  readonly agentHttpPort: number;
  readonly log: Logger;
  readonly tls: TlsFlags;
}

export function up(opts: UpOptions): Promise<Running> {
  return runPgroute({
    source: new FileSource(opts.tenantsFile, opts.fallbackListener, opts.log),
    deployment: { listeners: [opts.fallbackListener], policy: parsePolicy(undefined, [opts.fallbackListener]) },
    tls: opts.tls,
    settings: opts.settings,
    agentHttpPort: opts.agentHttpPort,
    spawnHaproxy: true,
    log: opts.log,
  });
}
