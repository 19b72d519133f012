// Random tenant churn for the property tests of the plan (plan.property.test.ts) and of the
// reconcile loop (reconcile.property.test.ts): tenants added, replaced, moved, limited, disabled and
// removed, some with cluster members or checks that only a reload can give a backend.

import fc from 'fast-check';
import type { Endpoint, HealthCheck, Target, Tenant } from '../src/model.js';

export const HOSTS = ['10.0.0.1', '10.0.0.2', '10.0.0.3', '2001:db8::1'];
export const endpointArb: fc.Arbitrary<Endpoint> = fc.record({ host: fc.constantFrom(...HOSTS), port: fc.constantFrom(5432, 5433, 6432) });

/** Mostly plain single servers (runtime material); sometimes cluster members or a non-TCP check (reload only). */
export const targetArb: fc.Arbitrary<Target> = fc.oneof(
  { weight: 6, arbitrary: endpointArb },
  {
    weight: 1,
    arbitrary: fc.record({ first: endpointArb, more: fc.array(endpointArb, { minLength: 1, maxLength: 2 }) }).map(({ first, more }): Target => ({
      ...first,
      members: [first, ...more],
      check: { kind: 'patroni', port: 8008, path: '/primary' } satisfies HealthCheck,
    })),
  },
  { weight: 1, arbitrary: endpointArb.map((e): Target => ({ ...e, check: { kind: 'pgsql', user: 'monitor' } })) },
);

export const tenantArb: fc.Arbitrary<Tenant> = fc
  .record({
    id: fc.constantFrom('a', 'b', 'c', 'd', 'e', 'f'),
    primary: targetArb,
    extra: fc.subarray(['pool', 'replica']),
    extraTarget: targetArb,
    maxconn: fc.option(fc.constantFrom(10, 20), { nil: undefined }),
    maxqueue: fc.oneof({ weight: 8, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: fc.constant(5) }),
  })
  .map(({ id, primary, extra, extraTarget, maxconn, maxqueue }) => {
    const targets: Record<string, Target> = { primary };
    for (const name of extra) targets[name] = extraTarget;
    const t: { -readonly [K in keyof Tenant]: Tenant[K] } = { id, enabled: true, targets };
    if (maxconn !== undefined) t.maxconn = maxconn;
    if (maxqueue !== undefined) t.maxqueue = maxqueue;
    return t;
  });

export type Edit =
  | { readonly kind: 'put'; readonly tenant: Tenant }
  | { readonly kind: 'remove'; readonly id: string }
  | { readonly kind: 'move'; readonly id: string; readonly to: Endpoint }
  | { readonly kind: 'limit'; readonly id: string; readonly maxconn: number | undefined }
  | { readonly kind: 'enable'; readonly id: string; readonly enabled: boolean };

export const idArb = fc.constantFrom('a', 'b', 'c', 'd', 'e', 'f');
export const editArb: fc.Arbitrary<Edit> = fc.oneof(
  { weight: 3, arbitrary: tenantArb.map((tenant): Edit => ({ kind: 'put', tenant })) },
  { weight: 3, arbitrary: idArb.map((id): Edit => ({ kind: 'remove', id })) },
  { weight: 2, arbitrary: fc.record({ id: idArb, to: endpointArb }).map(({ id, to }): Edit => ({ kind: 'move', id, to })) },
  { weight: 1, arbitrary: fc.record({ id: idArb, maxconn: fc.option(fc.constantFrom(10, 30), { nil: undefined }) }).map(({ id, maxconn }): Edit => ({ kind: 'limit', id, maxconn })) },
  { weight: 1, arbitrary: fc.record({ id: idArb, enabled: fc.boolean() }).map(({ id, enabled }): Edit => ({ kind: 'enable', id, enabled })) },
);

/** Applies one edit to a tenant set (by id). */
export function edit(tenants: Map<string, Tenant>, e: Edit): void {
  if (e.kind === 'put') tenants.set(e.tenant.id, e.tenant);
  else if (e.kind === 'remove') tenants.delete(e.id);
  else {
    const t = tenants.get(e.id);
    if (t === undefined) return;
    if (e.kind === 'enable') {
      tenants.set(e.id, { ...t, enabled: e.enabled });
    } else if (e.kind === 'move') {
      // A single server moves; a cluster's first member changes with its member list.
      const p = t.targets.primary as Target;
      const primary: Target = p.members === undefined ? { ...p, ...e.to } : { ...p, ...e.to, members: [e.to, ...p.members.slice(1)] };
      tenants.set(e.id, { ...t, targets: { ...t.targets, primary } });
    } else {
      const { maxconn: _drop, ...rest } = t;
      tenants.set(e.id, e.maxconn === undefined ? rest : { ...rest, maxconn: e.maxconn });
    }
  }
}
