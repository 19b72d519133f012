// Operator access switches over any source: `pgroute tenant disable acme` records the tenant's
// state in <state-dir>/access.json, and the pipeline refuses new connections to it whatever the
// source says, until `pgroute tenant enable acme`. An agent-table change: no reload, no restart.
// Each switch carries a version so that replicas exchanging switches (replicas/access-sync.ts)
// agree on the newest one; the file keeps them across restarts.

import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { TenantSnapshot } from './model.js';
import { writeIfChanged } from './files.js';
import { tenantIdProblem } from './validate.js';
import { ACCESS_STATES, isVersion, nextVersion, type AccessEntry, type AccessState } from './replicas/access-version.js';

export type { AccessEntry, AccessState } from './replicas/access-version.js';

export interface AccessFile {
  /** Tenants refused whatever their source says (the entries whose state is disabled). */
  readonly disabled: readonly string[];
  /** Every switch ever set, enabled ones included (a newer "enabled" must beat an older "disabled"). */
  readonly entries: Readonly<Record<string, AccessEntry>>;
}

export const NO_ACCESS: AccessFile = { disabled: [], entries: {} };

export function accessPath(stateDir: string): string {
  return join(stateDir, 'access.json');
}

/**
 * The switches of a file's text. Entries that are not valid are left out. The first format (a
 * `disabled` list without versions) is read as disabled at version 0: any switch set since wins.
 */
export function parseAccess(text: string): AccessFile {
  const parsed = JSON.parse(text) as { disabled?: unknown; entries?: unknown };
  const entries: Record<string, AccessEntry> = {};
  if (Array.isArray(parsed.disabled)) {
    for (const id of parsed.disabled) if (typeof id === 'string' && tenantIdProblem(id) === undefined) entries[id] = { state: 'disabled', version: 0 };
  }
  if (typeof parsed.entries === 'object' && parsed.entries !== null && !Array.isArray(parsed.entries)) {
    for (const [id, e] of Object.entries(parsed.entries as Record<string, unknown>)) {
      if (tenantIdProblem(id) !== undefined || typeof e !== 'object' || e === null) continue;
      const { state, version } = e as { state?: unknown; version?: unknown };
      if (typeof state === 'string' && (ACCESS_STATES as readonly string[]).includes(state) && isVersion(version)) entries[id] = { state: state as AccessState, version };
    }
  }
  return accessFile(entries);
}

/** An AccessFile from its entries, ids sorted (one text per content). */
export function accessFile(entries: Readonly<Record<string, AccessEntry>>): AccessFile {
  const sorted = Object.fromEntries(Object.entries(entries).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  return { disabled: Object.keys(sorted).filter((id) => sorted[id]?.state === 'disabled'), entries: sorted };
}

export async function readAccess(stateDir: string): Promise<AccessFile> {
  let text: string;
  try {
    text = await readFile(accessPath(stateDir), 'utf8');
  } catch {
    return NO_ACCESS;
  }
  return parseAccess(text);
}

/** Writes the switches (only when their text changed); true when it did. */
export function writeAccess(stateDir: string, access: AccessFile): Promise<boolean> {
  return writeIfChanged(accessPath(stateDir), `${JSON.stringify({ disabled: access.disabled, entries: access.entries }, null, 2)}\n`, 0o644);
}

export interface AccessChange {
  /** False when the tenant already was in that state (its entry is kept as it was). */
  readonly changed: boolean;
  readonly entry: AccessEntry;
}

/**
 * Sets a tenant's state in access.json with a version newer than the one it had and than
 * `knownVersion` (the newest another replica is known to hold, from the replicated table).
 */
export async function setAccessState(stateDir: string, tenant: string, state: AccessState, knownVersion = 0, nowMs = Date.now()): Promise<AccessChange> {
  const current = await readAccess(stateDir);
  const before = current.entries[tenant];
  if (before !== undefined && before.state === state && before.version >= knownVersion) return { changed: false, entry: before };
  const entry: AccessEntry = { state, version: nextVersion(nowMs, Math.max(before?.version ?? 0, knownVersion)) };
  await writeAccess(stateDir, accessFile({ ...current.entries, [tenant]: entry }));
  // A tenant never switched was enabled: enabling it changes nothing, though it is recorded (an
  // entry outranks older switches another replica may still hold).
  return { changed: (before?.state ?? 'enabled') !== state, entry };
}

/** Enabled or disabled, as the `tenant` commands and Docker tenants set it; true when it changed. */
export async function setAccess(stateDir: string, tenant: string, enabled: boolean): Promise<boolean> {
  return (await setAccessState(stateDir, tenant, enabled ? 'enabled' : 'disabled')).changed;
}

/** A tenant's switch: enabled unless access.json says disabled or paused. */
export function accessStateOf(access: AccessFile, tenant: string): AccessState {
  return access.entries[tenant]?.state ?? 'enabled';
}

/** Tenants whose switch says paused (`pgroute tenant pause`): their new connections are held. */
export function pausedTenants(access: AccessFile): string[] {
  return Object.keys(access.entries).filter((id) => access.entries[id]?.state === 'paused');
}

/** The snapshot with the operator's switches applied. */
export function applyAccess(snapshot: TenantSnapshot, access: AccessFile): TenantSnapshot {
  const paused = new Set(pausedTenants(access));
  if (access.disabled.length === 0 && paused.size === 0) return snapshot;
  const off = new Set(access.disabled);
  return {
    ...snapshot,
    tenants: snapshot.tenants.map((t) => (off.has(t.id) && t.enabled ? { ...t, enabled: false } : paused.has(t.id) && t.enabled ? { ...t, paused: true } : t)),
  };
}
