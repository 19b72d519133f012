// Declared ownership on Kubernetes (generator/src/sources/kubernetes/ownership.ts, through
// viewOfServices): which namespace may claim which tenant id, decided from the current Services and
// Namespaces alone. Pure: no API server here (kubernetes-source.test.ts runs it against one).

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { RawTenant } from '../../src/tenants.js';
import { buildSnapshot } from '../../src/tenants.js';
import {
  acceptDeclared,
  MAX_ANNOTATION_CHARS,
  MAX_ENTRIES,
  MAX_REPORTED_ENTRIES,
  type NamespaceLike,
  parseTenantsAnnotation,
  readDeclarations,
  TENANTS_ANNOTATION,
} from '../../src/sources/kubernetes/ownership.js';
import { type ServiceLike, viewOfServices } from '../../src/sources/kubernetes/service-claims.js';
import type { SourceView } from '../../src/sources/source.js';

const OPTIONS = { address: 'dns', clusterDomain: 'cluster.local' } as const;
const T0 = '2024-01-01T00:00:00Z';
const T1 = '2024-01-02T00:00:00Z';
const T2 = '2024-01-03T00:00:00Z';

function svc(namespace: string, name: string, tenant: string, created: string, labels: Record<string, string> = {}): ServiceLike {
  return {
    metadata: { namespace, name, creationTimestamp: created, labels: { 'pgroute.tenant': tenant, ...labels } },
    spec: { type: 'ClusterIP', clusterIP: '10.0.0.1', ports: [{ name: 'postgres', port: 5432 }] },
  };
}

function ns(name: string, tenants?: unknown): NamespaceLike {
  return { metadata: { name, ...(tenants === undefined ? {} : { annotations: { [TENANTS_ANNOTATION]: tenants } }) } };
}

function declared(services: readonly ServiceLike[], namespaces: readonly NamespaceLike[]): SourceView {
  return viewOfServices(services, OPTIONS, { mode: 'declared', namespaces });
}

/** tenant id -> the namespace of its primary Service, for what is routed. */
function routed(view: SourceView): Record<string, string> {
  return Object.fromEntries(view.snapshot.tenants.map((t) => [t.id, namespaceOf(view, t.id)]));
}

function namespaceOf(view: SourceView, id: string): string {
  return /^kubernetes service ([^/]+)\//.exec(view.where[id] ?? '')?.[1] ?? '?';
}

