// The label vocabularies that Docker containers and Kubernetes Services use to declare tenants,
// and the merge of many such claims into validated tenants (through tenants.ts). Pure.
//
// pgroute's own labels:
//   pgroute.tenant   tenant id (required)
//   pgroute.target   target this container/Service serves: primary (default), pool, replica, ...
//   pgroute.port     port PostgreSQL listens on (default: 5432, or the Service's only port)
//   pgroute.enabled  "true" (default) or "false": refuse new connections to the tenant
//   pgroute.maxconn  per-server connection limit (excess connections queue in HAProxy)
//   pgroute.allow    (Docker) networks clients may connect from, comma-separated: 10.0.0.0/8,2001:db8::/32
//                    (Kubernetes label values cannot hold '/' or ',': the annotation pgroute.io/allow)
//   pgroute.maxClientConnections, pgroute.maxConnectionRate, pgroute.maxClientConnectionRate
//                    the tenant's admission limits (README "Per-tenant policy")
// xdatabase-proxy's labels, accepted as they are so its users can move over unchanged:
//   xdatabase-proxy-enabled          must be "true" for the labels to count
//   xdatabase-proxy-deployment-id    tenant id
//   xdatabase-proxy-database-type    must be "postgresql" (others are refused with a reason)
//   xdatabase-proxy-pooled           "true": the target is `pool`, else `primary`
//   xdatabase-proxy-destination-port port
// When both vocabularies are present, they must name the same tenant.

import type { RefusedTenant } from '../model.js';
import { snapshotOf, tenantOf, type TargetFields, type TenantResult } from '../tenants.js';
import { quote, tenantIdProblem } from '../validate.js';
import type { SourceView } from './source.js';

export const LABEL = {
  tenant: 'pgroute.tenant',
  target: 'pgroute.target',
  port: 'pgroute.port',
  enabled: 'pgroute.enabled',
  maxconn: 'pgroute.maxconn',
  allow: 'pgroute.allow',
  maxClientConnections: 'pgroute.maxClientConnections',
  maxConnectionRate: 'pgroute.maxConnectionRate',
  maxClientConnectionRate: 'pgroute.maxClientConnectionRate',
} as const;

/** The Kubernetes annotation that carries a Service's allowed networks. */
export const ALLOW_ANNOTATION = 'pgroute.io/allow';

/** Admission limits as labels: tenant field name -> label. */
const LIMIT_LABELS = ['maxClientConnections', 'maxConnectionRate', 'maxClientConnectionRate'] as const;
type LimitName = (typeof LIMIT_LABELS)[number];

export const XDB_LABEL = {
  enabled: 'xdatabase-proxy-enabled',
  deploymentId: 'xdatabase-proxy-deployment-id',
  databaseType: 'xdatabase-proxy-database-type',
  pooled: 'xdatabase-proxy-pooled',
  destinationPort: 'xdatabase-proxy-destination-port',
} as const;

/** One container's or Service's claim to serve one target of one tenant. Values are unvalidated. */
export interface Claim {
  readonly tenant: string;
  readonly target: string;
  readonly host: string;
  readonly port: unknown;
  readonly enabled: unknown;
  readonly maxconn?: unknown;
  /** Allowed networks, as the label or annotation reads (comma-separated). */
  readonly allow?: string;
  /** Admission limits, as their labels read (numbers when they look like one). */
  readonly limits?: { readonly [K in LimitName]?: unknown };
  /** e.g. 'docker container acme-db (3f2a...)' or 'kubernetes service team-a/acme'. */
  readonly where: string;
  /** Whoever may own the tenant: the Kubernetes namespace; '' for Docker. */
  readonly owner: string;
  /** Creation time in ms: the oldest claim wins a conflict. */
  readonly createdAt: number;
}

export type LabelReading =
  | { kind: 'none' }
  | { kind: 'claim'; tenant: string; target: string; port?: string; enabled?: string; maxconn?: string; allow?: string; limits?: { [K in LimitName]?: unknown } }
  | { kind: 'refused'; reason: string; tenant?: string };

/** Reads the pgroute and xdatabase-proxy labels of one object. 'none': not a tenant at all. */
export function readLabels(labels: Readonly<Record<string, string | undefined>>): LabelReading {
  const own = labels[LABEL.tenant];
  const xdbOn = labels[XDB_LABEL.enabled]?.toLowerCase() === 'true';
  const xdb = xdbOn ? labels[XDB_LABEL.deploymentId] : undefined;
  if (own === undefined && !xdbOn) return { kind: 'none' };
  if (xdbOn) {
    const type = labels[XDB_LABEL.databaseType];
    if (type !== undefined && type.toLowerCase() !== 'postgresql') {
      return { kind: 'refused', reason: `${XDB_LABEL.databaseType} is ${quote(type)}; pgroute routes PostgreSQL only` };
    }
    if (xdb === undefined && own === undefined) return { kind: 'refused', reason: `${XDB_LABEL.enabled} is true but ${XDB_LABEL.deploymentId} is missing` };
    if (xdb !== undefined && own !== undefined && xdb !== own) {
      return { kind: 'refused', reason: `${LABEL.tenant}=${quote(own)} and ${XDB_LABEL.deploymentId}=${quote(xdb)} name different tenants` };
    }
  }
  const tenant = (own ?? xdb) as string;
  const pooled = xdbOn && labels[XDB_LABEL.pooled]?.toLowerCase() === 'true';
  const target = labels[LABEL.target] ?? (pooled ? 'pool' : 'primary');
  const port = labels[LABEL.port] ?? (xdbOn ? labels[XDB_LABEL.destinationPort] : undefined);
  const reading: LabelReading = { kind: 'claim', tenant, target };
  if (port !== undefined) reading.port = port;
  if (labels[LABEL.enabled] !== undefined) reading.enabled = labels[LABEL.enabled];
  if (labels[LABEL.maxconn] !== undefined) reading.maxconn = labels[LABEL.maxconn];
  if (labels[LABEL.allow] !== undefined) reading.allow = labels[LABEL.allow];
  const limits: { [K in LimitName]?: unknown } = {};
  for (const k of LIMIT_LABELS) if (labels[LABEL[k]] !== undefined) limits[k] = labelNumber(labels[LABEL[k]]);
  if (Object.keys(limits).length > 0) reading.limits = limits;
  return reading;
}

