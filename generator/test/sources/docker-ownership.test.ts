// Which Docker containers may declare tenants and how their claims are judged
// (generator/src/sources/docker/ownership.ts), on Engine-shaped container lists: the cases of
// issue 9 item 1, and properties over arbitrary containers (order, creation times and strangers
// never change what an admitted owner serves).

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/errors.js';
import type { ContainerSummary } from '../../src/sources/docker/claims.js';
import { parseRecord } from '../../src/sources/docker/created.js';
import { admissionFromFlags, admit, CREATED_ONLY, describeAdmission, dockerClaims, judgeClaims, parseConstraint, type Admission } from '../../src/sources/docker/ownership.js';
import type { RefusedTenant } from '../../src/model.js';
import { mergeClaims, type Claim } from '../../src/sources/labels.js';
import type { SourceView } from '../../src/sources/source.js';

const hex = (seed: string): string => Buffer.from(seed).toString('hex').padEnd(64, '0').slice(0, 64);

function container(name: string, created: number, labels: Record<string, string>, networks: Record<string, string> = { bridge: '172.17.0.2' }, state = 'running'): ContainerSummary {
  return {
    Id: hex(name),
    Names: [`/${name}`],
    Created: created,
    Labels: labels,
    State: state,
    NetworkSettings: { Networks: Object.fromEntries(Object.entries(networks).map(([net, ip]) => [net, { IPAddress: ip }])) },
  };
}
const where = (c: ContainerSummary): string => `docker container ${(c.Names?.[0] ?? '').slice(1)} (${c.Id.slice(0, 12)})`;

const OPEN: Admission = { exposeByDefault: true, constraints: [], created: new Map() };
const created = (c: ContainerSummary, tenant: string): Admission => ({ ...CREATED_ONLY, created: new Map([[tenant, c.Id]]) });

/** The tenants a view routes: id -> primary host:port, enabled, other targets. */
function routed(view: SourceView): Record<string, { primary: string; enabled: unknown; targets: string[] }> {
  const out: Record<string, { primary: string; enabled: unknown; targets: string[] }> = {};
  for (const t of view.snapshot.tenants) {
    const { primary, ...others } = t.targets;
    out[t.id] = { primary: `${primary?.host ?? ''}:${String(primary?.port)}`, enabled: t.enabled, targets: Object.keys(others).sort() };
  }
  return out;
}
/** The view the Docker source pushes for these containers, with its refusals on top. */
const viewOf = (containers: readonly ContainerSummary[], admission: Admission): SourceView & { refused: readonly RefusedTenant[] } => {
  const { claims, refused } = dockerClaims(containers, { admission });
  const view = mergeClaims(claims, refused);
  return { ...view, refused: view.snapshot.refused };
};

describe('--docker-constraint and --docker-expose-by-default', () => {
  it('reads compose-project, network and label constraints, from flags and the comma-separated variable', () => {
    expect(admissionFromFlags(['compose-project=shop', 'network=pgroute,label=com.example.tier=db'], undefined, undefined)).toEqual({
      exposeByDefault: false,
      constraints: [
        { kind: 'compose-project', name: 'shop' },
        { kind: 'network', name: 'pgroute' },
        { kind: 'label', key: 'com.example.tier', value: 'db' },
      ],
    });
    expect(admissionFromFlags('network=a network=a', undefined, undefined).constraints).toEqual([{ kind: 'network', name: 'a' }]);
    expect(admissionFromFlags(undefined, true, undefined)).toEqual({ exposeByDefault: true, constraints: [] });
    expect(admissionFromFlags(undefined, undefined, 'TRUE').exposeByDefault).toBe(true);
    expect(admissionFromFlags(undefined, undefined, 'false').exposeByDefault).toBe(false);
    expect(describeAdmission(admissionFromFlags('network=pgroute', undefined, undefined))).toBe('containers pgroute created, network=pgroute');
  });

  it('refuses a bad entry with one line naming it, and constraints on the labels that claim a tenant', () => {
    const fails = (v: string, msg: RegExp): void => {
      expect(() => admissionFromFlags(v, undefined, undefined)).toThrow(ConfigError);
      expect(() => admissionFromFlags(v, undefined, undefined)).toThrow(msg);
    };
    fails('host=x', /--docker-constraint \(PGROUTE_DOCKER_CONSTRAINTS\) "host=x": expected compose-project=NAME, network=NAME or label=KEY=VALUE/);
    fails('network=', /a Docker network name/);
    fails('compose-project=Shop', /compose project name/);
    fails('label=tier', /use label=KEY=VALUE/);
    fails('label=pgroute.managed=true', /pgroute\.managed is set by whoever creates a container .* would admit every container/);
    fails('label=xdatabase-proxy-enabled=true', /would admit every container/);
    expect(() => admissionFromFlags(undefined, undefined, 'yes')).toThrow(/PGROUTE_DOCKER_EXPOSE_BY_DEFAULT must be true or false, got "yes"/);
    expect(parseConstraint('label=a=b=c')).toEqual({ kind: 'label', key: 'a', value: 'b=c' });
  });
});

