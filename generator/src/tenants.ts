// Turns tenant definitions (from any source) into validated Tenants, refusing bad ones with their
// reason. One bad definition never stops the others. The file source parses YAML values
// (parseTenant); the Docker and Kubernetes sources hand over typed fields (tenantOf); both go
// through the same field parsers, and through snapshotOf into one sorted snapshot.

import { isIP } from 'node:net';
import { networksProblem } from '../../agent/src/index.js';
import type { BackendTls, Endpoint, HealthCheck, RefusedTenant, Target, Tenant, TenantLimits, TenantSnapshot } from './model.js';
import {
  countProblem,
  hostProblem,
  portProblem,
  positiveIntProblem,
  quote,
  targetNameProblem,
  tenantIdProblem,
} from './validate.js';

/** A tenant definition as a source read it: untrusted, any shape. */
export interface RawTenant {
  readonly where: string;
  readonly value: unknown;
}

/** The admission limits a tenant may set (model.ts TenantLimits), and the largest value of each. */
const LIMIT_MAX: Readonly<Record<keyof TenantLimits, number>> = { maxClientConnections: 1_000_000, maxConnectionRate: 1_000_000, maxClientConnectionRate: 1_000_000 };
const LIMIT_KEYS = Object.keys(LIMIT_MAX) as (keyof TenantLimits)[];
const TENANT_KEYS = new Set(['id', 'host', 'port', 'members', 'check', 'tls', 'enabled', 'targets', 'maxconn', 'maxqueue', 'allow', ...LIMIT_KEYS]);
const TARGET_KEYS = new Set(['host', 'port', 'members', 'check', 'tls']);
const MAX_MEMBERS = 16;
const MAX_TARGETS = 8;

export type TenantResult = { ok: true; tenant: Tenant } | { ok: false; refused: RefusedTenant };

/** Whether a file exists where HAProxy will look for it. Injected: validation itself reads no files. */
export type FileCheck = (path: string) => boolean;

/** The fields of one target as a source holds them: known by name, values not yet validated. */
export interface TargetFields {
  readonly host?: unknown;
  readonly port?: unknown;
  readonly members?: unknown;
  readonly check?: unknown;
  readonly tls?: unknown;
}

/** The fields of a tenant (besides its id) as a source holds them: known by name, values not yet validated. */
export interface TenantFields {
  readonly primary: TargetFields;
  /** Extra targets by name: a Map from a typed source, or a value read from YAML (a mapping, else refused). */
  readonly targets?: ReadonlyMap<string, TargetFields> | unknown;
  readonly enabled?: unknown;
  readonly maxconn?: unknown;
  readonly maxqueue?: unknown;
  /** Networks clients may connect from: a list of `10.0.0.0/8`, `2001:db8::/32`, or addresses. */
  readonly allow?: unknown;
  readonly limits?: { readonly [K in keyof TenantLimits]?: unknown };
}

/** A YAML value claimed to be a tenant: checks its shape, then its fields (tenantOf). */
export function parseTenant(raw: RawTenant, files: FileCheck = () => true): TenantResult {
  const v = raw.value;
  if (!isMapping(v)) return refusal(raw.where, 'a tenant must be a mapping with id, host and port');
  const idProblem = tenantIdProblem(v.id);
  if (idProblem) return refusal(raw.where, idProblem);
  const id = v.id as string;
  for (const key of Object.keys(v)) {
    if (!TENANT_KEYS.has(key)) return refusal(raw.where, `unknown field ${quote(key)} (known: ${[...TENANT_KEYS].join(', ')})`, id);
  }
  const limits = Object.fromEntries(LIMIT_KEYS.filter((k) => v[k] !== undefined).map((k) => [k, v[k]]));
  return tenantOf(raw.where, id, { primary: v, targets: v.targets, enabled: v.enabled, maxconn: v.maxconn, maxqueue: v.maxqueue, allow: v.allow, limits }, files);
}

