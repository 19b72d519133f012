// Builders for decision tests: route tables, policies and DecodedPreamble objects (no bytes).

import type { DecodedPreamble } from '../../src/pg/preamble-types.js';
import type { ConnectionFacts, RouteTable, RoutingPolicy, TenantRoute } from '../../src/decision/types.js';

export const PATTERN = '^(?<role>[^.]+)\\.(?<tenant>[a-z0-9-]+)(?:\\.(?<target>[a-z]+))?$';

export function tenant(id: string, enabled: boolean, targets: readonly string[] = ['primary']): TenantRoute {
  const backends: Record<string, string> = {};
  for (const t of targets) backends[t] = `be_${id}_${t}`;
  return { id, enabled, backends };
}

export const TENANTS: readonly TenantRoute[] = [
  tenant('acme', true, ['primary', 'pool', 'replica']),
  tenant('globex', true, ['primary', 'pool']),
  tenant('initech', false, ['primary', 'pool']),
  tenant('umbrella', true, ['primary']),
];

export function policy(overrides: Partial<RoutingPolicy> = {}): RoutingPolicy {
  return {
    keys: ['options', 'user', 'database'],
    user: { mode: 'pattern', pattern: PATTERN },
    targetByPort: { 6432: 'pool', 5433: 'replica' },
    defaultTarget: 'primary',
    revealDisabled: false,
    ...overrides,
  };
}

export function table(p: RoutingPolicy = policy(), tenants: readonly TenantRoute[] = TENANTS): RouteTable {
  return { version: 'v-test', policy: p, tenants: new Map(tenants.map((t) => [t.id, t])) };
}

export function startup(params: Record<string, string>): DecodedPreamble {
  return { kind: 'startup', protocol: { major: 3, minor: 0 }, params: new Map(Object.entries(params)) };
}

export function facts(preamble: DecodedPreamble, frontendPort = 5432, clientAddress = '203.0.113.7'): ConnectionFacts {
  return { preamble, clientAddress, frontendPort };
}

export const CANCEL: DecodedPreamble = { kind: 'cancel', processId: 4242, secretKey: Buffer.from([1, 2, 3, 4]) };
