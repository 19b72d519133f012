// What `pgroute tenant create` asks Docker for: a PostgreSQL container per tenant, its named data
// volume, the private network, labels the Docker source reads, limits, and where the container finds
// its password (POSTGRES_PASSWORD_FILE; the file itself is uploaded by cli/tenant.ts, see secret.ts:
// the password is never part of the container's configuration).
// Pure: no Docker calls here (cli/tenant.ts does them), so every field is unit-tested.

import { join } from 'node:path';
import { ConfigError } from '../errors.js';
import { LABEL } from '../sources/labels.js';
import { NETWORK_LABEL } from '../sources/docker/claims.js';
import { quote, tenantIdProblem } from '../validate.js';
import { PASSWORD_FILE } from './secret.js';
import { accessStateOf, type AccessFile, type AccessState } from '../access.js';

/** Marks what pgroute created; `tenant list/show/delete` only touch containers carrying it. */
export const MANAGED_LABEL = 'pgroute.managed';
export const DEFAULT_TENANT_IMAGE = 'postgres:15';
export const DEFAULT_TENANT_NETWORK = 'pgroute-tenants';
export const DEFAULT_TENANT_CPUS = '1';
export const DEFAULT_TENANT_MEMORY = '512m';
export const DEFAULT_TENANT_PORT = 5432;
/** Where the data volume is mounted: PGDATA of the official image and of pgroute's test image. */
export const DATA_DIR = '/var/lib/postgresql/data';

export function containerName(id: string): string {
  return `pgroute-tenant-${id}`;
}

export function volumeName(id: string): string {
  return `pgroute-tenant-${id}-data`;
}

/** <state-dir>/tenants: mode 0700. */
export function passwordDir(stateDir: string): string {
  return join(stateDir, 'tenants');
}

/** <state-dir>/tenants/<id>.password: mode 0600, the password of the user postgres. */
export function passwordPath(stateDir: string, id: string): string {
  return join(passwordDir(stateDir), `${id}.password`);
}

/** Throws a ConfigError naming the rule when the id is not a valid tenant id. */
export function checkTenantId(id: string): string {
  const problem = tenantIdProblem(id);
  if (problem !== undefined) throw new ConfigError(problem);
  return id;
}

/** Docker's --cpus: a positive decimal (e.g. 1, 0.5, 2.25) → NanoCpus. */
export function parseCpus(value: string): number {
  if (!/^\d+(\.\d{1,9})?$/.test(value)) throw new ConfigError(`--cpus must be a positive number like 1 or 0.5, got ${quote(value)}`);
  const nano = Math.round(Number(value) * 1e9);
  if (nano < 10_000_000) throw new ConfigError(`--cpus must be at least 0.01, got ${quote(value)}`);
  return nano;
}

const UNITS: Record<string, number> = { '': 1, b: 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 };

/** Docker's --memory: a number with an optional unit b, k, m, g (binary multiples) → bytes; at least 6 MiB (Docker's floor). */
export function parseMemory(value: string): number {
  const m = /^(\d+)([bkmg]?)$/i.exec(value.trim());
  if (m === null) throw new ConfigError(`--memory must be a size like 512m or 1g, got ${quote(value)}`);
  const bytes = Number(m[1]) * (UNITS[(m[2] ?? '').toLowerCase()] as number);
  if (bytes < 6 * 1024 ** 2) throw new ConfigError(`--memory must be at least 6m (Docker's minimum), got ${quote(value)}`);
  return bytes;
}

/** Docker network names: what dockerd accepts, and nothing a label or log line could be confused by. */
export function checkNetworkName(name: string): string {
  if (!/^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$/.test(name)) throw new ConfigError(`--network must be a Docker network name (letters, digits, "_", ".", "-"), got ${quote(name)}`);
  return name;
}

export function checkImageName(image: string): string {
  if (!/^[a-zA-Z0-9][a-zA-Z0-9_.:/@-]{0,254}$/.test(image)) throw new ConfigError(`--image must be an image reference like postgres:15, got ${quote(image)}`);
  return image;
}

export interface TenantContainerRequest {
  readonly id: string;
  readonly image: string;
  readonly network: string;
  /** NanoCpus. */
  readonly nanoCpus: number;
  /** Bytes. */
  readonly memory: number;
  /** Port PostgreSQL listens on inside the container (PGPORT; label pgroute.port). */
  readonly port: number;
}

/** A structural subset of Dockerode's ContainerCreateOptions. */
export interface ContainerCreatePlan {
  readonly name: string;
  readonly Image: string;
  readonly Labels: Record<string, string>;
  readonly Env: string[];
  readonly StopSignal: string;
  readonly ExposedPorts: Record<string, Record<string, never>>;
  readonly HostConfig: {
    readonly NetworkMode: string;
    readonly NanoCpus: number;
    readonly Memory: number;
    readonly MemorySwap: number;
    readonly Mounts: { Type: 'volume'; Source: string; Target: string }[];
    readonly RestartPolicy: { Name: string };
  };
  readonly NetworkingConfig: { EndpointsConfig: Record<string, { Aliases: string[] }> };
}