describe('the pgroute.io/tenants annotation', () => {
  it('lists ids and prefixes, separated by commas and/or white space', () => {
    expect(parseTenantsAnnotation(' acme, globex\n  initech-*,acme ,,\tumbrella-prod ')).toEqual({
      kind: 'ok',
      ids: ['acme', 'globex', 'umbrella-prod'],
      prefixes: ['initech-'],
      invalid: [],
    });
    expect(parseTenantsAnnotation('')).toEqual({ kind: 'ok', ids: [], prefixes: [], invalid: [] });
  });

  it('skips invalid entries with a reason each, keeping the valid ones', () => {
    const parsed = parseTenantsAnnotation('acme *, Globex, a*b, -x*, ok-*, "quoted", ' + 'x'.repeat(64));
    expect(parsed).toMatchObject({ kind: 'ok', ids: ['acme'], prefixes: ['ok-'] });
    if (parsed.kind !== 'ok') throw new Error('unreachable');
    expect(parsed.invalid).toEqual([
      '"*" would declare every tenant id; list the ids, or use a prefix such as acme-*',
      '"Globex" is not a tenant id (lower-case letters, digits and "-", 1 to 63 characters, starting and ending with a letter or digit), nor a prefix followed by *',
      '"a*b" is not a tenant id (lower-case letters, digits and "-", 1 to 63 characters, starting and ending with a letter or digit), nor a prefix followed by *',
      '"-x*" is not a tenant id prefix followed by * (a prefix is 1 to 62 lower-case letters, digits and "-", starting with a letter or digit)',
      '"\\"quoted\\"" is not a tenant id (lower-case letters, digits and "-", 1 to 63 characters, starting and ending with a letter or digit), nor a prefix followed by *',
      `"${'x'.repeat(64)}" is not a tenant id (lower-case letters, digits and "-", 1 to 63 characters, starting and ending with a letter or digit), nor a prefix followed by *`,
    ]);
  });

  it('refuses a value too large to read, or not a string, as a whole', () => {
    expect(parseTenantsAnnotation('a,'.repeat(MAX_ANNOTATION_CHARS))).toEqual({ kind: 'refused', reason: `the value is ${2 * MAX_ANNOTATION_CHARS} characters long, more than the ${MAX_ANNOTATION_CHARS} read` });
    expect(parseTenantsAnnotation(Array.from({ length: MAX_ENTRIES + 1 }, (_, i) => `t${i}`).join(' '))).toEqual({ kind: 'refused', reason: `the value has ${MAX_ENTRIES + 1} entries, more than the ${MAX_ENTRIES} read` });
    expect(parseTenantsAnnotation(Array.from({ length: MAX_ENTRIES }, (_, i) => `t${i}`).join(' '))).toMatchObject({ kind: 'ok' });
    expect(parseTenantsAnnotation(42)).toEqual({ kind: 'refused', reason: 'the value is not a string' });
  });

  it('reports a Namespace\'s problems under its name, a bounded number of lines', () => {
    const garbage = Array.from({ length: 30 }, (_, i) => `BAD${i}`).join(',');
    const { declarations, refused } = readDeclarations([ns('team-a', `acme, ${garbage}`), ns('team-b', 'x'.repeat(MAX_ANNOTATION_CHARS + 1)), ns('team-c'), { metadata: {} }, {}]);
    expect(declarations.declaring('acme')).toEqual(['team-a']);
    expect(refused.filter((r) => r.where === 'kubernetes namespace team-a')).toHaveLength(MAX_REPORTED_ENTRIES + 1);
    expect(refused[0]).toEqual({ where: 'kubernetes namespace team-a', reason: 'annotation pgroute.io/tenants on Namespace team-a: "BAD0" is not a tenant id (lower-case letters, digits and "-", 1 to 63 characters, starting and ending with a letter or digit), nor a prefix followed by *; that entry is ignored' });
    expect(refused[MAX_REPORTED_ENTRIES]).toEqual({ where: 'kubernetes namespace team-a', reason: `annotation pgroute.io/tenants on Namespace team-a: ${30 - MAX_REPORTED_ENTRIES} more invalid entries are ignored` });
    expect(refused.filter((r) => r.where === 'kubernetes namespace team-b')).toEqual([
      { where: 'kubernetes namespace team-b', reason: `annotation pgroute.io/tenants on Namespace team-b: the value is ${MAX_ANNOTATION_CHARS + 1} characters long, more than the ${MAX_ANNOTATION_CHARS} read; the namespace declares no tenant until it is fixed` },
    ]);
  });

  it('matches ids exactly and prefixes by their start', () => {
    const { declarations } = readDeclarations([ns('a', 'acme acme-*'), ns('b', 'acme-prod'), ns('c', 'globex*'), ns('d', 'g*')]);
    expect(declarations.declaring('acme')).toEqual(['a']);
    expect(declarations.declaring('acme-prod')).toEqual(['a', 'b']);
    expect(declarations.declaring('acme-test')).toEqual(['a']);
    expect(declarations.declaring('acmex')).toEqual([]);
    expect(declarations.declaring('globex')).toEqual(['c', 'd']);
    expect(declarations.declaring('gizmo')).toEqual(['d']);
    expect(declarations.declaring('initech')).toEqual([]);
  });
});

