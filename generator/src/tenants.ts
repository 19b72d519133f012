// Turns tenant definitions (from any source) into validated Tenants, refusing bad ones with their
// reason. One bad definition never stops the others. The file source parses YAML values
// (parseTenant); the Docker and Kubernetes sources hand over typed fields (tenantOf); both go
// through the same field parsers, and through snapshotOf into one sorted snapshot.

import type { BackendTls, Endpoint, HealthCheck, RefusedTenant, Target, Tenant, TenantLimits, TenantSnapshot } from './model.js';
import { firstMessage, LIMIT_KEYS, tenantSchema, type TargetSpec, type TenantInput } from './tenants-schema.js';
import { targetNameProblem, tenantIdProblem } from './validate.js';

/** A tenant definition as a source read it: untrusted, any shape. */
export interface RawTenant {
  readonly where: string;
  readonly value: unknown;
}

export type TenantResult = { ok: true; tenant: Tenant } | { ok: false; refused: RefusedTenant };

/** Whether a file exists where HAProxy will look for it. Injected: validation itself reads no files. */
/** Why a file a tenant names (tls.ca) cannot be used, or undefined when it can. */
export type FileCheck = (path: string) => string | undefined;

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

/** A YAML value claimed to be a tenant, validated against the tenants file's schema (tenants-schema.ts). */
export function parseTenant(raw: RawTenant, files: FileCheck = () => undefined): TenantResult {
  const v = raw.value;
  const parsed = tenantSchema.safeParse(v);
  // The id is named in a refusal when it is itself valid.
  const id = typeof v === 'object' && v !== null && tenantIdProblem((v as { id?: unknown }).id) === undefined ? String((v as { id: string }).id) : undefined;
  if (!parsed.success) return refusal(raw.where, firstMessage(parsed.error), id);
  // zod leaves a "__proto__" key out of a record (guarding prototypes) instead of refusing it: a
  // target of that name is refused like any other name outside the rule.
  const given = (v as { targets?: unknown }).targets;
  if (typeof given === 'object' && given !== null && Object.hasOwn(given, '__proto__')) return refusal(raw.where, targetNameProblem('__proto__') as string, id);
  return tenantOfInput(raw.where, parsed.data, files);
}

/** A tenant from a typed source's id and fields: the same schema, the same messages. */
export function tenantOf(where: string, id: string, fields: TenantFields, files: FileCheck = () => undefined): TenantResult {
  const targets = fields.targets instanceof Map ? Object.fromEntries(fields.targets as ReadonlyMap<string, unknown>) : fields.targets;
  const value: Record<string, unknown> = { id, ...defined(fields.primary), ...defined({ targets, enabled: fields.enabled, maxconn: fields.maxconn, maxqueue: fields.maxqueue, allow: fields.allow, ...fields.limits }) };
  return parseTenant({ where, value }, files);
}

/** The fields that are there (a typed source's undefined means "not given", as a missing YAML key does). */
function defined(fields: object): Record<string, unknown> {
  return Object.fromEntries(Object.entries(fields).filter(([, v]) => v !== undefined));
}

/** The validated input as a Tenant: defaults filled in, and the one check the schema cannot make (files exist). */
function tenantOfInput(where: string, input: TenantInput, files: FileCheck): TenantResult {
  const refuse = (reason: string): TenantResult => refusal(where, reason, input.id);
  const primary = targetOf(input, 'primary', files);
  if (typeof primary === 'string') return refuse(primary);
  const targets: Record<string, Target> = { primary };
  for (const [name, spec] of Object.entries(input.targets ?? {})) {
    const target = targetOf(spec, name, files);
    if (typeof target === 'string') return refuse(`target ${name}: ${target}`);
    targets[name] = target;
  }
  const tenant: { -readonly [K in keyof Tenant]: Tenant[K] } = { id: input.id, enabled: input.enabled ?? true, targets };
  if (input.maxconn !== undefined) tenant.maxconn = input.maxconn;
  if (input.maxqueue !== undefined) tenant.maxqueue = input.maxqueue;
  if (input.allow !== undefined) tenant.allow = input.allow as string[];
  const limits: { -readonly [K in keyof TenantLimits]: TenantLimits[K] } = {};
  for (const k of LIMIT_KEYS) if (input[k] !== undefined) limits[k] = input[k];
  if (Object.keys(limits).length > 0) tenant.limits = limits;
  return { ok: true, tenant };
}

function refusal(where: string, reason: string, id?: string): TenantResult {
  return { ok: false, refused: id === undefined ? { where, reason } : { where, id, reason } };
}

/** One server (host, port) or a cluster (members), with its health check and TLS. */
function targetOf(spec: TargetSpec, targetName: string, files: FileCheck): Target | string {
  const members: Endpoint[] | undefined = spec.members?.map((m) => ({ host: m.host, port: m.port }));
  const first: Endpoint = members?.[0] ?? { host: spec.host as string, port: spec.port as number };
  const target: { -readonly [K in keyof Target]: Target[K] } = { host: first.host, port: first.port };
  if (members !== undefined) target.members = members;
  if (spec.check !== undefined) target.check = checkOf(spec.check, targetName);
  if (spec.tls !== undefined) {
    const tls: { -readonly [K in keyof BackendTls]: BackendTls[K] } = { verify: spec.tls.verify ?? 'required' };
    if (spec.tls.ca !== undefined) {
      // HAProxy refuses a whole configuration over one ca-file it cannot load: refuse the tenant instead.
      const problem = files(spec.tls.ca);
      if (problem !== undefined) return `tls.ca ${spec.tls.ca} ${problem}`;
      tls.ca = spec.tls.ca;
    }
    if (spec.tls.serverName !== undefined) tls.serverName = spec.tls.serverName;
    target.tls = tls;
  }
  return target;
}

/** `tcp`, `none`, `pgsql`, `patroni`, or a mapping { kind, port, path, user }, with their defaults. */
function checkOf(raw: NonNullable<TargetSpec['check']>, targetName: string): HealthCheck {
  const c = typeof raw === 'string' ? { kind: raw } : raw;
  switch (c.kind) {
    case 'tcp':
    case 'none':
      return { kind: c.kind };
    case 'pgsql':
      return { kind: 'pgsql', user: ('user' in c ? c.user : undefined) ?? 'pgroute' };
    case 'patroni':
      return {
        kind: 'patroni',
        port: ('port' in c ? c.port : undefined) ?? 8008,
        path: ('path' in c ? c.path : undefined) ?? (targetName === 'primary' ? '/primary' : targetName === 'replica' ? '/replica' : '/health'),
      };
  }
}

/** Validates every raw definition (see snapshotOf). */
export function buildSnapshot(raws: readonly RawTenant[], alreadyRefused: readonly RefusedTenant[] = [], files: FileCheck = () => undefined): TenantSnapshot {
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
