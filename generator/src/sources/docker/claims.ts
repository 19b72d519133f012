// Running Docker containers (as `GET /containers/json` lists them) -> tenant claims. Pure.

import type { RefusedTenant } from '../../model.js';
import { labelBoolean, labelNumber, readLabels, type Claim } from '../labels.js';
import { quote } from '../../validate.js';

/** Container label naming the Docker network whose IP pgroute should use (when it has several). */
export const NETWORK_LABEL = 'pgroute.network';
export const DEFAULT_PG_PORT = 5432;

/** The fields of a container list entry this source reads (a subset of Dockerode.ContainerInfo). */
export interface ContainerSummary {
  readonly Id: string;
  readonly Names?: readonly string[] | null;
  readonly Created: number;
  readonly Labels?: Readonly<Record<string, string>> | null;
  readonly State?: string;
  readonly NetworkSettings?: { readonly Networks?: Readonly<Record<string, { readonly IPAddress?: string } | undefined>> | null } | null;
}

export interface ContainerClaims {
  readonly claims: Claim[];
  readonly refused: RefusedTenant[];
}

export interface ClaimOptions {
  /** Network whose IP to use; default: the container's `pgroute.network` label, else its first network with an IP. */
  readonly network?: string | undefined;
}

/** 'docker container acme-db (3f2a9c0d1e2b)' */
export function containerWhere(c: ContainerSummary): string {
  const name = (c.Names?.[0] ?? '').replace(/^\//, '') || c.Id.slice(0, 12);
  return `docker container ${name} (${c.Id.slice(0, 12)})`;
}

/**
 * The address of a container on the chosen network, or why there is none. Networks are taken in
 * the order the Engine lists them (by name), so "first" is deterministic.
 */
export function containerAddress(c: ContainerSummary, opts: ClaimOptions = {}): { host: string } | { problem: string } {
  const networks = Object.entries(c.NetworkSettings?.Networks ?? {});
  const withIp = networks.filter(([, n]) => n?.IPAddress !== undefined && n.IPAddress !== '');
  const labelled = c.Labels?.[NETWORK_LABEL];
  const wanted = opts.network ?? (labelled === undefined || labelled === '' ? undefined : labelled);
  const names = networks.map(([name]) => name).join(', ') || 'none';
  if (wanted !== undefined) {
    const how = opts.network !== undefined ? 'pgroute uses Docker network' : `label ${NETWORK_LABEL} names network`;
    const hit = networks.find(([name]) => name === wanted);
    if (hit === undefined) return { problem: `${how} ${quote(wanted)}, but the container is not attached to it (networks: ${names}); attach it with docker network connect` };
    const ip = hit[1]?.IPAddress;
    if (ip === undefined || ip === '') return { problem: `${how} ${quote(wanted)}, but the container has no IP address on it` };
    return { host: ip };
  }
  const first = withIp[0];
  if (first === undefined) {
    return { problem: `the container has no IP address on any Docker network (networks: ${names}); host or none network mode cannot be routed to, attach it to a bridge network` };
  }
  return { host: first[1]?.IPAddress as string };
}

/**
 * Claims of running containers: one per container carrying pgroute or xdatabase-proxy labels.
 * Containers whose labels are refused, or that have no address, become refused entries. Containers
 * that are not running are ignored (the list should hold running ones only).
 */
export function containerClaims(containers: readonly ContainerSummary[], opts: ClaimOptions = {}): ContainerClaims {
  const claims: Claim[] = [];
  const refused: RefusedTenant[] = [];
  for (const c of containers) {
    if (c.State !== undefined && c.State !== 'running') continue;
    const labels = c.Labels ?? {};
    const reading = readLabels(labels);
    if (reading.kind === 'none') continue;
    const where = containerWhere(c);
    if (reading.kind === 'refused') {
      refused.push(reading.tenant === undefined ? { where, reason: reading.reason } : { where, id: reading.tenant, reason: reading.reason });
      continue;
    }
    const address = containerAddress(c, opts);
    if ('problem' in address) {
      refused.push({ where, id: reading.tenant, reason: address.problem });
      continue;
    }
    const claim: Claim = {
      tenant: reading.tenant,
      target: reading.target,
      host: address.host,
      port: reading.port === undefined ? DEFAULT_PG_PORT : labelNumber(reading.port),
      enabled: reading.enabled === undefined ? undefined : labelBoolean(reading.enabled),
      ...(reading.maxconn === undefined ? {} : { maxconn: labelNumber(reading.maxconn) }),
      ...(reading.allow === undefined ? {} : { allow: reading.allow }),
      ...(reading.limits === undefined ? {} : { limits: reading.limits }),
      where,
      owner: '',
      createdAt: c.Created * 1000,
    };
    claims.push(claim);
  }
  return { claims, refused };
}
