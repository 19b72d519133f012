// Turns raw tenant definitions (from any source) into validated Tenants, refusing bad ones with
// their reason. One bad definition never stops the others.

import type { Endpoint, RefusedTenant, Tenant, TenantSnapshot } from './model.js';
import {
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

const TENANT_KEYS = new Set(['id', 'host', 'port', 'enabled', 'targets', 'maxconn']);
const MAX_TARGETS = 8;

export type TenantResult = { ok: true; tenant: Tenant } | { ok: false; refused: RefusedTenant };

export function parseTenant(raw: RawTenant): TenantResult {
  const refuse = (reason: string, id?: string): TenantResult => ({
    ok: false,
    refused: id === undefined ? { where: raw.where, reason } : { where: raw.where, id, reason },
  });
  const v = raw.value;
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return refuse('a tenant must be a mapping with id, host and port');
  const obj = v as Record<string, unknown>;
  const idProblem = tenantIdProblem(obj.id);
  if (idProblem) return refuse(idProblem);
  const id = obj.id as string;
  for (const key of Object.keys(obj)) {
    if (!TENANT_KEYS.has(key)) return refuse(`unknown field ${quote(key)} (known: ${[...TENANT_KEYS].join(', ')})`, id);
  }
  const primary = parseEndpoint(obj);
  if (typeof primary === 'string') return refuse(primary, id);
  const targets: Record<string, Endpoint> = { primary };
  if (obj.targets !== undefined) {
    if (typeof obj.targets !== 'object' || obj.targets === null || Array.isArray(obj.targets)) {
      return refuse('targets must be a mapping of target name to { host, port }', id);
    }
    const entries = Object.entries(obj.targets as Record<string, unknown>);
    if (entries.length > MAX_TARGETS) return refuse(`at most ${MAX_TARGETS} extra targets are allowed`, id);
    for (const [name, value] of entries) {
      const nameProblem = targetNameProblem(name);
      if (nameProblem) return refuse(nameProblem, id);
      if (name === 'primary') return refuse('the primary target is the tenant\'s own host and port; do not repeat it under targets', id);
      if (typeof value !== 'object' || value === null) return refuse(`target ${name} must be a mapping with host and port`, id);
      const endpoint = parseEndpoint(value as Record<string, unknown>);
      if (typeof endpoint === 'string') return refuse(`target ${name}: ${endpoint}`, id);
      targets[name] = endpoint;
    }
  }
  let enabled = true;
  if (obj.enabled !== undefined) {
    if (typeof obj.enabled !== 'boolean') return refuse('enabled must be true or false', id);
    enabled = obj.enabled;
  }
  let maxconn: number | undefined;
  if (obj.maxconn !== undefined) {
    const problem = positiveIntProblem('maxconn', obj.maxconn, 100_000);
    if (problem) return refuse(problem, id);
    maxconn = obj.maxconn as number;
  }
  const tenant: Tenant = maxconn === undefined ? { id, enabled, targets } : { id, enabled, targets, maxconn };
  return { ok: true, tenant };
}

function parseEndpoint(obj: Record<string, unknown>): Endpoint | string {
  const hp = hostProblem(obj.host);
  if (hp) return hp;
  const pp = portProblem(obj.port);
  if (pp) return pp;
  return { host: obj.host as string, port: obj.port as number };
}

/** Validates every raw definition; later duplicates of an id are refused, the first one kept. */
export function buildSnapshot(raws: readonly RawTenant[], alreadyRefused: readonly RefusedTenant[] = []): TenantSnapshot {
  const tenants: Tenant[] = [];
  const refused: RefusedTenant[] = [...alreadyRefused];
  const seen = new Map<string, string>();
  for (const raw of raws) {
    const result = parseTenant(raw);
    if (!result.ok) {
      refused.push(result.refused);
      continue;
    }
    const first = seen.get(result.tenant.id);
    if (first !== undefined) {
      refused.push({ where: raw.where, id: result.tenant.id, reason: `tenant id ${result.tenant.id} is already defined at ${first}` });
      continue;
    }
    seen.set(result.tenant.id, raw.where);
    tenants.push(result.tenant);
  }
  tenants.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  return { tenants, refused };
}
