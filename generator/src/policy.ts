// The routing policy section of the tenants file: how the agent finds the tenant and target.

import { compileRoutingPattern, type KeySource, type RoutingPolicy, type TenantLimits, type UserKeyRule } from '../../agent/src/index.js';
import { ConfigError } from './errors.js';
import type { Listener } from './model.js';
import { listenersMessage, listenersSchema, routingMessage, routingSchema } from './tenants-schema.js';

export const DEFAULT_POLICY: RoutingPolicy = {
  keys: ['options', 'database'],
  targetByPort: {},
  defaultTarget: 'primary',
  revealDisabled: false,
};

/**
 * The admission limits of a tenant that sets none (0: no limit), so that one tenant's storm cannot
 * starve the others: a tenant holds at most a quarter of HAProxy's default --maxconn (4096), and
 * opens at most 1000 new connections a second, about a quarter of what the router decides on a
 * 2-core machine (README "Per-tenant policy"). No per-address rate by default: clients behind one
 * NAT address or one application server legitimately open many connections at once.
 */
export const DEFAULT_TENANT_LIMITS: Required<TenantLimits> = {
  maxClientConnections: 1024,
  maxConnectionRate: 1000,
  maxClientConnectionRate: 0,
};

/** A tenant's own limits over the defaults: what HAProxy enforces. */
export function effectiveLimits(own: TenantLimits | undefined): Required<TenantLimits> {
  return { ...DEFAULT_TENANT_LIMITS, ...own };
}

export function parsePolicy(raw: unknown, listeners: readonly Listener[]): RoutingPolicy {
  const targetByPort: Record<number, string> = {};
  for (const l of listeners) if (l.target !== undefined) targetByPort[l.port] = l.target;
  const tlsRequiredPorts = listeners.filter((l) => l.tls === 'required').map((l) => l.port);
  const withTls = (p: RoutingPolicy): RoutingPolicy => (tlsRequiredPorts.length > 0 ? { ...p, tlsRequiredPorts } : p);
  if (raw === undefined || raw === null) return withTls({ ...DEFAULT_POLICY, targetByPort });
  const parsed = routingSchema.safeParse(raw);
  if (!parsed.success) throw new ConfigError(routingMessage(parsed.error));
  const r = parsed.data;

  let keys: KeySource[] = r.keys === undefined ? [...DEFAULT_POLICY.keys] : [...r.keys];
  let user: UserKeyRule | undefined;
  if (r.user !== undefined) {
    if (r.user.mode === 'exact') user = { mode: 'exact' };
    else {
      const pattern = r.user.pattern as string; // the schema requires it with mode pattern
      let re: RegExp;
      try {
        re = compileRoutingPattern('user', pattern);
      } catch (err) {
        throw new ConfigError(`routing.user.pattern is not a valid regular expression: ${(err as Error).message}`);
      }
      if (!re.source.includes('(?<tenant>')) throw new ConfigError('routing.user.pattern needs a named group (?<tenant>...)');
      user = { mode: 'pattern', pattern };
    }
    if (!keys.includes('user')) keys = ['user', ...keys];
  } else if (keys.includes('user')) {
    user = { mode: 'exact' };
  }

  const defaultTarget = r.defaultTarget ?? DEFAULT_POLICY.defaultTarget;
  const revealDisabled = r.revealDisabled ?? false;
  let sni: { pattern: string } | undefined;
  if (r.sni !== undefined) {
    const pattern = typeof r.sni === 'string' ? r.sni : r.sni.pattern;
    try {
      compileRoutingPattern('sni', pattern);
    } catch (err) {
      throw new ConfigError(`routing.sni is not a valid regular expression: ${(err as Error).message}`);
    }
    if (!pattern.includes('(?<tenant>')) throw new ConfigError('routing.sni needs a named group (?<tenant>...)');
    sni = { pattern };
  }
  const policy: RoutingPolicy = user === undefined ? { keys, targetByPort, defaultTarget, revealDisabled } : { keys, user, targetByPort, defaultTarget, revealDisabled };
  return withTls(sni === undefined ? policy : { ...policy, sni });
}

/** Listeners from the file, or one listener on the default address and port. */
export function parseListeners(raw: unknown, fallback: Listener): Listener[] {
  if (raw === undefined || raw === null) return [fallback];
  const parsed = listenersSchema.safeParse(raw);
  if (!parsed.success) throw new ConfigError(listenersMessage(parsed.error));
  return parsed.data.map((e) => {
    const listener: { -readonly [K in keyof Listener]: Listener[K] } = { address: e.address ?? fallback.address, port: e.port };
    if (e.target !== undefined) listener.target = e.target;
    if (e.tls !== undefined) listener.tls = e.tls;
    if (e.acceptProxy === true) listener.acceptProxy = true;
    return listener;
  });
}