describe('declared ownership', () => {
  const namespaces = [ns('team-a', 'acme'), ns('team-b', 'globex')];

  it('accepts a claim only from the namespace that declares the tenant, whatever the claims\' ages', () => {
    // team-b's Service is the older one: under first-claim it would own acme.
    const services = [svc('team-b', 'acme-impostor', 'acme', T0), svc('team-a', 'acme', 'acme', T1), svc('team-b', 'globex', 'globex', T1)];
    const view = declared(services, namespaces);
    expect(routed(view)).toEqual({ acme: 'team-a', globex: 'team-b' });
    expect(view.snapshot.refused).toEqual([
      {
        where: 'kubernetes service team-b/acme-impostor',
        id: 'acme',
        reason: 'tenant acme is not declared for namespace team-b (annotation pgroute.io/tenants on Namespace team-b); it is declared for namespace team-a',
      },
    ]);
    expect(routed(viewOfServices(services, OPTIONS))).toEqual({ acme: 'team-b', globex: 'team-b' });
  });

  it('closes first-claim\'s race: the owner\'s Service deleted and re-created never hands the tenant to another namespace', () => {
    const a = svc('team-a', 'acme', 'acme', T0);
    const b = svc('team-b', 'acme', 'acme', T1);
    const aAgain = svc('team-a', 'acme', 'acme', T2);
    // first-claim: the race, as documented.
    expect(routed(viewOfServices([a, b], OPTIONS)).acme).toBe('team-a');
    expect(routed(viewOfServices([b], OPTIONS)).acme).toBe('team-b');
    expect(routed(viewOfServices([b, aAgain], OPTIONS)).acme).toBe('team-b');
    // declared: nobody while team-a's Service is gone, team-a again once it is back.
    expect(routed(declared([a, b], namespaces)).acme).toBe('team-a');
    expect(routed(declared([b], namespaces))).toEqual({});
    expect(declared([b], namespaces).snapshot.refused.map((r) => r.reason)).toEqual([
      'tenant acme is not declared for namespace team-b (annotation pgroute.io/tenants on Namespace team-b); it is declared for namespace team-a',
    ]);
    expect(routed(declared([b, aAgain], namespaces)).acme).toBe('team-a');
  });

  it('refuses every claim of a tenant two namespaces declare, naming both', () => {
    const view = declared([svc('team-a', 'acme', 'acme', T0), svc('team-b', 'acme', 'acme', T1)], [ns('team-a', 'acme'), ns('team-b', 'acme-*, acme')]);
    expect(routed(view)).toEqual({});
    const reason = 'tenant acme is declared for 2 namespaces (team-a, team-b; annotation pgroute.io/tenants): every claim of it is refused until one Namespace alone declares it';
    expect(view.snapshot.refused).toEqual([
      { where: 'kubernetes service team-a/acme', id: 'acme', reason },
      { where: 'kubernetes service team-b/acme', id: 'acme', reason },
    ]);
  });

  it('refuses a claim from a namespace that declares nothing, or whose Namespace pgroute does not see', () => {
    const view = declared([svc('team-c', 'initech', 'initech', T0), svc('gone', 'x', 'x', T0)], [ns('team-c')]);
    expect(view.snapshot.tenants).toEqual([]);
    expect(view.snapshot.refused.map((r) => r.reason)).toEqual([
      'tenant x is not declared for namespace gone (annotation pgroute.io/tenants on Namespace gone)',
      'tenant initech is not declared for namespace team-c (annotation pgroute.io/tenants on Namespace team-c)',
    ]);
  });

  it('accepts prefix declarations, targets and all, and refuses a bad tenant id for what it is', () => {
    const view = declared(
      [svc('team-a', 'p', 'acme-prod', T0), svc('team-a', 'p-pool', 'acme-prod', T0, { 'pgroute.target': 'pool' }), svc('team-a', 'bad', 'Acme_Prod', T0)],
      [ns('team-a', 'acme-*')],
    );
    expect(view.snapshot.tenants).toEqual([
      { id: 'acme-prod', enabled: true, targets: { primary: { host: 'p.team-a.svc.cluster.local', port: 5432 }, pool: { host: 'p-pool.team-a.svc.cluster.local', port: 5432 } } },
    ]);
    expect(view.where).toEqual({ 'acme-prod': 'kubernetes service team-a/p' });
    expect(view.snapshot.refused).toEqual([{ where: 'kubernetes service team-a/bad', id: 'Acme_Prod', reason: 'tenant id "Acme_Prod" is invalid: use lower-case letters, digits and "-", 1 to 63 characters, starting and ending with a letter or digit' }]);
  });

  it('keeps refusing what mergeClaims refuses within the declared namespace (a second Service for one target)', () => {
    const view = declared([svc('team-a', 'acme-1', 'acme', T0), svc('team-a', 'acme-2', 'acme', T1)], [ns('team-a', 'acme')]);
    expect(routed(view)).toEqual({ acme: 'team-a' });
    expect(view.snapshot.refused).toEqual([{ where: 'kubernetes service team-a/acme-2', id: 'acme', reason: 'target primary of tenant acme is already served by kubernetes service team-a/acme-1' }]);
  });

  it('acceptDeclared names at most five namespaces in a conflict', () => {
    const names = ['a', 'b', 'c', 'd', 'e', 'f', 'g'];
    const { declarations } = readDeclarations(names.map((n) => ns(n, 'acme')));
    const claim = { tenant: 'acme', target: 'primary', host: 'h', port: 1, enabled: true, where: 'kubernetes service a/acme', owner: 'a', createdAt: 0 };
    expect(acceptDeclared([claim], declarations).refused[0]?.reason).toBe(
      'tenant acme is declared for 7 namespaces (a, b, c, d, e and 2 more; annotation pgroute.io/tenants): every claim of it is refused until one Namespace alone declares it',
    );
  });
});

