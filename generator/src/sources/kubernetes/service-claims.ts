// What one Kubernetes Service declares, read through the shared label vocabularies (labels.ts), and
// the view of a set of Services (and, with declared ownership, of Namespaces). Pure: no API calls
// here.

import type { RefusedTenant } from '../../model.js';
import { ALLOW_ANNOTATION, type Claim, labelBoolean, labelNumber, LABEL, mergeClaims, readLabels } from '../labels.js';
import type { SourceView } from '../source.js';
import { acceptDeclared, type NamespaceLike, readDeclarations } from './ownership.js';
import { DEFAULT_TARGET_POLICY, externalNameProblem, portProblem, type TargetPolicy } from './target-policy.js';

/**
 * The part of a Service pgroute reads. Structural on purpose: objects from a list are deserialized
 * by client-node (creationTimestamp is a Date) while objects from a watch are raw JSON (a string).
 */
export interface ServiceLike {
  readonly metadata?: {
    readonly name?: string;
    readonly namespace?: string;
    readonly labels?: Readonly<Record<string, string>>;
    readonly annotations?: Readonly<Record<string, string>>;
    readonly creationTimestamp?: Date | string;
  };
  readonly spec?: {
    readonly type?: string;
    readonly clusterIP?: string;
    readonly externalName?: string;
    readonly ports?: readonly { readonly name?: string; readonly port: number; readonly targetPort?: number | string }[];
  };
}

export type AddressMode = 'dns' | 'cluster-ip';

export interface ClaimOptions {
  /** 'dns': <svc>.<ns>.svc.<clusterDomain>; 'cluster-ip': the Service's virtual IP. */
  readonly address: AddressMode;
  readonly clusterDomain: string;
  /** Which ExternalName targets and ports a Service may use (target-policy.ts); default: DEFAULT_TARGET_POLICY. */
  readonly policy?: TargetPolicy;
}

/** Port names taken as "the PostgreSQL port" of a Service with several ports. */
export const POSTGRES_PORT_NAMES: readonly string[] = ['postgres', 'postgresql', 'pg'];

export type ServiceReading = { kind: 'none' } | { kind: 'claim'; claim: Claim } | { kind: 'refused'; refused: RefusedTenant };

export function serviceWhere(svc: ServiceLike): string {
  return `kubernetes service ${serviceName(svc)}`;
}

function serviceName(svc: ServiceLike): string {
  return `${svc.metadata?.namespace ?? ''}/${svc.metadata?.name ?? ''}`;
}

/** Reads one Service: not a tenant at all, a claim, or a refusal with its reason. */
export function readService(svc: ServiceLike, options: ClaimOptions): ServiceReading {
  const labels = readLabels(svc.metadata?.labels ?? {});
  if (labels.kind === 'none') return { kind: 'none' };
  const where = serviceWhere(svc);
  const refuse = (reason: string, id: string | undefined = labels.tenant): ServiceReading => ({
    kind: 'refused',
    refused: id === undefined ? { where, reason } : { where, id, reason },
  });
  if (labels.kind === 'refused') return refuse(labels.reason);
  const namespace = svc.metadata?.namespace ?? '';
  const createdAt = timeOf(svc.metadata?.creationTimestamp);
  if (createdAt === undefined) return refuse('the Service has no valid metadata.creationTimestamp, so its claim cannot be ordered against others');
  const host = hostOf(svc, options);
  if (typeof host !== 'string') return refuse(host.problem);
  let port: unknown;
  if (labels.port !== undefined) {
    port = labelNumber(labels.port);
  } else {
    const chosen = portOf(svc);
    if (typeof chosen !== 'number') return refuse(chosen.problem);
    port = chosen;
  }
  // A port that is not a number is left to validation, which refuses it with its own reason.
  if (typeof port === 'number') {
    const from = labels.port !== undefined ? 'from its port label' : svc.spec?.clusterIP === 'None' && svc.spec.type !== 'ExternalName' ? "its port's targetPort" : 'its port';
    const problem = portProblem(serviceName(svc), port, from, (options.policy ?? DEFAULT_TARGET_POLICY).ports);
    if (problem !== undefined) return refuse(problem);
  }
  const claim: Claim = {
    tenant: labels.tenant,
    target: labels.target,
    host,
    port,
    enabled: labelBoolean(labels.enabled),
    ...(labels.maxconn !== undefined ? { maxconn: labelNumber(labels.maxconn) } : {}),
    // Label values cannot hold '/' or ',': a Service's networks are an annotation.
    ...(svc.metadata?.annotations?.[ALLOW_ANNOTATION] !== undefined ? { allow: svc.metadata.annotations[ALLOW_ANNOTATION] } : {}),
    ...(labels.limits !== undefined ? { limits: labels.limits } : {}),
    where,
    owner: namespace,
    createdAt,
  };
  return { kind: 'claim', claim };
}

