// What a new snapshot changes for the tenants, as an operator reads a plan: tenants added,
// removed, disabled or enabled, targets moved, limits changed. Pure: two tenant lists in, changes out.

import { deepEqual } from '../equal.js';
import type { Endpoint, HealthCheck, Target, Tenant } from '../model.js';

export type ChangeAction =
  | 'add'
  | 'remove'
  | 'enable'
  | 'disable'
  /** A target's address (or cluster members) changed. */
  | 'move'
  | 'add-target'
  | 'remove-target'
  /** maxconn or maxqueue changed. */
  | 'limit'
  /** Health check or backend TLS changed. */
  | 'reconfigure';

export interface TenantChange {
  readonly tenant: string;
  readonly action: ChangeAction;
  readonly target?: string;
  /** What was, in words (an address, a limit, a check); absent for an addition. */
  readonly before?: string;
  /** What will be; absent for a removal. */
  readonly after?: string;
}

function hostPort(e: Endpoint): string {
  return e.host.includes(':') ? `[${e.host}]:${e.port}` : `${e.host}:${e.port}`;
}

function where(t: Target): string {
  return t.members !== undefined && t.members.length > 1 ? t.members.map(hostPort).join(',') : hostPort(t);
}

function checkWords(c: HealthCheck | undefined): string {
  if (c === undefined) return 'check tcp';
  switch (c.kind) {
    case 'tcp':
    case 'none':
      return `check ${c.kind}`;
    case 'pgsql':
      return `check pgsql as ${c.user}`;
    case 'patroni':
      return `check patroni :${c.port}${c.path}`;
  }
}

function setupWords(t: Target): string {
  return `${checkWords(t.check)}, tls ${t.tls === undefined ? 'off' : `verify ${t.tls.verify}`}`;
}

function limitWords(t: Tenant): string {
  return `maxconn ${t.maxconn ?? 'none'}, maxqueue ${t.maxqueue ?? 'none'}`;
}

function targetsWords(t: Tenant): string {
  return Object.keys(t.targets)
    .sort()
    .map((name) => `${name} ${where(t.targets[name] as Target)}`)
    .join(', ');
}

function byId(tenants: readonly Tenant[]): Map<string, Tenant> {
  return new Map(tenants.map((t) => [t.id, t]));
}

/** Every change from `before` to `after`, by tenant id, then in the order of ChangeAction. */
export function tenantChanges(before: readonly Tenant[], after: readonly Tenant[]): TenantChange[] {
  const was = byId(before);
  const will = byId(after);
  const out: TenantChange[] = [];
  for (const id of [...new Set([...was.keys(), ...will.keys()])].sort()) {
    const a = was.get(id);
    const b = will.get(id);
    if (a === undefined && b !== undefined) {
      out.push({ tenant: id, action: 'add', after: `${targetsWords(b)}${b.enabled ? '' : ' (disabled)'}` });
      continue;
    }
    if (b === undefined && a !== undefined) {
      out.push({ tenant: id, action: 'remove', before: targetsWords(a) });
      continue;
    }
    if (a === undefined || b === undefined) continue;
    if (a.enabled !== b.enabled) out.push({ tenant: id, action: b.enabled ? 'enable' : 'disable' });
    for (const target of [...new Set([...Object.keys(a.targets), ...Object.keys(b.targets)])].sort()) {
      const x = a.targets[target];
      const y = b.targets[target];
      if (x === undefined && y !== undefined) out.push({ tenant: id, action: 'add-target', target, after: where(y) });
      else if (y === undefined && x !== undefined) out.push({ tenant: id, action: 'remove-target', target, before: where(x) });
      else if (x !== undefined && y !== undefined) {
        if (x.host !== y.host || x.port !== y.port || !deepEqual(x.members, y.members)) out.push({ tenant: id, action: 'move', target, before: where(x), after: where(y) });
        if (!deepEqual(x.check, y.check) || !deepEqual(x.tls, y.tls)) out.push({ tenant: id, action: 'reconfigure', target, before: setupWords(x), after: setupWords(y) });
      }
    }
    if (a.maxconn !== b.maxconn || a.maxqueue !== b.maxqueue) out.push({ tenant: id, action: 'limit', before: limitWords(a), after: limitWords(b) });
  }
  return out;
}
