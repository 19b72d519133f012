#!/usr/bin/env node
// The pgroute command line: one entry point for operators.

import { existsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { Command, Option } from 'commander';
import { loadAgentRuntime, loadRouteTable, quoteValue, RouteStore } from '../agent/src/index.js';
import {
  ConfigError,
  DEFAULT_AGENT_HTTP_PORT,
  DEFAULT_AGENT_PORT,
  generate,
  generationFiles,
  markLearnedOnce,
  parsePolicy,
  readTenantsFile,
  reloadMaster,
  loadRun,
  restoreFiles,
  saveFiles,
  claimStateDir,
  stateDirOwner,
  statePaths,
  targetPolicyFromFlags,
  type Generation,
  type Listener,
  type Running,
  type StateDirClaim,
  type TenantSource,
} from '../generator/src/index.js';
import { EXIT, CommandFailure, exitWith } from './fail.js';
import { parseHost, parsePort, parseSocketPath } from './flag-values.js';
import { createLogging, LOG_FORMAT_ENV, LOG_FORMAT_FLAG, parseLogFormat } from './logger.js';
import { reportRefused } from './report.js';
import { addDeploymentFlags, addPauseFlags, label, metricsAddressFromFlags, pauseFromFlags, settingsFromFlags, type DeploymentFlags, type PauseFlags } from './settings-options.js';
import { makeStateDir } from './state-dir.js';
import { up } from './up.js';
import { addDrainFlags, drainFromFlags, type DrainFlags } from './drain.js';
import { addKubePeersFlags, durableAccessFromFlags, kubePeersFromFlags, type KubePeersFlags } from './kube-peers.js';
import { registerCertCommands } from './cert.js';
import { registerStatusCommand } from './status.js';
import { registerPlanCommand } from './plan.js';
import { addSourceFlags, checkSourceFlags, sourceFromFlags, type SourceFlags } from './sources.js';
import { registerTenantCommands } from './tenant.js';
import { checkTlsFlags, prepareTls, startRenewal, type TlsFlags } from './tls.js';
import { runUntilSignal, startOrExit } from './signals.js';
import { addVersionFlag } from './version.js';

const logging = (() => {
  try {
    return createLogging();
  } catch (err) {
    return exitWith(err);
  }
})();
// Read where HAProxy is run (generator/src/haproxy/check.ts), not by commander: empty, it would
// reach spawn() as '' and fail with Node's own words.
if (process.env.PGROUTE_HAPROXY === '') exitWith(new ConfigError('PGROUTE_HAPROXY is set but empty: set it to the path of haproxy, or unset it to run haproxy from PATH'));
const log = logging.log;
// Usage errors go through the one error path (exitWith) as one line, not with the whole help.
const program = new Command('pgroute')
  .description('One public PostgreSQL port for many tenants: HAProxy routes each connection by the pgroute agent\'s verdict.')
  .exitOverride()
  .configureOutput({ outputError: () => undefined });
addVersionFlag(program);
program
  .addOption(new Option(`${LOG_FORMAT_FLAG} <format>`, 'pgroute\'s own logs on stderr: json, or pretty (one readable line per entry); default: pretty on a terminal, else json').env(LOG_FORMAT_ENV))
  .hook('preAction', (_program, command) => {
    const format = command.optsWithGlobals<{ logFormat?: string }>().logFormat;
    if (format !== undefined) logging.setFormat(parseLogFormat(format));
  });

type FileFlags = DeploymentFlags & TlsFlags & { tenants: string; strict: boolean };

/** The deployment flags checked, the state dir made and the certificate ready. */
async function deploymentFromFlags(flags: DeploymentFlags & TlsFlags, parsed = settingsFromFlags(flags)): Promise<ReturnType<typeof settingsFromFlags>> {
  checkTlsFlags(flags);
  await makeStateDir(label('--state-dir'), parsed.settings.stateDir);
  return { ...parsed, settings: await prepareTls(flags, parsed.settings, log) };
}

/**
 * up and watch: the state dir claimed for this process (state-owner.ts) before anything but the
 * directory itself is written there; a second one on a state dir another serves is refused, as it
 * would overwrite that one's configuration, sockets and certificate. Released when the process
 * stops, or when what follows the claim fails (afterClaim).
 */
async function claimedDeployment(flags: DeploymentFlags & TlsFlags): Promise<ReturnType<typeof settingsFromFlags> & { claim: StateDirClaim }> {
  const parsed = settingsFromFlags(flags);
  checkTlsFlags(flags);
  const { stateDir } = parsed.settings;
  await makeStateDir(label('--state-dir'), stateDir);
  const claimed = await claimStateDir(statePaths(stateDir).owner);
  if ('owner' in claimed) {
    throw new CommandFailure(
      `--state-dir (PGROUTE_STATE_DIR): ${stateDir} is run by another pgroute up/watch (${claimed.owner}); two on one state dir overwrite each other's configuration and sockets: stop that one first, or give this one its own --state-dir`,
      EXIT.usage,
    );
  }
  const { claim } = claimed;
  return afterClaim(claim, async () => ({ ...parsed, settings: await prepareTls(flags, parsed.settings, log), claim }));
}

/** What follows the claim; when it fails, the claim is released first, as a stop releases it. */
async function afterClaim<T>(claim: StateDirClaim, next: () => Promise<T>): Promise<T> {
  try {
    return await next();
  } catch (err) {
    await claim.release();
    throw err;
  }
}

/** generate and reload: the tenants file, rendered and validated, with the certificate ready. */
async function generateFromFile(flags: FileFlags): Promise<Generation> {
  // Before anything is written there (the state dir, TLS files): a running up/watch owns it.
  const parsed = settingsFromFlags(flags);
  const { stateDir } = parsed.settings;
  const owner = await stateDirOwner(statePaths(stateDir).owner);
  if (owner !== undefined) {
    throw new CommandFailure(
      `--state-dir (PGROUTE_STATE_DIR): ${stateDir} is run by pgroute up/watch (${owner}), which applies its own tenants: edit its tenants file (preview with pgroute plan); generate and reload are for HAProxy and pgroute agent run apart`,
      EXIT.usage,
    );
  }
  const served = await servedTenants(statePaths(stateDir).routes);
  // An empty file over a state dir that serves tenants is refused, as `up` refuses one (a file
  // caught while being written); removing every tenant takes an explicit `tenants: []`.
  // The file is judged before the state dir is made or a certificate written: a refusal writes nothing.
  const file = await readTenantsFile(flags.tenants, parsed.fallbackListener, served.size > 0);
  const refused = file.snapshot.refused.length;
  reportRefused(log, file.snapshot.refused);
  if (refused > 0 && flags.strict) {
    throw new CommandFailure(`${refused} tenant definition${refused === 1 ? '' : 's'} in ${flags.tenants} refused (see the warnings above); nothing was written (--strict): fix the file`, EXIT.refused);
  }
  // A served tenant whose new definition is refused would be dropped: `up` keeps its previous
  // definition instead, which a one-shot command does not have; so nothing is written.
  // (A refused second definition of an id whose first one stands drops nothing.)
  const kept = new Set(file.snapshot.tenants.map((t) => t.id));
  const dropped = [...new Set(file.snapshot.refused.flatMap((r) => (r.id !== undefined && served.has(r.id) && !kept.has(r.id) ? [r.id] : [])))];
  if (dropped.length > 0) {
    throw new CommandFailure(
      `the new definition of served tenant${dropped.length === 1 ? '' : 's'} ${dropped.map((id) => quoteValue(id)).join(', ')} in ${flags.tenants} is refused (see the warnings above): applying it would drop ${dropped.length === 1 ? 'it' : 'them'}, so nothing was written; fix the definition, or delete the tenant from the file to remove it`,
      EXIT.refused,
    );
  }
  const { settings } = await deploymentFromFlags(flags, parsed);
  const g = await generate(file.deployment, file.snapshot, settings);
  if (g.checkWarnings.length > 0) log.warn({ haproxy: g.checkWarnings }, 'haproxy -c accepted the configuration with warnings');
  if (refused > 0) {
    const served = file.snapshot.tenants.length;
    log.warn(
      { tenants: served, refused, file: flags.tenants },
      served === 0 ? 'every tenant definition was refused: the configuration serves no tenant (--strict makes this an error)' : 'tenant definitions were refused and left out (--strict makes this an error)',
    );
  }
  return g;
}

/** The tenants the state dir's routes.json serves (none when there is none yet, or it is unreadable: then it is rewritten). */
async function servedTenants(routes: string): Promise<ReadonlySet<string>> {
  try {
    return new Set((await loadRouteTable(routes)).tenants.keys());
  } catch {
    return new Set();
  }
}

function fileCommand(name: string, description: string): Command {
  return addDeploymentFlags(
    program
      .command(name)
      .description(description)
      .requiredOption('--tenants <file>', 'tenants file (YAML)')
      .option('--strict', `exit ${EXIT.refused} without writing anything when any tenant definition is refused`, false),
  );
}

fileCommand('generate', 'render haproxy.cfg, spoe.conf and routes.json from a tenants file and validate them with haproxy -c').action(async (flags: FileFlags) => {
  const g = await generateFromFile(flags);
  log.info({ haproxyConfig: g.paths.haproxyConfig, routes: g.paths.routes, version: g.routes.version, tenants: g.routes.tenants.length, changed: g.configChanged || g.routesChanged }, 'generated and validated');
});

addPauseFlags(
  program
    .command('agent')
    .description('run the SPOE agent alone, deciding with a routes.json written by `pgroute generate`'),
)
  .requiredOption('--routes <file>', 'routes.json (reloaded on SIGHUP)')
  .addOption(new Option('--host <address>', 'SPOP listen address').default('127.0.0.1').env('PGROUTE_AGENT_HOST'))
  .addOption(new Option('--port <port>', 'SPOP listen port').default(String(DEFAULT_AGENT_PORT)).env('PGROUTE_AGENT_PORT'))
  .addOption(new Option('--socket <path>', 'serve SPOP on this unix socket instead of --host:--port (so not with the --port flag)').env('PGROUTE_AGENT_SOCKET'))
  .addOption(new Option('--metrics-address <host:port>', `where /metrics and /healthz are served (default --host:${DEFAULT_AGENT_HTTP_PORT})`).env('PGROUTE_METRICS_ADDRESS'))
  .addOption(new Option('--http-port <port>', `the port of the metrics address on --host (older form of --metrics-address; default ${DEFAULT_AGENT_HTTP_PORT})`).env('PGROUTE_AGENT_HTTP_PORT'))
  .addOption(
    new Option('--cancel-socket <path>', "HAProxy's cancel socket, where copies of a cancel go to the client's further backends (default: haproxy-cancel.sock beside --routes)").env(
      'PGROUTE_AGENT_CANCEL_SOCKET',
    ),
  )
  .action(async (flags: PauseFlags & { routes: string; host: string; port: string; socket?: string; httpPort?: string; metricsAddress?: string; cancelSocket?: string }, command: Command) => {
    // The --port flag beside a socket would be ignored; PGROUTE_AGENT_PORT may be set for the
    // deployment flags' --agent-port in a shared environment, so the variable is not refused.
    if (flags.socket !== undefined && command.getOptionValueSource('port') === 'cli') {
      throw new ConfigError('--port is the SPOP port, and --socket (PGROUTE_AGENT_SOCKET) serves SPOP on a unix socket instead: give one of them');
    }
    const host = parseHost('--host (PGROUTE_AGENT_HOST)', flags.host);
    const hold = pauseFromFlags(flags);
    const http = metricsAddressFromFlags({ metricsAddress: flags.metricsAddress, httpPort: flags.httpPort, host }, '--metrics-address (PGROUTE_METRICS_ADDRESS)', '--http-port (PGROUTE_AGENT_HTTP_PORT)');
    const port = parsePort('--port (PGROUTE_AGENT_PORT)', flags.port);
    // Set, even empty, it is the socket to serve: never silently TCP instead.
    const socket = flags.socket === undefined ? undefined : parseSocketPath('--socket (PGROUTE_AGENT_SOCKET)', flags.socket);
    if (socket !== undefined && !existsSync(dirname(socket))) {
      throw new ConfigError(`--socket (PGROUTE_AGENT_SOCKET): the directory of ${socket} does not exist; create it, or choose a socket path in an existing directory`);
    }
    const { createAgentMetrics, startAgent } = await loadAgentRuntime();
    const metrics = createAgentMetrics();
    const table = await loadRouteTable(flags.routes).catch((err: Error) => {
      throw new ConfigError(`--routes: ${err.message}; give the routes.json that \`pgroute generate\` wrote`);
    });
    const store = new RouteStore(table);
    metrics.routeTableLoads.labels('ok').inc();
    const agent = await startAgent({
      listen: { host, port, ...(socket === undefined ? {} : { socket }) },
      http,
      store,
      log,
      metrics,
      cancelSocket: parseSocketPath('--cancel-socket (PGROUTE_AGENT_CANCEL_SOCKET)', flags.cancelSocket ?? statePaths(dirname(resolve(flags.routes))).cancelSocket),
      hold,
    });
    process.on('SIGHUP', () => {
      loadRouteTable(flags.routes).then(
        (table) => {
          store.replace(table);
          metrics.routeTableLoads.labels('ok').inc();
          log.info({ version: table.version, tenants: table.tenants.size }, 'route table reloaded');
        },
        (err: Error) => {
          metrics.routeTableLoads.labels('error').inc();
          log.error({ err: err.message }, 'route table reload failed; keeping the previous one');
        },
      );
    });
    await runUntilSignal(log, () => agent.close());
  });

/** SIGTERM (an orchestrator, a rolling restart) drains: readiness first, then the listener. */
const stopOn = (running: Running) => (signal: 'SIGINT' | 'SIGTERM') => running.stop({ drain: signal === 'SIGTERM' });

addDrainFlags(
  addDeploymentFlags(
    program
      .command('up')
      .description('run HAProxy and the agent on this machine in the foreground, following edits of the tenants file (SIGTERM drains and stops both, Ctrl-C stops them)')
      .requiredOption('--tenants <file>', 'tenants file (YAML), watched for changes'),
    'unix',
  ),
).action(async (flags: DeploymentFlags & TlsFlags & DrainFlags & { tenants: string }) => {
  const drain = drainFromFlags(flags);
  const { settings, fallbackListener, metricsAddress, claim } = await claimedDeployment(flags);
  const running = await afterClaim(claim, () => startOrExit(log, () => up({ tenantsFile: flags.tenants, settings, fallbackListener, metricsAddress, log, tls: flags, drain, claim })));
  process.exitCode = await runUntilSignal(log, stopOn(running), running.done);
});

addKubePeersFlags(addDrainFlags(addDeploymentFlags(
  addSourceFlags(
    program.command('watch').description('follow one or more tenant sources and keep HAProxy and the agent in step with them (long-running)'),
    'tenants file (YAML), for --source file',
  )
    .option('--spawn-haproxy', 'start HAProxy here (default: drive the HAProxy running on the state dir\'s sockets)', false),
  'unix',
))).action(async (flags: DeploymentFlags & TlsFlags & DrainFlags & KubePeersFlags & WatchFlags) => {
  const drain = drainFromFlags(flags);
  const checked = checkSourceFlags(flags);
  const { settings, fallbackListener, metricsAddress, claim } = await claimedDeployment(flags);
  const running = await afterClaim(claim, async () => {
    const source = await sourceFromFlags(checked, flags, fallbackListener, log);
    const replicas = await kubePeersFromFlags(flags, settings, log);
    const durableAccess = await durableAccessFromFlags(flags);
    const { runPgroute } = await loadRun();
    return startOrExit(log, () => runPgroute({
      source,
      deployment: { listeners: [fallbackListener], policy: parsePolicy(undefined, [fallbackListener]) },
      settings,
      claim,
      startRenewal: () => startRenewal(flags, settings, log),
      metricsAddress,
      spawnHaproxy: flags.spawnHaproxy,
      drain,
      ...(replicas === undefined ? {} : { replicas }),
      ...(durableAccess === undefined ? {} : { durableAccess }),
      log,
    }));
  });
  process.exitCode = await runUntilSignal(log, stopOn(running), running.done);
});

/** How long `pgroute reload` waits for the new worker's resync (a peer that does not answer delays it 5 s). */
const LEARN_WAIT_MS = 10_000;

fileCommand('reload', 'render from a tenants file, validate, and gracefully reload the HAProxy running on the state dir (one-shot)').action(async (flags: FileFlags) => {
  // What the running workers have, put back if HAProxy rejects the new files on reload, so that a
  // later start or reload reads what they run. (A generation that fails puts back what it wrote
  // itself: writeGeneration.)
  const { settings } = settingsFromFlags(flags);
  const saved = await saveFiles(generationFiles(settings, statePaths(settings.stateDir)));
  const g = await generateFromFile(flags);
  const outcome = await reloadMaster(g.paths.masterSocket).catch((err: Error) => {
    throw new Error(`${err.message} (the new files are in the state dir, for its next start)`);
  });
  if (outcome.rejected) {
    await restoreFiles(saved);
    throw new Error(`reload failed: ${outcome.detail}; the state dir's files are back to the previous configuration`);
  }
  // Whether the new configuration loaded is not known: the files stay as written.
  if (!outcome.ok) throw new Error(`reload failed: ${outcome.detail}; the new files stay in the state dir`);
  // The new worker marked once it has learned the replicated tables, as `up` and `watch` do (docs/cancel.md
  // "Across a reload"); unmarked, it records new addresses in its handover table for its first 30 s only.
  const learned = await markLearnedOnce({ masterSocket: g.paths.masterSocket, log, timeoutMs: LEARN_WAIT_MS }).catch((err: Error) => {
    log.warn({ err: err.message }, 'the new HAProxy worker could not be marked as learned; its cancel records take the slower handover path for its first 30 s');
    return undefined;
  });
  if (learned === false) log.info({ waitedMs: LEARN_WAIT_MS }, 'the new HAProxy worker has not learned the replicated tables yet; its cancel records take the slower handover path for its first 30 s');
  log.info({ detail: outcome.detail, version: g.routes.version, learned: learned === true }, 'reloaded');
});

interface WatchFlags extends SourceFlags {
  spawnHaproxy: boolean;
}

registerCertCommands(program, log);
registerTenantCommands(program, log);
registerStatusCommand(program, log);
registerPlanCommand(program, log);

/** `pgroute tenant disable`: the command a usage error points to for --help. */
function commandNamed(args: readonly string[]): string {
  const path = ['pgroute'];
  let cmd: Command = program;
  for (const a of args) {
    const sub = cmd.commands.find((c) => c.name() === a);
    if (sub === undefined) continue;
    path.push(a);
    cmd = sub;
  }
  return path.join(' ');
}

program.parseAsync(process.argv).catch((err: unknown) => exitWith(err, commandNamed(process.argv.slice(2))));
