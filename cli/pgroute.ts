#!/usr/bin/env node
// The pgroute command line: one entry point for operators.

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
  targetPolicyFromFlags,
  type Generation,
  type Listener,
  type TenantSource,
} from '../generator/src/index.js';
import { createLogger } from './logger.js';
import { reportRefused } from './report.js';
import { addDeploymentFlags, parsePort, parseSocketPath, settingsFromFlags, type DeploymentFlags } from './settings-options.js';
import { up } from './up.js';
import { registerCertCommands } from './cert.js';
import { registerStatusCommand } from './status.js';
import { registerTenantCommands } from './tenant.js';
import { prepareTls, startRenewal, type TlsFlags } from './tls.js';
import { runUntilSignal } from './signals.js';
import { addVersionFlag } from './version.js';

const log = createLogger();
const program = new Command('pgroute')
  .description('One public PostgreSQL port for many tenants: HAProxy routes each connection by the pgroute agent\'s verdict.')
  .showHelpAfterError();
addVersionFlag(program);

/** generate and reload: the tenants file, rendered and validated, with the certificate ready. */
async function generateFromFile(flags: DeploymentFlags & TlsFlags & { tenants: string }): Promise<Generation> {
  const { settings: base, fallbackListener } = settingsFromFlags(flags);
  const settings = await prepareTls(flags, base, log);
  const file = await readTenantsFile(flags.tenants, fallbackListener);
  reportRefused(log, file.snapshot.refused);
  const g = await generate(file.deployment, file.snapshot, settings);
  if (g.checkWarnings.length > 0) log.warn({ haproxy: g.checkWarnings }, 'haproxy -c accepted the configuration with warnings');
  return g;
}

addDeploymentFlags(
  program
    .command('generate')
    .description('render haproxy.cfg, spoe.conf and routes.json from a tenants file and validate them with haproxy -c')
    .requiredOption('--tenants <file>', 'tenants file (YAML)'),
).action(async (flags: DeploymentFlags & TlsFlags & { tenants: string }) => {
  const g = await generateFromFile(flags);
  log.info({ haproxyConfig: g.paths.haproxyConfig, routes: g.paths.routes, version: g.routes.version, changed: g.configChanged || g.routesChanged }, 'generated and validated');
});

program
  .command('agent')
  .description('run the SPOE agent alone, deciding with a routes.json written by `pgroute generate`')
  .requiredOption('--routes <file>', 'routes.json (reloaded on SIGHUP)')
  .addOption(new Option('--host <address>', 'SPOP listen address').default('127.0.0.1').env('PGROUTE_AGENT_HOST'))
  .addOption(new Option('--port <port>', 'SPOP listen port').default(String(DEFAULT_AGENT_PORT)).env('PGROUTE_AGENT_PORT'))
  .addOption(new Option('--socket <path>', 'serve SPOP on this unix socket instead of --host:--port').env('PGROUTE_AGENT_SOCKET'))
  .addOption(new Option('--http-port <port>', '/healthz and /metrics port').default(String(DEFAULT_AGENT_HTTP_PORT)).env('PGROUTE_AGENT_HTTP_PORT'))
  .action(async (flags: { routes: string; host: string; port: string; socket?: string; httpPort: string }) => {
    const store = new RouteStore(await loadRouteTable(flags.routes));
    const agent = await startAgent({
      listen: { host: flags.host, port: parsePort('--port', flags.port), ...(flags.socket ? { socket: parseSocketPath('--socket', flags.socket) } : {}) },
      http: { host: flags.host, port: parsePort('--http-port', flags.httpPort) },
      store,
      log,
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
).action(async (flags: DeploymentFlags & TlsFlags & { tenants: string }) => {
  const { settings: base, fallbackListener, agentHttpPort } = settingsFromFlags(flags);
  const settings = await prepareTls(flags, base, log);
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
).action(async (flags: DeploymentFlags & TlsFlags & WatchFlags) => {
  const { settings: base, fallbackListener, agentHttpPort } = settingsFromFlags(flags);
  const settings = await prepareTls(flags, base, log);
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

addDeploymentFlags(
  program
    .command('reload')
    .description('render from a tenants file, validate, and gracefully reload the HAProxy running on the state dir (one-shot)')
    .requiredOption('--tenants <file>', 'tenants file (YAML)'),
).action(async (flags: DeploymentFlags & TlsFlags & { tenants: string }) => {
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

program.parseAsync(process.argv).catch((err: unknown) => {
  if (err instanceof ConfigError) {
    log.error(err.message);
    process.stderr.write(`pgroute: ${err.message}\n`);
    process.exit(2);
  }
  log.fatal({ err }, 'pgroute failed');
  process.stderr.write(`pgroute: ${(err as Error).message}\n`);
  process.exit(1);
});
