// The TLS server name (SNI) as a tenant key. Pure. The pattern is compiled once per policy object.

import { compileRoutingPattern } from './patterns.js';
import type { RoutingPolicy } from './types.js';

export interface SniKey {
  readonly tenant: string;
  readonly target: string | undefined;
}

const compiled = new WeakMap<RoutingPolicy, RegExp | null>();

function patternOf(policy: RoutingPolicy): RegExp | null {
  let re = compiled.get(policy);
  if (re === undefined) {
    try {
      re = policy.sni === undefined ? null : compileRoutingPattern('sni', policy.sni.pattern);
    } catch {
      re = null; // validated when the table is built; an unusable pattern names nothing
    }
    compiled.set(policy, re);
  }
  return re;
}

/** The tenant (and target) a server name gives under the policy, if it matches. */
export function sniKey(policy: RoutingPolicy, sni: string | undefined): SniKey | undefined {
  if (sni === undefined || sni === '') return undefined;
  const re = patternOf(policy);
  if (re === null) return undefined;
  const groups = re.exec(sni)?.groups;
  const tenant = groups?.tenant;
  if (tenant === undefined || tenant === '') return undefined;
  // DNS names are case-insensitive; tenant ids are lower-case.
  return { tenant: tenant.toLowerCase(), target: groups?.target === '' ? undefined : groups?.target?.toLowerCase() };
}
