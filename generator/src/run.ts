// Runs pgroute on one machine (`pgroute up`, `pgroute watch`): a tenant source through the pipeline,
// the agent in this process, and HAProxy either spawned here (master-worker) or running beside us on
// the same state dir (containers).

import { mkdir, rm } from 'node:fs/promises';
import type { Logger } from 'pino';
import { buildInfo, EMPTY_ROUTE_TABLE, loadAgentRuntime, RouteStore, type AgentMetrics, type Endpoint } from '../../agent/src/index.js';
import { registerMemoMetrics } from './memo/memo-metrics.js';
import { Applier } from './apply.js';
import { startHaproxyMaster, type HaproxyMaster } from './haproxy/master.js';
import { startLearnedMark } from './haproxy/learned-mark.js';
import { showProc } from './haproxy/reload.js';
import { haproxyVersion } from './haproxy/version.js';
import { waitForTcp } from './haproxy/wait-tcp.js';
import { createGeneratorMetrics } from './metrics.js';
import { haproxyCli } from './haproxy/master.js';
import { parseTenantCounters, TENANTS_TABLE } from './status/show-table.js';
import type { Deployment } from './model.js';
import { Pipeline } from './pipeline.js';
import { Readiness } from './readiness.js';
import { PEERS_SECTION, remotePeers, type Replicas } from './replicas/peers.js';
import { waitForPeersResync } from './haproxy/peers-resync.js';
import type { DrainOptions } from './drain.js';
import { statePaths, type Settings } from './settings.js';
import type { TenantSource } from './sources/source.js';
import type { RenewalWatch } from './tls/hot-swap.js';
import { startAccessSync } from './replicas/access-sync.js';
import { startPeerNudge } from './replicas/peer-nudge.js';
import type { AccessStore } from './replicas/access-configmap.js';
import type { AccessPersistence, StorePointer } from './replicas/access-durable.js';
import type { StateDirClaim } from './state-owner.js';

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
   * This process's claim on the state dir (state-owner.ts), taken before anything was written there:
   * while it runs, generate, reload and another up/watch on it are refused. Released once stopped.
   */
  readonly claim: StateDirClaim;
  /**
   * Started once HAProxy runs, stopped first: renews the served certificate while running (the CLI
   * builds it from its TLS flags). Undefined when nothing is to be renewed.
   */
  readonly startRenewal?: () => RenewalWatch | undefined;
  readonly drain: DrainOptions;
  /** Where the access switch is kept durable beyond the state dir (Kubernetes: a ConfigMap). */
  readonly durableAccess?: DurableAccess;
  /** Where the replicas come from at runtime (Kubernetes); absent: Settings.replicas, fixed. */
  readonly replicas?: ReplicaWatch;
}

/** Follows the platform's list of replicas: the first list, then every change. */
export interface ReplicaWatch {
  start(onChange: (replicas: Replicas) => void): Promise<Replicas>;
  stop(): Promise<void>;
}

/** How long a starting replica waits for HAProxy's peers resync before it reports ready anyway. */
const PEERS_RESYNC_LIMIT_MS = 30_000;

export interface Running {
  /** Resolves with the exit code once pgroute stopped (by stop(), or because HAProxy died). */
  readonly done: Promise<number>;
  /**
   * Stops everything. With `drain` (SIGTERM), readiness goes false for the drain delay first;
   * without (Ctrl-C), HAProxy stops listening at once. Either way open sessions are served up to
   * the drain timeout.
   */
  stop(opts?: { readonly drain?: boolean }): Promise<void>;
}

