#!/usr/bin/env node
// The pgroute command line: one entry point for operators.

import { dirname, resolve } from 'node:path';
import { Command, Option } from 'commander';
import { loadRouteTable, RouteStore, startAgent } from '../agent/src/index.js';
import {
  admissionFromFlags,
  ConfigError,
  DEFAULT_AGENT_HTTP_PORT,
  DEFAULT_AGENT_PORT,
  describeAdmission,
  describePatterns,
  describePorts,
  FileSource,
  generate,
  loadDockerSource,
  loadKubernetesSource,
  parsePolicy,
  readTenantsFile,
  reloadMaster,
  runPgroute,
  statePaths,
  targetPolicyFromFlags,
  type Generation,
  type Listener,
  type TenantSource,
} from '../generator/src/index.js';
import { EXIT, CommandFailure, exitWith } from './fail.js';
import { parseHost, parsePort, parseSocketPath } from './flag-values.js';
import { createLogger } from './logger.js';
import { reportRefused } from './report.js';
import { addDeploymentFlags, label, settingsFromFlags, type DeploymentFlags } from './settings-options.js';
import { makeStateDir } from './state-dir.js';
import { up } from './up.js';
import { registerCertCommands } from './cert.js';
import { registerStatusCommand } from './status.js';
import { registerTenantCommands } from './tenant.js';
import { prepareTls, startRenewal, type TlsFlags } from './tls.js';
import { runUntilSignal } from './signals.js';
import { addVersionFlag } from './version.js';

const log = (() => {
  try {
    return createLogger();
  } catch (err) {
    return exitWith(err);
  }
})();
// Usage errors go through the one error path (exitWith) as one line, not with the whole help.
const program = new Command('pgroute')
  .description('One public PostgreSQL port for many tenants: HAProxy routes each connection by the pgroute agent\'s verdict.')
  .exitOverride()
  .configureOutput({ outputError: () => undefined });
addVersionFlag(program);

type FileFlags = DeploymentFlags & TlsFlags & { tenants: string; strict: boolean };

/** The deployment flags checked, the state dir made and the certificate ready. */
async function deploymentFromFlags(flags: DeploymentFlags & TlsFlags): Promise<ReturnType<typeof settingsFromFlags>> {
  const parsed = settingsFromFlags(flags);
  await makeStateDir(label('--state-dir'), parsed.settings.stateDir);
  return { ...parsed, settings: await prepareTls(flags, parsed.settings, log) };
}