describe('admit', () => {
  const c = container('shop-db-1', 1, { 'pgroute.tenant': 'shop', 'com.docker.compose.project': 'shop', 'com.example.tier': 'db' }, { shop_default: '10.0.0.2' });
  it('admits by record, constraint or expose-by-default, saying which', () => {
    expect(admit(c, 'shop', created(c, 'shop'))).toEqual({ admitted: true, by: 'pgroute tenant create' });
    expect(admit(c, 'shop', { ...CREATED_ONLY, constraints: [{ kind: 'compose-project', name: 'shop' }] })).toEqual({ admitted: true, by: '--docker-constraint compose-project=shop' });
    expect(admit(c, 'shop', { ...CREATED_ONLY, constraints: [{ kind: 'network', name: 'shop_default' }] }).admitted).toBe(true);
    expect(admit(c, 'shop', { ...CREATED_ONLY, constraints: [{ kind: 'label', key: 'com.example.tier', value: 'db' }] }).admitted).toBe(true);
    expect(admit(c, 'shop', OPEN)).toEqual({ admitted: true, by: '--docker-expose-by-default' });
  });

  it('refuses any other container for a tenant pgroute created, even with --docker-expose-by-default', () => {
    const other = container('pgroute-tenant-shop', 2, { 'pgroute.tenant': 'shop', 'pgroute.managed': 'true' });
    const v = admit(c, 'shop', { ...OPEN, created: new Map([['shop', other.Id]]) });
    expect(v).toEqual({ admitted: false, reason: expect.stringContaining(`tenant shop was created by \`pgroute tenant create\` as container ${other.Id.slice(0, 12)}; only that container may claim it`) });
  });

  it('says why a container is not admitted and what would admit it', () => {
    const v = admit({ ...c, Labels: { ...c.Labels, 'pgroute.managed': 'true' } }, 'shop', { ...CREATED_ONLY, constraints: [{ kind: 'network', name: 'pgroute' }] });
    expect(v.admitted).toBe(false);
    expect(!v.admitted && v.reason).toBe(
      'the container may not declare tenants: pgroute did not create it (`pgroute tenant create`) and it matches no --docker-constraint (network=pgroute); ' +
        'its label pgroute.managed proves nothing (anyone can set it); to admit it, start pgroute with a --docker-constraint it matches ' +
        '(this one has compose-project=shop, network=shop_default), or --docker-expose-by-default to admit every container',
    );
  });
});

