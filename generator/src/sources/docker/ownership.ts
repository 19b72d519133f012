// Which Docker containers may declare tenants, and how their claims are judged. Pure: the records
// of what `pgroute tenant create` made are read by created.ts, the containers by ../docker.ts.
//
// Anyone who can create a container can give it any label, pgroute.managed=true included. So a
// label alone never admits a container. A container is admitted to declare tenants when
//   - pgroute created it: `pgroute tenant create <id>` records the id Docker gave the container
//     (<state-dir>/tenants/<id>.container). Docker picks container ids (256 random bits), so no
//     other container can match a record. The record also makes pgroute's container the only one
//     that may claim that tenant id: any other claim of it is refused, whatever admits it;
//   - or it matches one of the operator's constraints (--docker-constraint, any one suffices):
//     compose-project=NAME (label com.docker.compose.project), network=NAME (attached to that
//     network), label=KEY=VALUE (a label the operator's tooling sets and the container's author
//     cannot). Which one is safe depends on who may create containers on the host: docs/docker-ownership.md;
//   - or --docker-expose-by-default: every container is (what pgroute did before owners; the
//     records still protect the tenants pgroute created).
//
// The claims of admitted containers are then judged one by one, never by age:
//   - a claim with a bad value (tenant id, target name, port, enabled, maxconn) is refused alone;
//   - two or more containers claiming the same target of the same tenant are all refused, each
//     naming the others: replicas decide alike from the same containers, and recreating the rightful
//     container never hands its target to an older stranger;
//   - the tenant's on/off switch is its primary claim's pgroute.enabled: `false` on another target's
//     container withdraws that target only.

import { ConfigError } from '../../errors.js';
import type { RefusedTenant } from '../../model.js';
import { portProblem, positiveIntProblem, quote, targetNameProblem, tenantIdProblem } from '../../validate.js';
import { readLabels, type Claim, type LabelReading } from '../labels.js';
import { containerClaims, containerWhere, type ContainerClaims, type ContainerSummary } from './claims.js';

export const COMPOSE_PROJECT_LABEL = 'com.docker.compose.project';
/** The label `tenant create` sets to find its containers again; it proves nothing (see above). */
const MANAGED_LABEL = 'pgroute.managed';
const MAX_MAXCONN = 100_000;
/** Claimants named in one contested claim's reason. */
const MAX_NAMED = 5;

export type Constraint =
  | { readonly kind: 'compose-project'; readonly name: string }
  | { readonly kind: 'network'; readonly name: string }
  | { readonly kind: 'label'; readonly key: string; readonly value: string };

export interface Admission {
  /** --docker-expose-by-default: every container may declare tenants. */
  readonly exposeByDefault: boolean;
  /** --docker-constraint: a container matching any one of them may declare tenants. */
  readonly constraints: readonly Constraint[];
  /** What `pgroute tenant create` recorded: tenant id -> the full id of the container it created. */
  readonly created: ReadonlyMap<string, string>;
}

/** The default: only containers pgroute created (none recorded yet). */
export const CREATED_ONLY: Admission = { exposeByDefault: false, constraints: [], created: new Map() };

const COMPOSE_PROJECT = /^[a-z0-9][a-z0-9_-]{0,127}$/;
const NETWORK_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$/;
const LABEL_KEY = /^[A-Za-z0-9][A-Za-z0-9._/-]{0,127}$/;
/** No comma or white space: the environment variable separates constraints with them. */
const LABEL_VALUE = /^[^\s,]{1,256}$/;
/** Label keys whoever creates a container sets to claim a tenant: constraining on them admits everyone. */
const CLAIM_KEYS = /^(pgroute\.|xdatabase-proxy-)/;

export const CONSTRAINT_SYNTAX = 'compose-project=NAME, network=NAME or label=KEY=VALUE';

