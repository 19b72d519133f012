// `pgroute up`: the embedded default. The tenants file (watched) through the pipeline, the agent in
// this process and HAProxy (master-worker) as a child; SIGTERM drains and stops all of it, Ctrl-C
// stops it without the drain delay.

import type { Logger } from 'pino';
import type { Endpoint } from '../agent/src/index.js';
import { FileSource, loadRun, parsePolicy, type DrainOptions, type Listener, type Running, type Settings, type StateDirClaim } from '../generator/src/index.js';
import { startRenewal, type TlsFlags } from './tls.js';

export interface UpOptions {
  readonly tenantsFile: string;
  readonly settings: Settings;
  readonly fallbackListener: Listener;
  readonly metricsAddress: Endpoint;
  readonly log: Logger;
  readonly tls: TlsFlags;
  readonly drain: DrainOptions;
  readonly claim: StateDirClaim;
}

export async function up(opts: UpOptions): Promise<Running> {
  const { runPgroute } = await loadRun();
  return runPgroute({
    source: new FileSource(opts.tenantsFile, opts.fallbackListener, opts.log),
    deployment: { listeners: [opts.fallbackListener], policy: parsePolicy(undefined, [opts.fallbackListener]) },
    startRenewal: () => startRenewal(opts.tls, opts.settings, opts.log),
    settings: opts.settings,
    claim: opts.claim,
    metricsAddress: opts.metricsAddress,
    spawnHaproxy: true,
    drain: opts.drain,
    log: opts.log,
  });
}