/**
 * Who may claim a tenant id (see ownership.ts): 'first-claim', the namespace of the oldest claim;
 * 'declared', the one Namespace whose pgroute.io/tenants annotation declares it.
 */
export type Ownership = { readonly mode: 'first-claim' } | { readonly mode: 'declared'; readonly namespaces: Iterable<NamespaceLike> };

export const FIRST_CLAIM: Ownership = { mode: 'first-claim' };

/**
 * The complete view of these Services: every claim merged, every refusal with its reason. A pure
 * function of its arguments, whatever their order, so replicas that see the same objects agree.
 */
export function viewOfServices(services: Iterable<ServiceLike>, options: ClaimOptions, ownership: Ownership = FIRST_CLAIM): SourceView {
  const claims: Claim[] = [];
  const refused: RefusedTenant[] = [];
  for (const svc of services) {
    const r = readService(svc, options);
    if (r.kind === 'claim') claims.push(r.claim);
    else if (r.kind === 'refused') refused.push(r.refused);
  }
  refused.sort((a, b) => (a.where < b.where ? -1 : a.where > b.where ? 1 : 0));
  if (ownership.mode === 'first-claim') return mergeClaims(claims, refused);
  const declared = readDeclarations(ownership.namespaces);
  const { accepted, refused: notDeclared } = acceptDeclared(claims, declared.declarations);
  // Every accepted claim of a tenant comes from the one namespace declaring it, so mergeClaims'
  // oldest-owner rule never refuses anything here; it still merges targets and refuses duplicates.
  return mergeClaims(accepted, [...refused, ...declared.refused, ...notDeclared]);
}

function hostOf(svc: ServiceLike, options: ClaimOptions): string | { problem: string } {
  const spec = svc.spec ?? {};
  if (spec.type === 'ExternalName') {
    if (!spec.externalName) return { problem: 'the ExternalName Service has no spec.externalName' };
    // Checked before anything else is read from it: an ExternalName can point anywhere.
    const problem = externalNameProblem(serviceName(svc), spec.externalName, (options.policy ?? DEFAULT_TARGET_POLICY).externalNames);
    if (problem !== undefined) return { problem };
    // A trailing dot (fully qualified) is legal in Kubernetes; HAProxy wants the plain name.
    return spec.externalName.replace(/\.$/, '');
  }
  const ip = spec.clusterIP;
  // Headless Services (clusterIP None) have no virtual IP: only their DNS name reaches the pods.
  if (options.address === 'cluster-ip' && ip !== undefined && ip !== '' && ip !== 'None') return ip;
  return `${svc.metadata?.name ?? ''}.${svc.metadata?.namespace ?? ''}.svc.${options.clusterDomain}`;
}

function portOf(svc: ServiceLike): number | { problem: string } {
  const ports = svc.spec?.ports ?? [];
  const named = ports.find((p) => p.name !== undefined && POSTGRES_PORT_NAMES.includes(p.name.toLowerCase()));
  const chosen = named ?? (ports.length === 1 ? ports[0] : undefined);
  if (chosen === undefined) {
    const names = ports.map((p) => p.name ?? String(p.port)).join(', ');
    return {
      problem:
        ports.length === 0
          ? `the Service has no ports; set the ${LABEL.port} label`
          : `the Service has ${ports.length} ports (${names}) and none is named ${POSTGRES_PORT_NAMES.join(', ')}; name the PostgreSQL port or set the ${LABEL.port} label`,
    };
  }
  if (svc.spec?.clusterIP === 'None' && svc.spec.type !== 'ExternalName') {
    // A headless Service's DNS name resolves to the pods themselves, so the pods' port counts.
    if (typeof chosen.targetPort === 'number') return chosen.targetPort;
    if (chosen.targetPort === undefined) return chosen.port;
    return { problem: `the headless Service's port ${chosen.name ?? chosen.port} targets the named container port ${JSON.stringify(chosen.targetPort)}, which pgroute cannot resolve; set the ${LABEL.port} label` };
  }
  return chosen.port;
}

function timeOf(t: Date | string | undefined): number | undefined {
  if (t === undefined) return undefined;
  const ms = t instanceof Date ? t.getTime() : Date.parse(t);
  return Number.isNaN(ms) ? undefined : ms;
}