/** A tenant from its id and fields, or the first reason to refuse it. */
export function tenantOf(where: string, id: string, fields: TenantFields, files: FileCheck = () => true): TenantResult {
  const refuse = (reason: string): TenantResult => refusal(where, reason, id);
  const primary = parseTarget(fields.primary, 'primary', files);
  if (typeof primary === 'string') return refuse(primary);
  const targets: Record<string, Target> = { primary };
  if (fields.targets !== undefined) {
    const given = fields.targets;
    if (!(given instanceof Map) && !isMapping(given)) return refuse('targets must be a mapping of target name to { host, port }');
    const entries: [string, unknown][] = given instanceof Map ? [...(given as ReadonlyMap<string, unknown>)] : Object.entries(given as Record<string, unknown>);
    if (entries.length > MAX_TARGETS) return refuse(`at most ${MAX_TARGETS} extra targets are allowed`);
    for (const [name, value] of entries) {
      const nameProblem = targetNameProblem(name);
      if (nameProblem) return refuse(nameProblem);
      if (name === 'primary') return refuse('the primary target is the tenant\'s own host and port; do not repeat it under targets');
      if (!isMapping(value)) return refuse(`target ${name} must be a mapping with host and port (or members)`);
      const unknown = Object.keys(value).find((k) => !TARGET_KEYS.has(k));
      if (unknown !== undefined) return refuse(`target ${name}: unknown field ${quote(unknown)} (known: ${[...TARGET_KEYS].join(', ')})`);
      const target = parseTarget(value, name, files);
      if (typeof target === 'string') return refuse(`target ${name}: ${target}`);
      targets[name] = target;
    }
  }
  let enabled = true;
  if (fields.enabled !== undefined) {
    if (typeof fields.enabled !== 'boolean') return refuse('enabled must be true or false');
    enabled = fields.enabled;
  }
  let maxconn: number | undefined;
  if (fields.maxconn !== undefined) {
    const problem = positiveIntProblem('maxconn', fields.maxconn, 100_000);
    if (problem) return refuse(problem);
    maxconn = fields.maxconn as number;
  }
  let maxqueue: number | undefined;
  if (fields.maxqueue !== undefined) {
    const problem = positiveIntProblem('maxqueue', fields.maxqueue, 100_000);
    if (problem) return refuse(problem);
    maxqueue = fields.maxqueue as number;
  }
  let allow: string[] | undefined;
  if (fields.allow !== undefined) {
    const problem = networksProblem(fields.allow);
    if (problem) return refuse(problem);
    allow = [...(fields.allow as string[])];
  }
  const limits: { -readonly [K in keyof TenantLimits]: TenantLimits[K] } = {};
  for (const k of LIMIT_KEYS) {
    const value = fields.limits?.[k];
    if (value === undefined) continue;
    const problem = countProblem(k, value, LIMIT_MAX[k]);
    if (problem) return refuse(`${problem} (0: no limit)`);
    limits[k] = value as number;
  }
  const tenant: { -readonly [K in keyof Tenant]: Tenant[K] } = { id, enabled, targets };
  if (maxconn !== undefined) tenant.maxconn = maxconn;
  if (maxqueue !== undefined) tenant.maxqueue = maxqueue;
  if (allow !== undefined) tenant.allow = allow;
  if (Object.keys(limits).length > 0) tenant.limits = limits;
  return { ok: true, tenant };
}

function refusal(where: string, reason: string, id?: string): TenantResult {
  return { ok: false, refused: id === undefined ? { where, reason } : { where, id, reason } };
}