/** generate and reload: the tenants file, rendered and validated, with the certificate ready. */
async function generateFromFile(flags: FileFlags): Promise<Generation> {
  const { settings, fallbackListener } = await deploymentFromFlags(flags);
  const file = await readTenantsFile(flags.tenants, fallbackListener);
  const refused = file.snapshot.refused.length;
  reportRefused(log, file.snapshot.refused);
  if (refused > 0 && flags.strict) {
    throw new CommandFailure(`${refused} tenant definition${refused === 1 ? '' : 's'} in ${flags.tenants} refused (see the warnings above); nothing was written (--strict): fix the file`, EXIT.refused);
  }
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

program
  .command('agent')
  .description('run the SPOE agent alone, deciding with a routes.json written by `pgroute generate`')
  .requiredOption('--routes <file>', 'routes.json (reloaded on SIGHUP)')
  .addOption(new Option('--host <address>', 'SPOP listen address').default('127.0.0.1').env('PGROUTE_AGENT_HOST'))
  .addOption(new Option('--port <port>', 'SPOP listen port').default(String(DEFAULT_AGENT_PORT)).env('PGROUTE_AGENT_PORT'))
  .addOption(new Option('--socket <path>', 'serve SPOP on this unix socket instead of --host:--port').env('PGROUTE_AGENT_SOCKET'))
  .addOption(new Option('--http-port <port>', '/healthz and /metrics port').default(String(DEFAULT_AGENT_HTTP_PORT)).env('PGROUTE_AGENT_HTTP_PORT'))
  .addOption(
    new Option('--cancel-socket <path>', "HAProxy's cancel socket, where copies of a cancel go to the client's further backends (default: haproxy-cancel.sock beside --routes)").env(
      'PGROUTE_AGENT_CANCEL_SOCKET',
    ),
  )
  .action(async (flags: { routes: string; host: string; port: string; socket?: string; httpPort: string; cancelSocket?: string }) => {
    const store = new RouteStore(await loadRouteTable(flags.routes));
    const agent = await startAgent({
      listen: { host: parseHost('--host (PGROUTE_AGENT_HOST)', flags.host), port: parsePort('--port (PGROUTE_AGENT_PORT)', flags.port), ...(flags.socket ? { socket: parseSocketPath('--socket (PGROUTE_AGENT_SOCKET)', flags.socket) } : {}) },
      http: { host: flags.host, port: parsePort('--http-port (PGROUTE_AGENT_HTTP_PORT)', flags.httpPort) },
      store,
      log,
      cancelSocket: parseSocketPath('--cancel-socket (PGROUTE_AGENT_CANCEL_SOCKET)', flags.cancelSocket ?? statePaths(dirname(resolve(flags.routes))).cancelSocket),
    });
    process.on('SIGHUP', () => {
      loadRouteTable(flags.routes).then(
        (table) => {
          store.replace(table);
          log.info({ version: table.version, tenants: table.tenants.size }, 'route table reloaded');
        },
        (err: Error) => log.error({ err: err.message }, 'route table reload failed; keeping the previous one'),
      );
    });
    await runUntilSignal(log, () => agent.close());
  });

addDeploymentFlags(
  program
    .command('up')
    .description('run HAProxy and the agent on this machine in the foreground, following edits of the tenants file (Ctrl-C stops both)')
    .requiredOption('--tenants <file>', 'tenants file (YAML), watched for changes'),
  'unix',
).action(async (flags: DeploymentFlags & TlsFlags & { tenants: string }) => {
  const { settings, fallbackListener, agentHttpPort } = await deploymentFromFlags(flags);
  const running = await up({ tenantsFile: flags.tenants, settings, fallbackListener, agentHttpPort, log, tls: flags });
  process.exitCode = await runUntilSignal(log, () => running.stop(), running.done);
});

addDeploymentFlags(
  program
    .command('watch')
    .description('follow a tenant source and keep HAProxy and the agent in step with it (long-running)')
    .addOption(new Option('--source <source>', 'where tenants come from').choices(['file', 'docker', 'kubernetes']).default('file').env('PGROUTE_SOURCE'))
    .option('--tenants <file>', 'tenants file (YAML), for --source file')
    .addOption(new Option('--docker-network <name>', 'Docker network whose address is used (default: the container\'s pgroute.network label, else its first network)').env('PGROUTE_DOCKER_NETWORK'))
    .addOption(new Option('--docker-constraint <constraint...>', 'besides the containers `tenant create` made, containers that may declare tenants: compose-project=NAME, network=NAME or label=KEY=VALUE (repeatable, comma-separated; any one admits)').env('PGROUTE_DOCKER_CONSTRAINTS'))
    .option('--docker-expose-by-default', 'every container may declare tenants (PGROUTE_DOCKER_EXPOSE_BY_DEFAULT=true); see docs/docker-ownership.md')
    .addOption(new Option('--namespace <ns...>', 'Kubernetes namespaces to watch (default: all)').env('PGROUTE_NAMESPACES'))
    .addOption(new Option('--kube-address <mode>', 'address of a Kubernetes Service').choices(['dns', 'cluster-ip']).default('dns'))
    .addOption(new Option('--kube-selector <selector>', 'extra Kubernetes label selector'))
    .addOption(
      new Option('--kube-ownership <mode>', 'who may claim a Kubernetes tenant id: first-claim (the namespace of the oldest Service claim) or declared (only the namespace whose Namespace annotation pgroute.io/tenants declares it; needs list+watch on namespaces)')
        .choices(['first-claim', 'declared'])
        .default('first-claim')
        .env('PGROUTE_KUBE_OWNERSHIP'),
    )
    .addOption(new Option('--kube-allow-external-names <patterns...>', 'ExternalName targets a Service may route to: names, IP addresses, *.db.example.com (repeatable, comma-separated; default none: every ExternalName Service is refused)').env('PGROUTE_KUBE_ALLOW_EXTERNAL_NAMES'))
    .addOption(new Option('--kube-allowed-ports <ports...>', 'ports a Kubernetes tenant may target: ports and ranges (repeatable, comma-separated; default 5432-5439,6432)').env('PGROUTE_KUBE_ALLOWED_PORTS'))
    .option('--spawn-haproxy', 'start HAProxy here (default: drive the HAProxy running on the state dir\'s sockets)', false),
  'unix',
).action(async (flags: DeploymentFlags & TlsFlags & WatchFlags) => {
  const { settings, fallbackListener, agentHttpPort } = await deploymentFromFlags(flags);
  const source = await sourceFromFlags(flags, fallbackListener);
  const running = await runPgroute({
    source,
    deployment: { listeners: [fallbackListener], policy: parsePolicy(undefined, [fallbackListener]) },
    settings,
    startRenewal: () => startRenewal(flags, settings, log),
    agentHttpPort,
    spawnHaproxy: flags.spawnHaproxy,
    log,
  });
  process.exitCode = await runUntilSignal(log, () => running.stop(), running.done);
});

fileCommand('reload', 'render from a tenants file, validate, and gracefully reload the HAProxy running on the state dir (one-shot)').action(async (flags: FileFlags) => {
  const g = await generateFromFile(flags);
  const outcome = await reloadMaster(g.paths.masterSocket);
  if (!outcome.ok) throw new Error(`reload failed: ${outcome.detail}`);
  log.info({ detail: outcome.detail, version: g.routes.version }, 'reloaded');
});

interface WatchFlags {
  source: 'file' | 'docker' | 'kubernetes';
  tenants?: string;
  dockerNetwork?: string;
  dockerConstraint?: string[] | string;
  dockerExposeByDefault?: boolean;
  stateDir: string;
  namespace?: string[] | string;
  kubeAddress: 'dns' | 'cluster-ip';
  kubeSelector?: string;
  kubeOwnership: 'first-claim' | 'declared';
  kubeAllowExternalNames?: string[] | string;
  kubeAllowedPorts?: string[] | string;
  spawnHaproxy: boolean;
}

async function sourceFromFlags(flags: WatchFlags, fallbackListener: Listener): Promise<TenantSource> {
  switch (flags.source) {
    case 'file':
      if (flags.tenants === undefined) throw new ConfigError('--source file needs --tenants <file>');
      return new FileSource(flags.tenants, fallbackListener, log);
    case 'docker': {
      const { DockerSource } = await loadDockerSource();
      const admission = admissionFromFlags(flags.dockerConstraint, flags.dockerExposeByDefault, process.env.PGROUTE_DOCKER_EXPOSE_BY_DEFAULT);
      log.info({ admitted: describeAdmission(admission) }, 'docker containers that may declare tenants');
      return new DockerSource({ log, admission, stateDir: flags.stateDir, ...(flags.dockerNetwork === undefined ? {} : { network: flags.dockerNetwork }) });
    }
    case 'kubernetes': {
      const { KubernetesSource } = await loadKubernetesSource();
      const namespaces = typeof flags.namespace === 'string' ? flags.namespace.split(/[\s,]+/).filter(Boolean) : (flags.namespace ?? []);
      const policy = targetPolicyFromFlags(flags.kubeAllowExternalNames, flags.kubeAllowedPorts);
      log.info({ allowedPorts: describePorts(policy.ports), allowedExternalNames: describePatterns(policy.externalNames) || 'none' }, 'kubernetes tenant targets limited');
      return new KubernetesSource({ log, namespaces, address: flags.kubeAddress, ownership: flags.kubeOwnership, policy, ...(flags.kubeSelector ? { labelSelector: flags.kubeSelector } : {}) });
    }
  }
}

registerCertCommands(program, log);
registerTenantCommands(program, log);
registerStatusCommand(program, log);

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