export interface TenantPlan {
  readonly container: ContainerCreatePlan;
  readonly volume: { readonly Name: string; readonly Labels: Record<string, string> };
  readonly network: { readonly Name: string; readonly Driver: 'bridge'; readonly Labels: Record<string, string> };
}

/** The labels that make the Docker source route the container, plus the managed marker. */
export function tenantLabels(id: string, network: string, port: number): Record<string, string> {
  return { [LABEL.tenant]: id, [NETWORK_LABEL]: network, [LABEL.port]: String(port), [MANAGED_LABEL]: 'true' };
}

export function planTenant(req: TenantContainerRequest): TenantPlan {
  checkTenantId(req.id);
  checkNetworkName(req.network);
  checkImageName(req.image);
  if (!Number.isInteger(req.port) || req.port < 1 || req.port > 65535) throw new ConfigError(`--port must be a port number from 1 to 65535, got ${req.port}`);
  const volume = volumeName(req.id);
  return {
    container: {
      name: containerName(req.id),
      Image: req.image,
      Labels: tenantLabels(req.id, req.network, req.port),
      // The official image and pgroute's test image both read the password from POSTGRES_PASSWORD_FILE
      // at first start (initdb) and then require it (scram-sha-256) for connections over the network.
      // The file is uploaded into the created container before it starts (secret.ts): no password here.
      Env: [`POSTGRES_PASSWORD_FILE=${PASSWORD_FILE}`, `PGPORT=${req.port}`, `CLUSTER_NAME=${req.id}`, `PGDATA=${DATA_DIR}`],
      StopSignal: 'SIGINT', // PostgreSQL's fast shutdown
      ExposedPorts: { [`${req.port}/tcp`]: {} },
      HostConfig: {
        NetworkMode: req.network,
        NanoCpus: req.nanoCpus,
        Memory: req.memory,
        MemorySwap: req.memory, // no swap beyond the memory limit
        Mounts: [{ Type: 'volume', Source: volume, Target: DATA_DIR }],
        RestartPolicy: { Name: 'unless-stopped' },
      },
      NetworkingConfig: { EndpointsConfig: { [req.network]: { Aliases: [req.id] } } },
    },
    volume: { Name: volume, Labels: { [LABEL.tenant]: req.id, [MANAGED_LABEL]: 'true' } },
    network: { Name: req.network, Driver: 'bridge', Labels: { [MANAGED_LABEL]: 'true' } },
  };
}

/** A structural subset of Dockerode's ContainerInfo (list) — what `tenant list` shows. */
export interface ManagedContainerInfo {
  readonly Id: string;
  readonly Names: readonly string[];
  readonly Image: string;
  readonly State: string;
  readonly Status?: string;
  readonly Labels: Readonly<Record<string, string>>;
  readonly NetworkSettings?: { readonly Networks?: Readonly<Record<string, { readonly IPAddress?: string }>> };
}

export interface TenantLimits {
  readonly cpus?: number;
  readonly memory?: string;
}

export interface ManagedTenant {
  readonly id: string;
  readonly container: string;
  readonly state: string;
  /** false when access.json disables it (`pgroute tenant disable`); a paused tenant is not disabled. */
  readonly enabled: boolean;
  /** The operator's switch in access.json: enabled, disabled, or paused (`pgroute tenant pause`: new connections held). */
  readonly access: AccessState;
  /** ip:port on the tenant network; '' when the container has no address (stopped). */
  readonly address: string;
  readonly network: string;
  readonly image: string;
  readonly limits: TenantLimits;
}

/** Formats bytes like Docker's flags: 512m, 1g, 1536m. */
export function formatMemory(bytes: number): string {
  for (const [unit, size] of [['g', 1024 ** 3], ['m', 1024 ** 2], ['k', 1024]] as const) if (bytes >= size && bytes % size === 0) return `${bytes / size}${unit}`;
  return `${bytes}b`;
}

/** One managed tenant from a container listing (limits come from inspect: pass them in). */
export function describeManaged(info: ManagedContainerInfo, switches: AccessFile, limits: { NanoCpus?: number; Memory?: number } = {}): ManagedTenant | undefined {
  const id = info.Labels[LABEL.tenant];
  if (id === undefined || info.Labels[MANAGED_LABEL] !== 'true') return undefined;
  const network = info.Labels[NETWORK_LABEL] ?? '';
  const port = info.Labels[LABEL.port] ?? String(DEFAULT_TENANT_PORT);
  const ip = info.NetworkSettings?.Networks?.[network]?.IPAddress ?? '';
  const access = accessStateOf(switches, id);
  const l: { cpus?: number; memory?: string } = {};
  if (limits.NanoCpus) l.cpus = limits.NanoCpus / 1e9;
  if (limits.Memory) l.memory = formatMemory(limits.Memory);
  return {
    id,
    container: (info.Names[0] ?? '').replace(/^\//, ''),
    state: info.State,
    enabled: access !== 'disabled',
    access,
    address: ip === '' ? '' : `${ip}:${port}`,
    network,
    image: info.Image,
    limits: l,
  };
}
