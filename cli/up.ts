// `pgroute up`: the embedded default. The tenants file (watched) through the pipeline, the agent in
// this process and HAProxy (master-worker) as a child; Ctrl-C or SIGTERM stops all of it cleanly.

import type { Logger } from 'pino';
import type { Endpoint } from '../agent/src/index.js';
import { FileSource, parsePolicy, runPgroute, type Listener, type Running, type Settings } from '../generator/src/index.js';
import { startRenewal, type TlsFlags } from './tls.js';

export interface UpOptions {
  readonly tenantsFile: string;
  readonly settings: Settings;
  readonly fallbackListener: Listener;
  readonly metricsAddress: Endpoint;
  readonly log: Logger;
  readonly tls: TlsFlags;
}

export function up(opts: UpOptions): Promise<Running> {
  return runPgroute({
    source: new FileSource(opts.tenantsFile, opts.fallbackListener, opts.log),
    deployment: { listeners: [opts.fallbackListener], policy: parsePolicy(undefined, [opts.fallbackListener]) },
    startRenewal: () => startRenewal(opts.tls, opts.settings, opts.log),
    settings: opts.settings,
    metricsAddress: opts.metricsAddress,
    spawnHaproxy: true,
    log: opts.log,
  });
}
