// Where tenants come from, for `watch` and `plan`: the --source flags and the source(s) they make.
// Several sources at once (`--source file,kubernetes`) are merged (generator/src/sources/merged.ts).

import { Option, type Command } from 'commander';
import type { Logger } from 'pino';
import {
  admissionFromFlags,
  ConfigError,
  describeAdmission,
  describePatterns,
  describePorts,
  FileSource,
  loadDockerSource,
  loadKubernetesSource,
  MergedSource,
  targetPolicyFromFlags,
  type Listener,
  type TenantSource,
} from '../generator/src/index.js';
import { flagLabel, parseDurationMs } from './flag-values.js';

const SOURCES = ['file', 'docker', 'kubernetes'] as const;
type SourceName = (typeof SOURCES)[number];

export interface SourceFlags {
  source: string[] | string;
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
  kubeRequestTimeout: string;
}

export function addSourceFlags(cmd: Command, tenantsHelp: string): Command {
  return cmd
    .addOption(new Option('--source <sources...>', 'where tenants come from: file, docker, kubernetes, or several (repeatable, comma-separated; a tenant id two sources define is refused in both)').default(['file']).env('PGROUTE_SOURCE'))
    .option('--tenants <file>', tenantsHelp)
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
    .addOption(new Option('--kube-request-timeout <duration>', 'a Kubernetes list unanswered this long counts as failed and is retried with backoff (while the first is awaited, a warning repeats every 10 s and /readyz answers 503)').default('30s').env('PGROUTE_KUBE_REQUEST_TIMEOUT'))
    .addOption(new Option('--kube-allowed-ports <ports...>', 'ports a Kubernetes tenant may target: ports and ranges (repeatable, comma-separated; default 5432-5439,6432)').env('PGROUTE_KUBE_ALLOWED_PORTS'));
}

/** The --source names: repeatable and comma-separated, each known and named once. */
export function sourceNames(value: string[] | string): SourceName[] {
  const names = (typeof value === 'string' ? [value] : value).flatMap((v) => v.split(/[\s,]+/)).filter(Boolean);
  const out: SourceName[] = [];
  for (const n of names) {
    if (!(SOURCES as readonly string[]).includes(n)) throw new ConfigError(`--source (PGROUTE_SOURCE): unknown source ${JSON.stringify(n)} (known: ${SOURCES.join(', ')})`);
    if (out.includes(n as SourceName)) throw new ConfigError(`--source (PGROUTE_SOURCE): ${n} is named twice`);
    out.push(n as SourceName);
  }
  if (out.length === 0) throw new ConfigError(`--source (PGROUTE_SOURCE): name at least one of ${SOURCES.join(', ')}`);
  return out;
}

/**
 * How a command uses its sources. `watch` waits for a Docker engine that does not answer yet, as for
 * the Kubernetes API server; `plan` reads one view, so it gives up on either after this long.
 */
export interface SourceUse {
  readonly firstViewTimeoutMs?: number;
}

/** The source flags read and checked: what each named source is built from. */
export interface CheckedSources {
  readonly names: readonly SourceName[];
  readonly admission: ReturnType<typeof admissionFromFlags>;
  readonly policy: ReturnType<typeof targetPolicyFromFlags>;
  readonly listDeadlineMs: number;
  readonly namespaces: readonly string[];
}

/**
 * Every source flag and variable checked, whichever sources are named (a mistyped value is refused
 * even where its source is not used yet, not when it is turned on), before anything is written or
 * started; a --tenants that no named source reads is refused, as it would be ignored.
 */
export function checkSourceFlags(flags: SourceFlags): CheckedSources {
  const names = sourceNames(flags.source);
  if (names.includes('file') && flags.tenants === undefined) throw new ConfigError('--source file needs --tenants <file>');
  if (flags.tenants !== undefined && !names.includes('file')) {
    throw new ConfigError(`--tenants is read by --source file only, and --source (PGROUTE_SOURCE) is ${names.join(',')}: add file to --source, or drop --tenants`);
  }
  return {
    names,
    admission: admissionFromFlags(flags.dockerConstraint, flags.dockerExposeByDefault, process.env.PGROUTE_DOCKER_EXPOSE_BY_DEFAULT),
    policy: targetPolicyFromFlags(flags.kubeAllowExternalNames, flags.kubeAllowedPorts),
    listDeadlineMs: parseDurationMs(flagLabel('--kube-request-timeout', 'PGROUTE_KUBE_REQUEST_TIMEOUT'), flags.kubeRequestTimeout, 100),
    namespaces: typeof flags.namespace === 'string' ? flags.namespace.split(/[\s,]+/).filter(Boolean) : (flags.namespace ?? []),
  };
}

async function oneSource(name: SourceName, checked: CheckedSources, flags: SourceFlags, fallbackListener: Listener, log: Logger, use: SourceUse): Promise<TenantSource> {
  switch (name) {
    case 'file':
      return new FileSource(flags.tenants as string, fallbackListener, log);
    case 'docker': {
      const { DockerSource } = await loadDockerSource();
      const { admission } = checked;
      log.info({ admitted: describeAdmission(admission) }, 'docker containers that may declare tenants');
      return new DockerSource({
        log,
        admission,
        stateDir: flags.stateDir,
        ...(flags.dockerNetwork === undefined ? {} : { network: flags.dockerNetwork }),
        ...(use.firstViewTimeoutMs === undefined ? {} : { firstViewTimeoutMs: use.firstViewTimeoutMs }),
      });
    }
    case 'kubernetes': {
      const { KubernetesSource } = await loadKubernetesSource();
      const { policy, listDeadlineMs, namespaces } = checked;
      log.info({ allowedPorts: describePorts(policy.ports), allowedExternalNames: describePatterns(policy.externalNames) || 'none' }, 'kubernetes tenant targets limited');
      return new KubernetesSource({ log, namespaces: [...namespaces], address: flags.kubeAddress, ownership: flags.kubeOwnership, policy, listDeadlineMs, ...(use.firstViewTimeoutMs === undefined ? {} : { firstViewTimeoutMs: use.firstViewTimeoutMs }), ...(flags.kubeSelector ? { labelSelector: flags.kubeSelector } : {}) });
    }
  }
}

/** The source the checked flags name; several are merged into one. */
export async function sourceFromFlags(checked: CheckedSources, flags: SourceFlags, fallbackListener: Listener, log: Logger, use: SourceUse = {}): Promise<TenantSource> {
  const sources: TenantSource[] = [];
  for (const n of checked.names) sources.push(await oneSource(n, checked, flags, fallbackListener, log, use));
  const [only] = sources;
  return sources.length === 1 && only !== undefined ? only : new MergedSource(sources);
}