function isMapping(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** One server (host, port) or a cluster (members), with an optional health check. */
function parseTarget(obj: TargetFields, targetName: string, files: FileCheck): Target | string {
  let first: Endpoint;
  let members: Endpoint[] | undefined;
  if (obj.members !== undefined) {
    if (obj.host !== undefined || obj.port !== undefined) return 'give either host and port, or members, not both';
    if (!Array.isArray(obj.members) || obj.members.length === 0 || obj.members.length > MAX_MEMBERS) return `members must be a list of 1 to ${MAX_MEMBERS} { host, port }`;
    members = [];
    for (const [i, m] of obj.members.entries()) {
      if (typeof m !== 'object' || m === null) return `members[${i}] must be a mapping with host and port`;
      const e = parseEndpoint(m as TargetFields);
      if (typeof e === 'string') return `members[${i}]: ${e}`;
      members.push(e);
    }
    first = members[0] as Endpoint;
  } else {
    const e = parseEndpoint(obj);
    if (typeof e === 'string') return e;
    first = e;
  }
  const check = obj.check === undefined ? undefined : parseCheck(obj.check, targetName);
  if (typeof check === 'string') return check;
  const tls = obj.tls === undefined ? undefined : parseBackendTls(obj.tls, files);
  if (typeof tls === 'string') return tls;
  const target: { -readonly [K in keyof Target]: Target[K] } = { host: first.host, port: first.port };
  if (members !== undefined) target.members = members;
  if (check !== undefined) target.check = check;
  if (tls !== undefined) target.tls = tls;
  return target;
}

/** Absolute paths of plain characters: nothing that could end or extend a haproxy.cfg word. */
const SAFE_PATH = /^\/[A-Za-z0-9._/-]{1,250}$/;

/** `tls: { verify: required, ca: /path/ca.pem, serverName: db.internal }` or `tls: { verify: none }`. */
function parseBackendTls(raw: unknown, files: FileCheck): BackendTls | string {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return 'tls must be a mapping { verify: required | none, ca, serverName }';
  const t = raw as Record<string, unknown>;
  const unknown = Object.keys(t).find((k) => !['verify', 'ca', 'serverName'].includes(k));
  if (unknown !== undefined) return `tls: unknown field ${quote(unknown)} (known: verify, ca, serverName)`;
  const verify = t.verify ?? 'required';
  if (verify !== 'required' && verify !== 'none') return 'tls.verify must be required or none';
  const out: { -readonly [K in keyof BackendTls]: BackendTls[K] } = { verify };
  if (t.ca !== undefined) {
    if (typeof t.ca !== 'string' || !SAFE_PATH.test(t.ca)) return 'tls.ca must be an absolute path of letters, digits and . _ / -';
    // HAProxy refuses a whole configuration over one missing ca-file: refuse the tenant instead.
    if (!files(t.ca)) return `tls.ca ${t.ca} does not exist (on the machine that runs HAProxy and pgroute)`;
    out.ca = t.ca;
  }
  if (verify === 'required' && out.ca === undefined) return 'tls.verify required needs tls.ca (the CA that signed the server certificate)';
  if (t.serverName !== undefined) {
    const problem = hostProblem(t.serverName);
    if (problem || isIP(t.serverName as string) !== 0) return 'tls.serverName must be a host name';
    out.serverName = t.serverName as string;
  }
  return out;
}

const CHECK_USER = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/;

/** `tcp`, `none`, `pgsql`, `patroni`, or a mapping { kind, port, path, user }. */
function parseCheck(raw: unknown, targetName: string): HealthCheck | string {
  const spec = typeof raw === 'string' ? { kind: raw } : raw;
  if (typeof spec !== 'object' || spec === null) return 'check must be tcp, pgsql, patroni, none or a mapping { kind, ... }';
  const c = spec as Record<string, unknown>;
  switch (c.kind) {
    case 'tcp':
    case 'none':
      return { kind: c.kind };
    case 'pgsql': {
      const user = c.user ?? 'pgroute';
      if (typeof user !== 'string' || !CHECK_USER.test(user)) return 'check.user must be a PostgreSQL role name of letters, digits and _';
      return { kind: 'pgsql', user };
    }
    case 'patroni': {
      const port = c.port ?? 8008;
      const pp = portProblem(port);
      if (pp) return `check.port: ${pp}`;
      const path = c.path ?? (targetName === 'primary' ? '/primary' : targetName === 'replica' ? '/replica' : '/health');
      if (typeof path !== 'string' || !/^\/[A-Za-z0-9/_?=&.-]{0,100}$/.test(path)) return 'check.path must be a URL path such as /primary';
      return { kind: 'patroni', port: port as number, path };
    }
    default:
      return `check kind ${quote(String(c.kind))} is not one of tcp, pgsql, patroni, none`;
  }
}

function parseEndpoint(obj: TargetFields): Endpoint | string {
  const hp = hostProblem(obj.host);
  if (hp) return hp;
  const pp = portProblem(obj.port);
  if (pp) return pp;
  return { host: obj.host as string, port: obj.port as number };
}

/** Validates every raw definition (see snapshotOf). */
export function buildSnapshot(raws: readonly RawTenant[], alreadyRefused: readonly RefusedTenant[] = [], files: FileCheck = () => true): TenantSnapshot {
  return snapshotOf(raws.map((raw) => ({ where: raw.where, result: parseTenant(raw, files) })), alreadyRefused).snapshot;
}

/** Validated definitions -> one snapshot sorted by id (and where each tenant was defined). Later duplicates of an id are refused, the first one kept. */
export function snapshotOf(results: readonly { readonly where: string; readonly result: TenantResult }[], alreadyRefused: readonly RefusedTenant[] = []): { snapshot: TenantSnapshot; where: Record<string, string> } {
  const tenants: Tenant[] = [];
  const refused: RefusedTenant[] = [...alreadyRefused];
  const seen = new Map<string, string>();
  for (const { where, result } of results) {
    if (!result.ok) {
      refused.push(result.refused);
      continue;
    }
    const first = seen.get(result.tenant.id);
    if (first !== undefined) {
      refused.push({ where, id: result.tenant.id, reason: `tenant id ${result.tenant.id} is already defined at ${first}` });
      continue;
    }
    seen.set(result.tenant.id, where);
    tenants.push(result.tenant);
  }
  tenants.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  return { snapshot: { tenants, refused }, where: Object.fromEntries(seen) };
}