describe('dockerClaims: the cases of issue 9', () => {
  it('an older stranger labelled acme never becomes primary when the victim is recreated', () => {
    const stranger = container('stranger', 100, { 'pgroute.tenant': 'acme' }, { bridge: '172.17.0.66' });
    const victimV1 = container('acme-db', 200, { 'pgroute.tenant': 'acme', 'pgroute.managed': 'true' }, { bridge: '172.17.0.2' });
    const victimV2 = { ...container('acme-db-v2', 300, { 'pgroute.tenant': 'acme', 'pgroute.managed': 'true' }, { bridge: '172.17.0.3' }) };
    // Created by pgroute: the stranger is refused before, during and after the recreation.
    expect(routed(viewOf([stranger, victimV1], created(victimV1, 'acme')))).toEqual({ acme: { primary: '172.17.0.2:5432', enabled: true, targets: [] } });
    const during = viewOf([stranger], created(victimV2, 'acme'));
    expect(routed(during)).toEqual({});
    expect(during.refused).toEqual([{ where: where(stranger), id: 'acme', reason: expect.stringContaining('only that container may claim it') }]);
    expect(routed(viewOf([stranger, victimV2], created(victimV2, 'acme')))).toEqual({ acme: { primary: '172.17.0.3:5432', enabled: true, targets: [] } });

    // Both admitted (--docker-expose-by-default): contested, both refused, never the older one.
    const contested = viewOf([victimV2, stranger], OPEN);
    expect(routed(contested)).toEqual({});
    expect(contested.refused.map((r) => [r.where, r.reason])).toEqual([
      [where(victimV2), `target primary of tenant acme is claimed by 2 containers (also ${where(stranger)}): every such claim is refused until one container alone claims it (pgroute never prefers the older one)`],
      [where(stranger), `target primary of tenant acme is claimed by 2 containers (also ${where(victimV2)}): every such claim is refused until one container alone claims it (pgroute never prefers the older one)`],
    ]);
  });

  it('a claim with a bad port or value is refused alone: the tenant stays', () => {
    const acme = container('acme-db', 1, { 'pgroute.tenant': 'acme', 'com.docker.compose.project': 'acme' });
    const badPool = container('acme-pool', 2, { 'pgroute.tenant': 'acme', 'pgroute.target': 'pool', 'pgroute.port': 'http', 'com.docker.compose.project': 'acme' }, { bridge: '172.17.0.5' });
    const badPrimary = container('evil', 0, { 'pgroute.tenant': 'acme', 'pgroute.port': '0', 'com.docker.compose.project': 'acme' }, { bridge: '172.17.0.6' });
    const badEnabled = container('acme-ro', 3, { 'pgroute.tenant': 'acme', 'pgroute.target': 'replica', 'pgroute.enabled': 'maybe', 'com.docker.compose.project': 'acme' }, { bridge: '172.17.0.7' });
    const admission = { ...CREATED_ONLY, constraints: [{ kind: 'compose-project', name: 'acme' } as const] };
    const view = viewOf([acme, badPool, badPrimary, badEnabled], admission);
    expect(routed(view)).toEqual({ acme: { primary: '172.17.0.2:5432', enabled: true, targets: [] } });
    expect(view.refused.map((r) => [r.where, r.reason])).toEqual([
      [where(badPool), 'port must be an integer from 1 to 65535, got "http"; this claim alone is refused'],
      [where(badEnabled), 'pgroute.enabled must be true or false, got "maybe"; this claim alone is refused'],
      [where(badPrimary), 'port must be an integer from 1 to 65535, got 0; this claim alone is refused'],
    ]);
  });

  it("another container's pgroute.enabled=false withdraws its own target, never the tenant", () => {
    const acme = container('acme-db', 1, { 'pgroute.tenant': 'acme' });
    const pool = container('acme-pool', 2, { 'pgroute.tenant': 'acme', 'pgroute.target': 'pool', 'pgroute.port': '6432' }, { bridge: '172.17.0.4' });
    const off = container('stranger', 0, { 'pgroute.tenant': 'acme', 'pgroute.target': 'replica', 'pgroute.enabled': 'false' }, { bridge: '172.17.0.9' });
    const view = viewOf([acme, pool, off], OPEN);
    expect(routed(view)).toEqual({ acme: { primary: '172.17.0.2:5432', enabled: true, targets: ['pool'] } });
    expect(view.refused).toEqual([{ where: where(off), id: 'acme', reason: expect.stringMatching(/^pgroute\.enabled=false withdraws target replica of tenant acme alone/) }]);
    // The primary's own switch still turns the tenant off.
    const primaryOff = container('acme-db', 1, { 'pgroute.tenant': 'acme', 'pgroute.enabled': 'false' });
    expect(routed(viewOf([primaryOff, pool], OPEN)).acme?.enabled).toBe(false);
  });

  it('a container that is not admitted is refused with its reason and changes nothing', () => {
    const acme = container('pgroute-tenant-acme', 1, { 'pgroute.tenant': 'acme', 'pgroute.managed': 'true' });
    const stranger = container('stranger', 0, { 'pgroute.tenant': 'acme', 'pgroute.target': 'pool', 'pgroute.enabled': 'false', 'pgroute.managed': 'true' });
    const badLabels = container('mysql', 0, { 'xdatabase-proxy-enabled': 'true', 'xdatabase-proxy-database-type': 'mysql' });
    const view = viewOf([acme, stranger, badLabels], created(acme, 'acme'));
    expect(routed(view)).toEqual({ acme: { primary: '172.17.0.2:5432', enabled: true, targets: [] } });
    expect(view.refused.map((r) => r.where)).toEqual([where(badLabels), where(stranger)]);
    expect(view.refused[0]?.reason).toMatch(/^the container may not declare tenants/); // not its label problem: it is not admitted
  });

  it('keeps reading: the address, xdatabase-proxy labels and label problems of admitted containers', () => {
    const x = container('globex', 1, { 'xdatabase-proxy-enabled': 'true', 'xdatabase-proxy-deployment-id': 'globex', 'xdatabase-proxy-destination-port': '6543' });
    const mysql = container('mysql', 0, { 'xdatabase-proxy-enabled': 'true', 'xdatabase-proxy-database-type': 'mysql' });
    const hostNet = container('hostnet', 0, { 'pgroute.tenant': 'h' }, {});
    const view = viewOf([x, mysql, hostNet], OPEN);
    expect(routed(view)).toEqual({ globex: { primary: '172.17.0.2:6543', enabled: true, targets: [] } });
    expect(view.refused.map((r) => r.reason)).toEqual([expect.stringContaining('no IP address'), expect.stringContaining('PostgreSQL only')]);
  });
});

