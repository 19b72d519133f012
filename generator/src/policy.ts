// The routing policy section of the tenants file: how the agent finds the tenant and target.

import { compileRoutingPattern, type KeySource, type RoutingPolicy, type TenantLimits, type UserKeyRule } from '../../agent/src/index.js';
import { ConfigError } from './errors.js';
import type { Listener } from './model.js';
import { hostProblem, portProblem, quote, targetNameProblem } from './validate.js';

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

const KEY_SOURCES: readonly KeySource[] = ['options', 'user', 'database'];

export function parsePolicy(raw: unknown, listeners: readonly Listener[]): RoutingPolicy {
  const targetByPort: Record<number, string> = {};
  for (const l of listeners) if (l.target !== undefined) targetByPort[l.port] = l.target;
  const tlsRequiredPorts = listeners.filter((l) => l.tls === 'required').map((l) => l.port);
  const withTls = (p: RoutingPolicy): RoutingPolicy => (tlsRequiredPorts.length > 0 ? { ...p, tlsRequiredPorts } : p);
  if (raw === undefined || raw === null) return withTls({ ...DEFAULT_POLICY, targetByPort });
  if (typeof raw !== 'object' || Array.isArray(raw)) throw new ConfigError('routing must be a mapping (keys, user, defaultTarget, revealDisabled)');
  const r = raw as Record<string, unknown>;
  const known = new Set(['keys', 'user', 'defaultTarget', 'revealDisabled', 'sni']);
  for (const k of Object.keys(r)) if (!known.has(k)) throw new ConfigError(`routing: unknown field ${quote(k)} (known: ${[...known].join(', ')})`);

  let keys: KeySource[] = [...DEFAULT_POLICY.keys];
  if (r.keys !== undefined) {
    if (!Array.isArray(r.keys) || r.keys.length === 0) throw new ConfigError(`routing.keys must be a non-empty list of ${KEY_SOURCES.join(', ')}`);
    keys = r.keys.map((k) => {
      if (!KEY_SOURCES.includes(k as KeySource)) throw new ConfigError(`routing.keys: ${quote(String(k))} is not one of ${KEY_SOURCES.join(', ')}`);
      return k as KeySource;
    });
    if (new Set(keys).size !== keys.length) throw new ConfigError('routing.keys lists a source twice');
  }

  let user: UserKeyRule | undefined;
  if (r.user !== undefined) {
    if (typeof r.user !== 'object' || r.user === null) throw new ConfigError('routing.user must be a mapping { mode: exact | pattern, pattern }');
    const u = r.user as Record<string, unknown>;
    if (u.mode === 'exact') user = { mode: 'exact' };
    else if (u.mode === 'pattern') {
      if (typeof u.pattern !== 'string') throw new ConfigError('routing.user.pattern is required when mode is pattern');
      let re: RegExp;
      try {
        re = compileRoutingPattern('user', u.pattern);
      } catch (err) {
        throw new ConfigError(`routing.user.pattern is not a valid regular expression: ${(err as Error).message}`);
      }
      if (!re.source.includes('(?<tenant>')) throw new ConfigError('routing.user.pattern needs a named group (?<tenant>...)');
      user = { mode: 'pattern', pattern: u.pattern };
    } else throw new ConfigError('routing.user.mode must be exact or pattern');
    if (!keys.includes('user')) keys = ['user', ...keys];
  } else if (keys.includes('user')) {
    user = { mode: 'exact' };
  }

  let defaultTarget = DEFAULT_POLICY.defaultTarget;
  if (r.defaultTarget !== undefined) {
    const p = targetNameProblem(r.defaultTarget);
    if (p) throw new ConfigError(`routing.defaultTarget: ${p}`);
    defaultTarget = r.defaultTarget as string;
  }
  let revealDisabled = false;
  if (r.revealDisabled !== undefined) {
    if (typeof r.revealDisabled !== 'boolean') throw new ConfigError('routing.revealDisabled must be true or false');
    revealDisabled = r.revealDisabled;
  }
  let sni: { pattern: string } | undefined;
  if (r.sni !== undefined) {
    const pattern = typeof r.sni === 'string' ? r.sni : (r.sni as { pattern?: unknown } | null)?.pattern;
    if (typeof pattern !== 'string') throw new ConfigError('routing.sni must be a pattern with a named group (?<tenant>...), e.g. "^(?<tenant>[a-z0-9-]+)\\.db\\.example\\.com$"');
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
  if (!Array.isArray(raw) || raw.length === 0) throw new ConfigError('listeners must be a non-empty list of { port, address?, target? }');
  const seen = new Set<number>();
  return raw.map((entry, i) => {
    if (typeof entry !== 'object' || entry === null) throw new ConfigError(`listeners[${i}] must be a mapping`);
    const e = entry as Record<string, unknown>;
    const pp = portProblem(e.port);
    if (pp) throw new ConfigError(`listeners[${i}]: ${pp}`);
    const port = e.port as number;
    if (seen.has(port)) throw new ConfigError(`listeners[${i}]: port ${port} is listed twice`);
    seen.add(port);
    const address = e.address === undefined ? fallback.address : e.address;
    const hp = hostProblem(address);
    if (hp) throw new ConfigError(`listeners[${i}]: ${hp}`);
    const listener: { -readonly [K in keyof Listener]: Listener[K] } = { address: address as string, port };
    if (e.target !== undefined) {
      const tp = targetNameProblem(e.target);
      if (tp) throw new ConfigError(`listeners[${i}]: ${tp}`);
      listener.target = e.target as string;
    }
    if (e.tls !== undefined) {
      if (e.tls !== 'optional' && e.tls !== 'required') throw new ConfigError(`listeners[${i}]: tls must be optional or required`);
      listener.tls = e.tls;
    }
    if (e.acceptProxy !== undefined) {
      if (typeof e.acceptProxy !== 'boolean') throw new ConfigError(`listeners[${i}]: acceptProxy must be true or false`);
      if (e.acceptProxy) listener.acceptProxy = true;
    }
    const unknown = Object.keys(e).find((k) => !['port', 'address', 'target', 'tls', 'acceptProxy'].includes(k));
    if (unknown !== undefined) throw new ConfigError(`listeners[${i}]: unknown field "${unknown}" (known: port, address, target, tls, acceptProxy)`);
    return listener;
  });
}
