// `pgroute up`: the embedded default. Renders the tenants file, starts the agent in this process and
// HAProxy (master-worker) as a child, and stops both cleanly on Ctrl-C or SIGTERM.

import type { Logger } from 'pino';
import { startAgent, type RunningAgent } from '../agent/src/agent.js';
import { RouteStore } from '../agent/src/routes-store.js';
import { toRouteTable } from '../agent/src/route-table-document.js';
import { generate } from '../generator/src/generate.js';
import { startHaproxyMaster, type HaproxyMaster } from '../generator/src/haproxy/master.js';
import type { Listener } from '../generator/src/model.js';
import type { Settings } from '../generator/src/settings.js';
import { readTenantsFile } from '../generator/src/sources/file.js';
import { reportRefused } from './report.js';
import { waitForTcp } from './wait.js';

export interface UpOptions {
  readonly tenantsFile: string;
  readonly settings: Settings;
  readonly fallbackListener: Listener;
  readonly agentHttpPort: number;
  readonly log: Logger;
  /** Called once everything listens (the demo prints how to connect). */
  readonly onReady?: (listeners: readonly Listener[]) => void;
}

export interface RunningUp {
  readonly listeners: readonly Listener[];
  /** Resolves when pgroute stopped: by stop(), or because HAProxy died (code 1). */
  readonly done: Promise<number>;
  stop(): Promise<void>;
}

export async function up(opts: UpOptions): Promise<RunningUp> {
  const { log, settings } = opts;
  const file = await readTenantsFile(opts.tenantsFile, opts.fallbackListener);
  reportRefused(log, file.snapshot.refused);
  const generation = await generate(file.deployment, file.snapshot, settings);
  log.info({ stateDir: settings.stateDir, tenants: file.snapshot.tenants.length, version: generation.routes.version }, 'configuration rendered and validated');

  const agentEndpoint = settings.agent.servers[0];
  if (agentEndpoint === undefined) throw new Error('no agent address configured');
  const store = new RouteStore(toRouteTable(generation.routes));
  const agent: RunningAgent = await startAgent({
    listen: agentEndpoint,
    http: { host: agentEndpoint.host, port: opts.agentHttpPort },
    store,
    log,
  });
  let master: HaproxyMaster;
  try {
    master = startHaproxyMaster({
      configPath: generation.paths.haproxyConfig,
      masterSocket: generation.paths.masterSocket,
      pidFile: generation.paths.pidFile,
      log,
    });
    const first = file.deployment.listeners[0];
    if (first) await waitForTcp(first.address === '0.0.0.0' ? '127.0.0.1' : first.address, first.port, 10_000, master.exited);
  } catch (err) {
    await agent.close();
    throw err;
  }

  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> =>
    (stopping ??= (async () => {
      log.info('stopping: HAProxy first (no new connections), then the agent');
      await master.stop();
      await agent.close();
    })());
  const done = master.exited.then(async (code) => {
    const unexpected = stopping === undefined;
    if (unexpected) {
      log.error({ code }, 'HAProxy exited unexpectedly; stopping the agent');
      await agent.close();
    } else await stopping;
    return unexpected ? 1 : 0;
  });
  log.info({ listeners: file.deployment.listeners.map((l) => `${l.address}:${l.port}`) }, 'pgroute is up');
  opts.onReady?.(file.deployment.listeners);
  return { listeners: file.deployment.listeners, done, stop };
}