describe('records of `tenant create`', () => {
  it('parses <id>.container files holding a full container id, and nothing else', () => {
    expect(parseRecord('acme.container', `${'a'.repeat(64)}\n`)).toEqual(['acme', 'a'.repeat(64)]);
    expect(parseRecord('acme.password', 'a'.repeat(64))).toBeUndefined();
    expect(parseRecord('Acme.container', 'a'.repeat(64))).toBeUndefined();
    expect(parseRecord('acme.container', 'a'.repeat(12))).toBeUndefined();
    expect(parseRecord('acme.container.123.tmp', 'a'.repeat(64))).toBeUndefined();
  });
});

// Properties over arbitrary containers.
const TENANTS = ['acme', 'globex', 'x'];
const labelValue = fc.oneof(fc.constantFrom('acme', 'globex', 'primary', 'pool', 'replica', '5432', '6432', '0', 'true', 'false', 'maybe', 'db'), fc.string({ maxLength: 8 }));
const labelsArb = fc.record(
  {
    'pgroute.tenant': fc.oneof(fc.constantFrom(...TENANTS), labelValue),
    'pgroute.target': fc.constantFrom('primary', 'pool', 'replica', 'Bad'),
    'pgroute.port': fc.oneof(fc.constantFrom('5432', '6432'), labelValue),
    'pgroute.enabled': fc.oneof(fc.constantFrom('true', 'false'), labelValue),
    'pgroute.maxconn': fc.oneof(fc.constantFrom('10', '0'), labelValue),
    'pgroute.managed': fc.constant('true'),
    'com.docker.compose.project': fc.constantFrom('shop', 'other'),
  },
  { requiredKeys: ['pgroute.tenant'] },
);
const containersArb = fc
  .array(fc.tuple(labelsArb, fc.nat(1_000_000), fc.constantFrom('pgroute', 'bridge'), fc.nat(250)), { maxLength: 12 })
  .map((list) => list.map(([labels, createdAt, net, ip], i) => container(`c${i}`, createdAt, labels, { [net]: `10.0.${i}.${ip + 1}` })));
const admissionArb = fc.record({
  exposeByDefault: fc.boolean(),
  constraints: fc.subarray([{ kind: 'compose-project', name: 'shop' } as const, { kind: 'network', name: 'pgroute' } as const]),
});

/** What a judgement serves, without the fields that must not matter (creation time). */
function served(claims: readonly Claim[]): string[] {
  return claims.map((c) => JSON.stringify([c.tenant, c.target, c.host, c.port, c.enabled, c.maxconn, c.where])).sort();
}