/** Reads one --docker-constraint value; returns the problem as a sentence when it is not one. */
export function parseConstraint(text: string): Constraint | { readonly problem: string } {
  const eq = text.indexOf('=');
  const kind = eq < 0 ? text : text.slice(0, eq);
  const rest = eq < 0 ? '' : text.slice(eq + 1);
  const bad = (why: string): { problem: string } => ({ problem: `${CONSTRAINT_LABEL} ${quote(text)}: ${why}` });
  switch (kind) {
    case 'compose-project':
      if (!COMPOSE_PROJECT.test(rest)) return bad('a compose project name is lower-case letters, digits, "_" and "-", starting with a letter or digit');
      return { kind, name: rest };
    case 'network':
      if (!NETWORK_NAME.test(rest)) return bad('a Docker network name is letters, digits, "_", "." and "-", starting with a letter or digit');
      return { kind, name: rest };
    case 'label': {
      const at = rest.indexOf('=');
      const key = at < 0 ? rest : rest.slice(0, at);
      const value = at < 0 ? '' : rest.slice(at + 1);
      if (!LABEL_KEY.test(key) || at < 0 || !LABEL_VALUE.test(value)) return bad('use label=KEY=VALUE, a label key of letters, digits, ".", "_", "/" and "-", and a value without commas or spaces');
      if (CLAIM_KEYS.test(key)) {
        return bad(`${key} is set by whoever creates a container to claim a tenant, so it would admit every container; constrain on a label only your own tooling sets`);
      }
      return { kind, key, value };
    }
    default:
      return bad(`expected ${CONSTRAINT_SYNTAX}`);
  }
}

export const CONSTRAINT_FLAG = '--docker-constraint';
/** How a refused value names where it came from: the flag and its variable. */
const CONSTRAINT_LABEL = `${CONSTRAINT_FLAG} (PGROUTE_DOCKER_CONSTRAINTS)`;
export const EXPOSE_FLAG = '--docker-expose-by-default';
export const EXPOSE_ENV = 'PGROUTE_DOCKER_EXPOSE_BY_DEFAULT';
const MAX_CONSTRAINTS = 64;

/**
 * The admission the flags ask for: --docker-constraint values (repeatable, each may hold several
 * separated by commas or spaces, as PGROUTE_DOCKER_CONSTRAINTS does), and --docker-expose-by-default
 * or PGROUTE_DOCKER_EXPOSE_BY_DEFAULT=true|false. A ConfigError (one line) names a bad value.
 */
export function admissionFromFlags(constraints: string | readonly string[] | undefined, expose: boolean | undefined, exposeEnv: string | undefined): { exposeByDefault: boolean; constraints: Constraint[] } {
  const list = constraints === undefined ? [] : typeof constraints === 'string' ? [constraints] : constraints;
  const entries = list.flatMap((v) => v.split(/[\s,]+/)).filter((e) => e !== '');
  if (entries.length > MAX_CONSTRAINTS) throw new ConfigError(`${CONSTRAINT_LABEL} has ${entries.length} entries, more than the ${MAX_CONSTRAINTS} read`);
  const parsed: Constraint[] = [];
  for (const entry of entries) {
    const c = parseConstraint(entry);
    if ('problem' in c) throw new ConfigError(c.problem);
    if (!parsed.some((p) => describeConstraint(p) === describeConstraint(c))) parsed.push(c);
  }
  let fromEnv = false;
  if (exposeEnv !== undefined && exposeEnv !== '') {
    const v = exposeEnv.toLowerCase();
    if (v !== 'true' && v !== 'false') throw new ConfigError(`${EXPOSE_ENV} must be true or false, got ${quote(exposeEnv)}`);
    fromEnv = v === 'true';
  }
  return { exposeByDefault: expose === true || fromEnv, constraints: parsed };
}

/** How the admission reads in a log line: 'created by pgroute, network=pgroute'. */
export function describeAdmission(a: { readonly exposeByDefault: boolean; readonly constraints: readonly Constraint[] }): string {
  if (a.exposeByDefault) return 'every container (--docker-expose-by-default)';
  return ['containers pgroute created', ...a.constraints.map(describeConstraint)].join(', ');
}