// ---------------------------------------------------------------------------------------------
// Properties

const NAMESPACES = ['team-a', 'team-b', 'team-c'] as const;
const TENANTS = ['acme', 'acme-prod', 'globex'] as const;
const TIMES = [T0, T1, T2, '2024-01-01T00:00:00Z', 'not a time'];

/** One Service: namespace, name, tenant, target, creation time. */
const serviceArb = fc.record({
  namespace: fc.constantFrom(...NAMESPACES),
  name: fc.constantFrom('s1', 's2', 's3'),
  tenant: fc.constantFrom(...TENANTS, 'Bad_Id'),
  target: fc.constantFrom('primary', 'primary', 'pool'),
  created: fc.constantFrom(...TIMES),
});
type ServiceSpec = typeof serviceArb extends fc.Arbitrary<infer T> ? T : never;

function toService(s: ServiceSpec): ServiceLike {
  return svc(s.namespace, s.name, s.tenant, s.created, s.target === 'primary' ? {} : { 'pgroute.target': s.target });
}

/** Create (or replace) or delete one Service, as an API sees them over time. */
const opArb = fc.oneof(
  serviceArb.map((s) => ({ kind: 'put' as const, s })),
  fc.record({ namespace: fc.constantFrom(...NAMESPACES), name: fc.constantFrom('s1', 's2', 's3') }).map((k) => ({ kind: 'delete' as const, ...k })),
);

const entryArb = fc.oneof(
  fc.constantFrom('acme', 'acme-*', 'globex', 'glob*', 'acme-prod', 'initech', '*', 'ACME', 'acme,', ' ', '\n', 'a'.repeat(70), 'x*y'),
  fc.string({ maxLength: 12 }),
  fc.string({ unit: 'binary', maxLength: 12 }),
);
const annotationArb: fc.Arbitrary<unknown> = fc.oneof(
  fc.constant(undefined),
  fc.array(entryArb, { maxLength: 6 }).chain((entries) => fc.constantFrom(', ', ' ', ',', '\n\t').map((sep) => entries.join(sep))),
  fc.string({ maxLength: 60 }),
  fc.constantFrom(42, null, ['acme'], { acme: true }),
);