describe('properties', () => {
  it('neither the order of the containers nor their creation times change the outcome', () => {
    fc.assert(
      fc.property(containersArb, admissionArb, fc.array(fc.nat(2_000_000), { minLength: 12, maxLength: 12 }), fc.nat(), (cs, a, times, seed) => {
        const admission: Admission = { ...a, created: new Map() };
        const base = dockerClaims(cs, { admission });
        const shuffled = [...cs].sort((x, y) => ((x.Id.charCodeAt(2) * 31 + seed) % 7) - ((y.Id.charCodeAt(2) * 31 + seed) % 7)).map((c, i) => ({ ...c, Created: times[i] ?? 0 }));
        const other = dockerClaims(shuffled, { admission });
        expect(served(other.claims)).toEqual(served(base.claims));
        expect(other.refused).toEqual(base.refused);
      }),
      { numRuns: 300 },
    );
  });

  it('accepted claims hold valid values, one per target of a tenant, and every claim is either accepted or refused', () => {
    fc.assert(
      fc.property(containersArb, admissionArb, (cs, a) => {
        const { claims, refused } = dockerClaims(cs, { admission: { ...a, created: new Map() } });
        const keys = claims.map((c) => `${c.tenant}/${c.target}`);
        expect(new Set(keys).size).toBe(keys.length);
        for (const c of claims) {
          expect(c.tenant).toMatch(/^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/);
          expect(Number.isInteger(c.port) && (c.port as number) >= 1 && (c.port as number) <= 65535).toBe(true);
          expect(c.enabled === undefined || typeof c.enabled === 'boolean').toBe(true);
          if (c.target !== 'primary') expect(c.enabled).toBeUndefined();
        }
        // One outcome per labelled container: accepted, or refused with a reason.
        expect(claims.length + refused.length).toBe(cs.length);
        for (const r of refused) expect(r.reason.length).toBeGreaterThan(0);
      }),
      { numRuns: 300 },
    );
  });

  it('strangers, whatever their labels and age, never change what a container pgroute created serves', () => {
    fc.assert(
      fc.property(containersArb, fc.boolean(), fc.constantFrom('true', 'false'), (strangers, expose, enabled) => {
        const mine = container('pgroute-tenant-acme', 1_500_000, { 'pgroute.tenant': 'acme', 'pgroute.port': '5432', 'pgroute.enabled': enabled, 'pgroute.managed': 'true' }, { 'pgroute-tenants': '172.30.0.2' });
        const admission: Admission = { exposeByDefault: expose, constraints: [{ kind: 'compose-project', name: 'shop' }], created: new Map([['acme', mine.Id]]) };
        const alone = routed(viewOf([mine], admission)).acme;
        expect(alone).toEqual({ primary: '172.30.0.2:5432', enabled: enabled === 'true', targets: [] });
        expect(routed(viewOf([...strangers, mine], admission)).acme).toEqual(alone);
      }),
      { numRuns: 300 },
    );
  });

  it('a container that is not admitted changes nothing but its own refusal', () => {
    fc.assert(
      fc.property(containersArb, containersArb, (admittedOnes, strangers) => {
        const inShop = admittedOnes.map((c) => ({ ...c, Labels: { ...c.Labels, 'com.docker.compose.project': 'shop' } }));
        const outside = strangers.map((c, i) => ({ ...c, Id: hex(`s${i}`), Names: [`/s${i}`], Labels: { ...c.Labels, 'com.docker.compose.project': 'other' }, NetworkSettings: { Networks: { bridge: { IPAddress: '10.9.9.9' } } } }));
        const admission: Admission = { exposeByDefault: false, constraints: [{ kind: 'compose-project', name: 'shop' }], created: new Map() };
        const base = dockerClaims(inShop, { admission });
        const withStrangers = dockerClaims([...outside, ...inShop], { admission });
        expect(served(withStrangers.claims)).toEqual(served(base.claims));
        const ownWheres = new Set(outside.map(where));
        expect(withStrangers.refused.filter((r) => !ownWheres.has(r.where))).toEqual(base.refused);
        expect(withStrangers.refused.filter((r) => ownWheres.has(r.where))).toHaveLength(outside.length);
      }),
      { numRuns: 300 },
    );
  });

  it('judgeClaims does not depend on the order of the claims', () => {
    fc.assert(
      fc.property(containersArb, (cs) => {
        const { claims } = dockerClaims(cs, { admission: { exposeByDefault: true, constraints: [], created: new Map() } });
        const reversed = judgeClaims([...claims].reverse());
        expect(served(reversed.accepted)).toEqual(served(judgeClaims(claims).accepted));
      }),
      { numRuns: 100 },
    );
  });
});
