// Operator access switches over any source: `pgroute tenant disable acme` writes the tenant id
// into <state-dir>/access.json, and the pipeline refuses new connections to it whatever the
// source says, until `pgroute tenant enable acme`. An agent-table change: no reload, no restart.

import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { TenantSnapshot } from './model.js';
import { writeIfChanged } from './files.js';
import { tenantIdProblem } from './validate.js';

export interface AccessFile {
  /** Tenants refused whatever their source says. */
  readonly disabled: readonly string[];
}

export function accessPath(stateDir: string): string {
  return join(stateDir, 'access.json');
}

export async function readAccess(stateDir: string): Promise<AccessFile> {
  let text: string;
  try {
    text = await readFile(accessPath(stateDir), 'utf8');
  } catch {
    return { disabled: [] };
  }
  const parsed = JSON.parse(text) as { disabled?: unknown };
  const list = Array.isArray(parsed.disabled) ? parsed.disabled.filter((id): id is string => typeof id === 'string' && tenantIdProblem(id) === undefined) : [];
  return { disabled: [...new Set(list)].sort() };
}

export async function setAccess(stateDir: string, tenant: string, enabled: boolean): Promise<boolean> {
  const current = await readAccess(stateDir);
  const disabled = new Set(current.disabled);
  if (enabled) disabled.delete(tenant);
  else disabled.add(tenant);
  return writeIfChanged(accessPath(stateDir), `${JSON.stringify({ disabled: [...disabled].sort() }, null, 2)}\n`, 0o644);
}

/** The snapshot with the operator's switches applied. */
export function applyAccess(snapshot: TenantSnapshot, access: AccessFile): TenantSnapshot {
  if (access.disabled.length === 0) return snapshot;
  const off = new Set(access.disabled);
  return { ...snapshot, tenants: snapshot.tenants.map((t) => (off.has(t.id) && t.enabled ? { ...t, enabled: false } : t)) };
}