/** 'network=pgroute' */
export function describeConstraint(c: Constraint): string {
  return c.kind === 'label' ? `label=${c.key}=${c.value}` : `${c.kind}=${c.name}`;
}

function matches(c: ContainerSummary, constraint: Constraint): boolean {
  const labels = c.Labels ?? {};
  switch (constraint.kind) {
    case 'compose-project':
      return labels[COMPOSE_PROJECT_LABEL] === constraint.name;
    case 'network':
      return Object.prototype.hasOwnProperty.call(c.NetworkSettings?.Networks ?? {}, constraint.name);
    case 'label':
      return labels[constraint.key] === constraint.value;
  }
}

export type AdmissionVerdict = { readonly admitted: true; readonly by: string } | { readonly admitted: false; readonly reason: string };

/**
 * Whether this container may claim `tenant` (its labels name it), and why (not). The record of the
 * container pgroute created for `tenant` comes first: it alone may claim that id.
 */
export function admit(c: ContainerSummary, tenant: string | undefined, admission: Admission): AdmissionVerdict {
  const recorded = tenant === undefined ? undefined : admission.created.get(tenant);
  if (recorded !== undefined) {
    if (recorded === c.Id) return { admitted: true, by: 'pgroute tenant create' };
    return {
      admitted: false,
      reason: `tenant ${shown(tenant as string)} was created by \`pgroute tenant create\` as container ${recorded.slice(0, 12)}; only that container may claim it (\`pgroute tenant delete ${shown(tenant as string)} --purge\` gives the id up)`,
    };
  }
  if (admission.exposeByDefault) return { admitted: true, by: '--docker-expose-by-default' };
  const hit = admission.constraints.find((k) => matches(c, k));
  if (hit !== undefined) return { admitted: true, by: `--docker-constraint ${describeConstraint(hit)}` };
  return { admitted: false, reason: notAdmittedReason(c, admission) };
}

function notAdmittedReason(c: ContainerSummary, admission: Admission): string {
  const labels = c.Labels ?? {};
  const given = admission.constraints.length === 0 ? 'no --docker-constraint is set' : `it matches no --docker-constraint (${admission.constraints.map(describeConstraint).join(', ')})`;
  const managed = labels[MANAGED_LABEL] === undefined ? '' : `; its label ${MANAGED_LABEL} proves nothing (anyone can set it)`;
  const traits: string[] = [];
  const project = labels[COMPOSE_PROJECT_LABEL];
  if (project !== undefined) traits.push(`compose-project=${shown(project)}`);
  const networks = Object.keys(c.NetworkSettings?.Networks ?? {}).sort();
  for (const n of networks.slice(0, 3)) traits.push(`network=${shown(n)}`);
  const could = traits.length === 0 ? '' : ` (this one has ${traits.join(', ')})`;
  return (
    `the container may not declare tenants: pgroute did not create it (\`pgroute tenant create\`) and ${given}${managed}; ` +
    `to admit it, start pgroute with a --docker-constraint it matches${could}, or --docker-expose-by-default to admit every container`
  );
}

/**
 * The claims of the admitted containers, judged (see the top of this file), and every refusal
 * with its reason, sorted by where. Containers that are not running or carry no tenant labels are
 * ignored; `network` is --docker-network.
 */
export function dockerClaims(containers: readonly ContainerSummary[], opts: { readonly network?: string | undefined; readonly admission: Admission }): ContainerClaims {
  const admitted: ContainerSummary[] = [];
  const refused: RefusedTenant[] = [];
  for (const c of containers) {
    if (c.State !== undefined && c.State !== 'running') continue;
    const reading = readLabels(c.Labels ?? {});
    if (reading.kind === 'none') continue;
    const tenant = tenantOf(reading);
    const verdict = admit(c, tenant, opts.admission);
    if (verdict.admitted) admitted.push(c);
    else refused.push(refusal(containerWhere(c), tenant, verdict.reason));
  }
  const read = containerClaims(admitted, { network: opts.network });
  const judged = judgeClaims(read.claims);
  return { claims: judged.accepted, refused: sortByWhere([...refused, ...read.refused, ...judged.refused]) };
}