/** "5432" -> 5432; anything else is passed on as is for validation to refuse with its reason. */
export function labelNumber(value: string | undefined): unknown {
  if (value === undefined) return undefined;
  return /^\d{1,6}$/.test(value) ? Number(value) : value;
}

/** "true"/"false" (any case) -> boolean; anything else is passed on for validation to refuse. */
export function labelBoolean(value: string | undefined): unknown {
  if (value === undefined) return undefined;
  const v = value.toLowerCase();
  return v === 'true' ? true : v === 'false' ? false : value;
}

/**
 * Merges claims into tenant definitions, deterministically: claims are taken oldest first (then by
 * `where`). The oldest claim of a tenant fixes its owner: claims from another owner (a second
 * Kubernetes namespace) are refused while the owner's claim exists. A second claim of the same
 * target is refused. A tenant must have a primary target.
 *
 * Ownership by first claim has no memory, on purpose (replicas must agree from the same objects):
 * once the owner's last claim is gone, even for the moment of a delete and re-create, another
 * owner's waiting claim is the oldest and takes the tenant. The Kubernetes source's declared
 * ownership (--kube-ownership declared, kubernetes/ownership.ts) filters claims before they get
 * here so that only the declared namespace's claims remain.
 */
export function mergeClaims(claims: readonly Claim[], refusedAlready: readonly RefusedTenant[] = []): SourceView {
  const sorted = [...claims].sort((a, b) => a.createdAt - b.createdAt || (a.where < b.where ? -1 : a.where > b.where ? 1 : 0));
  const refused: RefusedTenant[] = [...refusedAlready];
  const byTenant = new Map<string, { owner: string; first: string; targets: Map<string, Claim> }>();
  for (const c of sorted) {
    let t = byTenant.get(c.tenant);
    if (t === undefined) byTenant.set(c.tenant, (t = { owner: c.owner, first: c.where, targets: new Map() }));
    if (c.owner !== t.owner) {
      refused.push({ where: c.where, id: c.tenant, reason: `tenant ${shown(c.tenant)} belongs to ${t.owner || 'another owner'} (claimed first by ${t.first}); a claim from ${c.owner || 'another owner'} is refused` });
      continue;
    }
    const holder = t.targets.get(c.target);
    if (holder !== undefined) {
      refused.push({ where: c.where, id: c.tenant, reason: `target ${shown(c.target)} of tenant ${shown(c.tenant)} is already served by ${holder.where}` });
      continue;
    }
    t.targets.set(c.target, c);
  }
  const results: { where: string; result: TenantResult }[] = [];
  for (const [id, t] of [...byTenant.entries()].sort(([a], [b]) => (a < b ? -1 : 1))) {
    const primary = t.targets.get('primary');
    if (primary === undefined) {
      for (const c of t.targets.values()) refused.push({ where: c.where, id, reason: `tenant ${shown(id)} has no primary target (only ${[...t.targets.keys()].map(shown).join(', ')})` });
      continue;
    }
    results.push({ where: primary.where, result: tenantOfClaims(id, primary, t.targets) });
  }
  // Validation refusals come after the merge's own, as tenants.ts reports them.
  return snapshotOf(results, refused);
}

/** One tenant from its merged claims: the oldest claim of each target; the primary's maxconn, allowed networks and limits. */
function tenantOfClaims(id: string, primary: Claim, claims: ReadonlyMap<string, Claim>): TenantResult {
  const idProblem = tenantIdProblem(id);
  if (idProblem) return { ok: false, refused: { where: primary.where, reason: idProblem } };
  const targets = new Map<string, TargetFields>();
  let enabled: unknown = true;
  for (const [name, c] of claims) {
    if (c.enabled === false) enabled = false;
    else if (c.enabled !== undefined && c.enabled !== true && enabled !== false) enabled = c.enabled;
    if (name !== 'primary') targets.set(name, { host: c.host, port: c.port });
  }
  return tenantOf(primary.where, id, {
    primary: { host: primary.host, port: primary.port },
    ...(targets.size > 0 ? { targets } : {}),
    enabled,
    ...(primary.maxconn !== undefined ? { maxconn: primary.maxconn } : {}),
    ...(primary.allow !== undefined ? { allow: primary.allow.split(',').map((n) => n.trim()) } : {}),
    ...(primary.limits !== undefined ? { limits: primary.limits } : {}),
  });
}

/**
 * A label value inside a refusal reason: as it is when it is a plain token (the usual case, so
 * reasons read naturally), else quoted, escaped and cut like every other value in a reason. Label
 * values are unvalidated: they may hold newlines, NULs or kilobytes.
 */
function shown(value: string): string {
  return /^[A-Za-z0-9._-]{1,63}$/.test(value) ? value : quote(value);
}
