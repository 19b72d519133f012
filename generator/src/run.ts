// Runs pgroute on one machine (`pgroute up`, `pgroute watch`): a tenant source through the pipeline,
// the agent in this process, and HAProxy either spawned here (master-worker) or running beside us on
// the same state dir (containers).

import type { Logger } from 'pino';
import { buildInfo, createAgentMetrics, EMPTY_ROUTE_TABLE, RouteStore, setBuildInfo, startAgent, type Endpoint } from '../../agent/src/index.js';
import { Applier } from './apply.js';
import { startHaproxyMaster, type HaproxyMaster } from './haproxy/master.js';
import { showProc } from './haproxy/reload.js';
import { haproxyVersion } from './haproxy/version.js';
import { waitForTcp } from './haproxy/wait-tcp.js';
import { createGeneratorMetrics } from './metrics.js';
import { haproxyCli } from './haproxy/master.js';
import { parseTenantCounters, TENANTS_TABLE } from './status/show-table.js';
import type { Deployment } from './model.js';
import { Pipeline } from './pipeline.js';
import { statePaths, type Settings } from './settings.js';
import type { TenantSource } from './sources/source.js';
import type { RenewalWatch } from './tls/hot-swap.js';
import { startAccessSync } from './replicas/access-sync.js';
import { remotePeers } from './replicas/peers.js';

export interface RunOptions {
  readonly source: TenantSource;
  /** Listeners and policy when the source does not define them. */
  readonly deployment: Deployment;
  readonly settings: Settings;
  /** Where /metrics, /metrics/haproxy and /healthz are served (docs/monitoring.md). */
  readonly metricsAddress: Endpoint;
  /** Spawn HAProxy here (`pgroute up`), or drive one already running on the state dir (`pgroute watch`). */
  readonly spawnHaproxy: boolean;
  readonly log: Logger;
  /**
   * Started once HAProxy runs, stopped first: renews the served certificate while running (the CLI
   * builds it from its TLS flags). Undefined when nothing is to be renewed.
   */
  readonly startRenewal?: () => RenewalWatch | undefined;
}

export interface Running {
  /** Resolves with the exit code once pgroute stopped (by stop(), or because HAProxy died). */
  readonly done: Promise<number>;
  stop(): Promise<void>;
}

export async function runPgroute(opts: RunOptions): Promise<Running> {
  const { log, settings } = opts;
  const metrics = createAgentMetrics();
  setBuildInfo(metrics.buildInfo, buildInfo(haproxyVersion() ?? 'unknown'));
  const adminSocket = statePaths(settings.stateDir).adminSocket;
  const genMetrics = createGeneratorMetrics(metrics.registry, () => haproxyCli(adminSocket, `show table ${TENANTS_TABLE}`, 1_000).then(parseTenantCounters));
  const store = new RouteStore(EMPTY_ROUTE_TABLE);
  const applier = new Applier({ settings, store, log, metrics: genMetrics, startsHaproxy: opts.spawnHaproxy });
  const pipeline = new Pipeline({ source: opts.source, applier, deployment: opts.deployment, log, metrics: genMetrics, stateDir: settings.stateDir });
  await pipeline.start();
  const paths = statePaths(settings.stateDir);

  const endpoint = settings.agent.servers[0];
  if (endpoint === undefined) throw new Error('no agent address configured');
  const exporter = settings.stats.enabled ? { host: reachable(settings.stats.address), port: settings.stats.port } : undefined;
  const agent = await startAgent({ listen: endpoint, http: opts.metricsAddress, ...(exporter === undefined ? {} : { haproxyExporter: exporter }), store, log, metrics });

  // From here on, changes go to HAProxy's sockets (a change racing HAProxy's start is retried).
  applier.attach();
  let master: HaproxyMaster | undefined;
  if (opts.spawnHaproxy) {
    try {
      master = startHaproxyMaster({ configPath: paths.haproxyConfig, masterSocket: paths.masterSocket, pidFile: paths.pidFile, log });
      const l = firstListener(applier.deployment ?? opts.deployment);
      await waitForTcp(l.host, l.port, 15_000, master.exited);
      // Up means controllable too: the master CLI answers (reloads go through it).
      await waitForMaster(paths.masterSocket, 10_000, master.exited);
    } catch (err) {
      await pipeline.stop();
      await agent.close();
      throw err;
    }
  }
  // The access switch of every replica, through HAProxy's replicated table; converged before
  // "running" (a restarted replica learns what changed while it was down).
  const access = startAccessSync({ stateDir: settings.stateDir, adminSocket: paths.adminSocket, hasRemotePeers: remotePeers(settings.replicas).length > 0, log });
  await access.settled;
  await pipeline.refreshAccess();
  const workers = setInterval(() => void applier.refreshWorkers(), 10_000);
  workers.unref();
  const renewal = opts.startRenewal?.();

  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> =>
    (stopping ??= (async () => {
      log.info('stopping: the source, then HAProxy (no new connections), then the agent');
      clearInterval(workers);
      await access.stop();
      await renewal?.stop();
      await pipeline.stop();
      await master?.stop();
      await agent.close();
    })());
  const done = master
    ? master.exited.then(async (code) => {
        if (stopping !== undefined) {
          await stopping;
          return 0;
        }
        log.error({ code }, 'HAProxy exited unexpectedly; stopping');
        await stop();
        return 1;
      })
    : new Promise<number>(() => {});
  log.info({ source: opts.source.name, stateDir: settings.stateDir, haproxy: opts.spawnHaproxy ? 'spawned' : 'external' }, 'pgroute is running');
  return { done, stop };
}

async function waitForMaster(socket: string, timeoutMs: number, exited: Promise<unknown>): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let gone = false;
  void exited.then(() => (gone = true));
  for (;;) {
    // Something else may hold the public port: HAProxy then failed to bind and exited (its alerts
    // are logged), while the port still answered.
    if (gone) throw new Error('HAProxy exited while starting; its alerts are in the log above');
    try {
      await showProc(socket);
      return;
    } catch (err) {
      if (Date.now() > deadline) throw new Error(`the HAProxy master CLI at ${socket} did not answer within ${timeoutMs} ms: ${(err as Error).message}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

/** An address to connect to for one HAProxy binds: a wildcard is reached on loopback. */
function reachable(address: string): string {
  return address === '0.0.0.0' ? '127.0.0.1' : address === '::' ? '::1' : address;
}

function firstListener(deployment: Deployment): { host: string; port: number } {
  const l = deployment.listeners[0];
  if (l === undefined) throw new Error('no listener configured');
  return { host: l.address === '0.0.0.0' || l.address === '::' ? '127.0.0.1' : l.address, port: l.port };
}