describe('declared ownership (properties)', () => {
  it('no sequence of Service creates and deletes outside the declaring namespace ever routes a declared tenant elsewhere', () => {
    // team-a alone declares acme and acme-prod; the others declare anything that does not include them.
    const othersArb = fc.tuple(
      fc.constantFrom(undefined, '', 'globex', 'globex initech', 'Acme', '*', 'acme-prod-*'),
      fc.constantFrom(undefined, 'globex', 'x*', 'ACME-PROD'),
    );
    fc.assert(
      fc.property(othersArb, fc.array(opArb, { minLength: 1, maxLength: 25 }), ([b, c], ops) => {
        const namespaces = [ns('team-a', 'acme, acme-prod'), ns('team-b', b), ns('team-c', c)];
        const live = new Map<string, ServiceLike>();
        for (const op of ops) {
          if (op.kind === 'put') live.set(`${op.s.namespace}/${op.s.name}`, toService(op.s));
          else live.delete(`${op.namespace}/${op.name}`);
          const view = declared([...live.values()], namespaces);
          for (const tenant of view.snapshot.tenants) {
            if (tenant.id !== 'acme' && tenant.id !== 'acme-prod') continue;
            expect(namespaceOf(view, tenant.id)).toBe('team-a');
            for (const target of Object.values(tenant.targets)) expect(target.host).toMatch(/\.team-a\.svc\.cluster\.local$/);
          }
          // And once team-a has no claim of acme, nobody routes it.
          const aClaims = [...live.values()].some((s) => s.metadata?.namespace === 'team-a' && s.metadata.labels?.['pgroute.tenant'] === 'acme');
          if (!aClaims) expect(view.snapshot.tenants.some((r) => r.id === 'acme')).toBe(false);
        }
      }),
      { numRuns: 300 },
    );
  });

  it('is a pure function of the current objects: any order of Services and Namespaces gives the same view', () => {
    const nsArb = fc.uniqueArray(fc.record({ name: fc.constantFrom(...NAMESPACES, 'team-d'), tenants: annotationArb }), { selector: (n) => n.name, maxLength: 4 });
    const servicesArb = fc.uniqueArray(serviceArb, { selector: (s) => `${s.namespace}/${s.name}`, maxLength: 8 });
    fc.assert(
      fc.property(nsArb, servicesArb, fc.integer(), (nss, specs, seed) => {
        const namespaces = nss.map((n) => ns(n.name, n.tenants));
        const services = specs.map(toService);
        const view = declared(services, namespaces);
        const shuffle = <T,>(list: readonly T[]): T[] => {
          const out = [...list];
          let x = seed;
          for (let i = out.length - 1; i > 0; i--) {
            x = (x * 1103515245 + 12345) & 0x7fffffff;
            const j = x % (i + 1);
            [out[i], out[j]] = [out[j]!, out[i]!];
          }
          return out;
        };
        expect(declared(shuffle(services), shuffle(namespaces))).toEqual(view);
      }),
      { numRuns: 300 },
    );
  });

  it('whatever the annotations hold: never throws, bounded reports, and only a sole declaring namespace is routed', () => {
    const nsArb = fc.uniqueArray(fc.record({ name: fc.constantFrom(...NAMESPACES), tenants: annotationArb }), { selector: (n) => n.name, maxLength: 3 });
    const servicesArb = fc.uniqueArray(serviceArb, { selector: (s) => `${s.namespace}/${s.name}`, maxLength: 8 });
    fc.assert(
      fc.property(nsArb, servicesArb, (nss, specs) => {
        const view = declared(specs.map(toService), nss.map((n) => ns(n.name, n.tenants)));
        for (const r of view.snapshot.refused) expect(r.reason.length).toBeLessThan(600);
        for (const name of NAMESPACES) expect(view.snapshot.refused.filter((r) => r.where === `kubernetes namespace ${name}`).length).toBeLessThanOrEqual(MAX_REPORTED_ENTRIES + 1);
        // Independent oracle for the exact-id and prefix forms.
        const declares = (value: unknown, tenant: string): boolean =>
          typeof value === 'string' && value.split(/[\s,]+/).some((e) => e === tenant || (e.endsWith('*') && e.length > 1 && /^[a-z0-9][a-z0-9-]*$/.test(e.slice(0, -1)) && tenant.startsWith(e.slice(0, -1))));
        for (const [id, owner] of Object.entries(routed(view))) {
          const declaring = nss.filter((n) => declares(n.tenants, id)).map((n) => n.name);
          expect(declaring).toEqual([owner]);
        }
      }),
      { numRuns: 500 },
    );
  });
});