function tenantOf(reading: LabelReading): string | undefined {
  return reading.kind === 'claim' ? reading.tenant : reading.kind === 'refused' ? reading.tenant : undefined;
}

/**
 * Each claim on its own: bad values refuse that claim alone; a target of a tenant claimed more than
 * once refuses every such claim; only primary claims carry the tenant's pgroute.enabled, and a
 * non-primary claim with pgroute.enabled=false is withdrawn. The result does not depend on the
 * order of `claims` nor on their creation times.
 */
export function judgeClaims(claims: readonly Claim[]): { accepted: Claim[]; refused: RefusedTenant[] } {
  const refused: RefusedTenant[] = [];
  const byTarget = new Map<string, Claim[]>();
  for (const c of claims) {
    const problem = claimProblem(c);
    if (problem !== undefined) {
      refused.push(refusal(c.where, c.tenant, `${problem}; this claim alone is refused`));
      continue;
    }
    const key = `${c.tenant}\u0000${c.target}`;
    const list = byTarget.get(key);
    if (list === undefined) byTarget.set(key, [c]);
    else list.push(c);
  }
  const accepted: Claim[] = [];
  for (const group of byTarget.values()) {
    const [only] = group;
    if (group.length === 1 && only !== undefined) {
      if (only.target === 'primary') accepted.push(only);
      else if (only.enabled === false) {
        refused.push(refusal(only.where, only.tenant, `pgroute.enabled=false withdraws target ${only.target} of tenant ${only.tenant} alone; the tenant is switched off by its primary's container (or \`pgroute tenant disable\`)`));
      } else accepted.push({ ...only, enabled: undefined });
      continue;
    }
    const wheres = group.map((c) => c.where).sort();
    for (const c of group) {
      const others = wheres.filter((w) => w !== c.where);
      const named = others.slice(0, MAX_NAMED).join(', ') + (others.length > MAX_NAMED ? ` and ${others.length - MAX_NAMED} more` : '');
      refused.push(
        refusal(c.where, c.tenant, `target ${c.target} of tenant ${c.tenant} is claimed by ${group.length} containers (also ${named}): every such claim is refused until one container alone claims it (pgroute never prefers the older one)`),
      );
    }
  }
  accepted.sort((a, b) => compare(a.where, b.where));
  return { accepted, refused };
}

/** Why one claim's values cannot be served, or undefined. The host is the container's own IP. */
function claimProblem(c: Claim): string | undefined {
  const problem =
    tenantIdProblem(c.tenant) ??
    targetNameProblem(c.target) ??
    portProblem(c.port) ??
    (c.enabled === undefined || typeof c.enabled === 'boolean' ? undefined : `pgroute.enabled must be true or false, got ${quote(String(c.enabled))}`) ??
    (c.maxconn === undefined ? undefined : positiveIntProblem('pgroute.maxconn', c.maxconn, MAX_MAXCONN));
  return problem;
}

/** A refusal: the id only when it is a valid tenant id (a label value may hold anything). */
function refusal(where: string, tenant: string | undefined, reason: string): RefusedTenant {
  return tenant === undefined || tenantIdProblem(tenant) !== undefined ? { where, reason } : { where, id: tenant, reason };
}

function sortByWhere(list: RefusedTenant[]): RefusedTenant[] {
  return list.sort((a, b) => compare(a.where, b.where) || compare(a.reason, b.reason));
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** A label value inside a reason: as it is when it is a plain token, else quoted and cut. */
function shown(value: string): string {
  return /^[A-Za-z0-9._-]{1,63}$/.test(value) ? value : quote(value);
}