export async function runPgroute(opts: RunOptions): Promise<Running> {
  const { log, settings } = opts;
  const { createAgentMetrics, setBuildInfo, startAgent } = await loadAgentRuntime();
  const metrics = createAgentMetrics();
  setBuildInfo(metrics.buildInfo, buildInfo(haproxyVersion() ?? 'unknown'));
  const adminSocket = statePaths(settings.stateDir).adminSocket;
  const genMetrics = createGeneratorMetrics(metrics.registry, () => haproxyCli(adminSocket, `show table ${TENANTS_TABLE}`, 1_000).then(parseTenantCounters));
  const store = new RouteStore(EMPTY_ROUTE_TABLE);
  const applier = new Applier({ settings, store, log, metrics: genMetrics, startsHaproxy: opts.spawnHaproxy });
  if (settings.memo.enabled) registerMemoMetrics(metrics.registry, { adminSocket, misses: () => metrics.hot.startupRoutes, invalidations: () => applier.memoInvalidations });
  const pipeline = new Pipeline({ source: opts.source, applier, deployment: opts.deployment, log, metrics: genMetrics, stateDir: settings.stateDir });
  // A source's first view may take long (an API server that does not answer is retried, never
  // given up on): meanwhile the metrics address answers, /readyz with 503 and what is awaited.
  const firstView = opts.replicas !== undefined ? 'the replica list (kubernetes endpointslices)' : `the first view of the ${opts.source.name} source`;
  let awaited = opts.durableAccess !== undefined ? 'the access switch ConfigMap' : firstView;
  const starting = await startingHttp(metrics, opts.metricsAddress, () => `starting: waiting for ${awaited}`);
  let durable: AccessPersistence | undefined;
  try {
    // The durable switches before the first configuration, so that it already refuses what they refuse.
    durable = await startDurableAccess(settings.stateDir, opts.durableAccess, log);
    awaited = firstView;
    // The replicas first, so that the first configuration already names them.
    if (opts.replicas !== undefined) {
      pipeline.setReplicas(await opts.replicas.start((r) => pipeline.setReplicas(r)));
      awaited = `the first view of the ${opts.source.name} source`;
    }
    await pipeline.start();
  } catch (err) {
    await durable?.stop();
    await opts.replicas?.stop();
    throw err;
  } finally {
    await starting.close();
  }
  const paths = statePaths(settings.stateDir);
  const readiness = new Readiness();
  readiness.hold('haproxy', opts.spawnHaproxy ? 'HAProxy is starting' : `the HAProxy master at ${paths.masterSocket} has not answered yet`);
  // With other replicas, ready only once HAProxy learnt the replicated tables from them (or gave up
  // waiting for them: its resync timeout), so a restarted replica converges before it takes traffic.
  const replicas = applier.deployment?.replicas ?? settings.replicas;
  if (remotePeers(replicas).length > 0) {
    readiness.hold('peers', 'the replicated tables are resyncing from the other replicas');
    void waitForPeersResync(paths.adminSocket, PEERS_SECTION, PEERS_RESYNC_LIMIT_MS).then(
      () => {
        log.info('the replicated tables resynced from the other replicas');
        readiness.release('peers');
      },
      (err: Error) => {
        log.warn({ err: err.message }, 'the replicated tables did not resync; reporting ready anyway (routing follows the source, not the tables)');
        readiness.release('peers');
      },
    );
  }

  const endpoint = settings.agent.servers[0];
  if (endpoint === undefined) throw new Error('no agent address configured');
  const exporter = settings.stats.enabled ? { host: reachable(settings.stats.address), port: settings.stats.port } : undefined;
  const agent = await startAgent({ listen: endpoint, http: opts.metricsAddress, ...(exporter === undefined ? {} : { haproxyExporter: exporter }), store, log, metrics, notReady: () => readiness.notReady(), cancelSocket: paths.cancelSocket, hold: settings.pause });

  // From here on, changes go to HAProxy's sockets (a change racing HAProxy's start is retried).
  applier.attach();
  let master: HaproxyMaster | undefined;
  if (opts.spawnHaproxy) {
    try {
      master = startHaproxyMaster({ configPath: paths.haproxyConfig, masterSocket: paths.masterSocket, pidFile: paths.pidFile, log });
      const l = firstListener(applier.deployment ?? opts.deployment);
      await waitForTcp(l.host, l.port, 15_000, master.exited);
      // Up means controllable too: the master CLI answers (reloads go through it).
      await waitForAnswer(`the HAProxy master CLI at ${paths.masterSocket}`, () => showProc(paths.masterSocket), 10_000, master.exited);
      // And a worker serves: its admin socket answers. From 3.1 the master answers before its worker
      // has bound anything, and a port another process holds answers too: HAProxy's worker then
      // fails to bind and exits, after both checks above had passed (seen on 3.2).
      await waitForAnswer(`the HAProxy worker's admin socket ${paths.adminSocket}`, () => haproxyCli(paths.adminSocket, 'show info', 1_000), 10_000, master.exited);
    } catch (err) {
      await opts.replicas?.stop();
      await pipeline.stop();
      await agent.close();
      // HAProxy gone at start (a port in use, no binary): its own reason, not "gave up waiting".
      const why = master?.exitReason();
      throw why === undefined ? err : new Error(why);
    }
    readiness.release('haproxy');
  }
  // HAProxy in another container (watch): ready while its master answers with a worker running.
  const external = opts.spawnHaproxy ? undefined : followExternalHaproxy(paths.masterSocket, readiness);
  // The access switch of every replica, through HAProxy's replicated table; converged before
  // "running" (a restarted replica learns what changed while it was down).
  const access = startAccessSync({ stateDir: settings.stateDir, adminSocket: paths.adminSocket, hasRemotePeers: remotePeers(replicas).length > 0, log });
  // Each new worker told when it has learned the replicated tables: its cancel records go to its own
  // table from then on (before, to its handover table: docs/cancel.md "Across a reload").
  const learned = startLearnedMark({ masterSocket: paths.masterSocket, log });
  // Messages on every peers session while the tables are idle: HAProxy closes a silent one as dead.
  const nudge = startPeerNudge({ adminSocket: paths.adminSocket, self: replicas.self, hasRemotePeers: () => remotePeers(applier.deployment?.replicas ?? settings.replicas).length > 0, log });
  await access.settled;
  await pipeline.refreshAccess();
  const workers = setInterval(() => void applier.refreshWorkers(), 10_000);
  workers.unref();
  const renewal = opts.startRenewal?.();

  let stopping: Promise<void> | undefined;
  const stop = (how: { readonly drain?: boolean } = {}): Promise<void> =>
    (stopping ??= (async () => {
      const { delayMs, timeoutMs } = opts.drain;
      readiness.hold('stopping', 'draining: this replica is stopping');
      if (how.drain === true && delayMs > 0) {
        log.info({ delayMs }, 'draining: /readyz answers 503; HAProxy keeps listening and routing for the drain delay, so balancers stop sending first');
        await new Promise((r) => setTimeout(r, delayMs));
      }
      log.info({ timeoutMs }, 'stopping: the source, then HAProxy (no new connections; open sessions are served up to the drain timeout), then the agent');
      clearInterval(workers);
      external?.stop();
      await access.stop();
      await nudge.stop();
      await learned.stop();
      await durable?.stop();
      await renewal?.stop();
      await opts.replicas?.stop();
      await pipeline.stop();
      // Connections held for a paused tenant would be closed without a word when HAProxy stops: they
      // are refused now with 57P01, and their clients connect again (another replica holds them).
      const held = agent.shutdownHolds();
      if (held > 0) log.info({ held }, 'stopping: connections held for paused tenants refused (57P01: connect again)');
      // The agent stays up while HAProxy may still ask it (connections accepted before it stopped listening).
      if (master !== undefined) await master.stop(timeoutMs);
      else await waitUntilGone(paths.masterSocket, timeoutMs, log);
      await agent.close();
      await opts.claim.release();
    })());
  const done = master
    ? master.exited.then(async (code) => {
        if (stopping !== undefined) {
          await stopping;
          return 0;
        }
        if (master.signalled()) {
          // Ctrl-C reaches the whole foreground process group, HAProxy included, and a service
          // manager may signal every process: HAProxy may stop before pgroute sees its own signal.
          log.warn({ code }, 'HAProxy was stopped by a signal sent to it (Ctrl-C reaches the whole process group); stopping');
          await stop();
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

/**
 * The metrics address while the first views are awaited: /healthz 200 (alive: a liveness probe must
 * not restart a replica that waits for its API server), /readyz 503 naming what is awaited,
 * /metrics. Closed before the agent's own HTTP side takes the address over.
 */
async function startingHttp(metrics: AgentMetrics, at: Endpoint, waiting: () => string): Promise<{ close(): Promise<void> }> {
  const { createAgentHttpServer } = await loadAgentRuntime();
  const server = createAgentHttpServer(metrics, { unhealthy: () => undefined, notReady: waiting, describe: () => ({ starting: true }) });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: Error) => reject(new Error(`cannot listen on ${at.host}:${at.port} (the metrics address): ${err.message}`)));
    server.listen(at.port, at.host, () => resolve());
  });
  return {
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

export interface DurableAccess {
  readonly store: AccessStore;
  readonly pointer: StorePointer;
}

async function startDurableAccess(stateDir: string, d: DurableAccess | undefined, log: Logger): Promise<AccessPersistence | undefined> {
  const { pointerPath, startAccessPersistence } = await import('./replicas/access-durable.js');
  // A pointer left by an earlier run with a store would send `pgroute tenant` to a store no longer kept.
  if (d === undefined) return void (await rm(pointerPath(stateDir), { force: true }));
  await mkdir(stateDir, { recursive: true });
  return startAccessPersistence({ stateDir, adminSocket: statePaths(stateDir).adminSocket, store: d.store, pointer: d.pointer, log });
}

/**
 * Holds readiness while the HAProxy master on `socket` does not answer with a serving worker. One
 * look at a time, a second after the last one ended: a slow answer never overwrites a newer one.
 */
function followExternalHaproxy(socket: string, readiness: Readiness): { stop(): void } {
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  const check = (): void => {
    showProc(socket)
      .then(
        (p) => (p.serving.length > 0 ? readiness.release('haproxy') : readiness.hold('haproxy', `the HAProxy master at ${socket} runs no worker`)),
        (err: Error) => readiness.hold('haproxy', `the HAProxy master does not answer: ${err.message}`),
      )
      .finally(() => {
        if (stopped) return;
        timer = setTimeout(check, 1_000);
        timer.unref();
      });
  };
  check();
  return {
    stop: () => {
      stopped = true;
      clearTimeout(timer);
    },
  };
}

/** Resolves once the HAProxy master on `socket` no longer answers, or after timeoutMs. */
async function waitUntilGone(socket: string, timeoutMs: number, log: Logger): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!(await showProc(socket).then(() => true, () => false))) return;
    await new Promise((r) => setTimeout(r, 250));
  }
  log.warn({ timeoutMs }, 'the HAProxy beside pgroute still runs after the drain timeout; stopping the agent anyway (connections it accepts now are refused)');
}

/** Asks until `ask` answers; fails once HAProxy exited meanwhile, or after `timeoutMs`. */
async function waitForAnswer(what: string, ask: () => Promise<unknown>, timeoutMs: number, exited: Promise<unknown>): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let gone = false;
  void exited.then(() => (gone = true));
  for (;;) {
    // Something else may hold the public port: HAProxy then failed to bind and exited (its alerts
    // are logged), while the port still answered.
    if (gone) throw new Error('HAProxy exited while starting; its alerts are in the log above');
    try {
      await ask();
      return;
    } catch (err) {
      if (Date.now() > deadline) throw new Error(`${what} did not answer within ${timeoutMs} ms: ${(err as Error).message}`);
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
