// Property: whatever strings Docker container labels or Kubernetes Service labels hold as values
// (pgroute.tenant, .target, .port, .enabled, .maxconn, xdatabase-proxy-deployment-id,
// -destination-port), the labelled object is either refused with a reason or accepted with values
// that match the strict rules; and the haproxy.cfg rendered from the result holds no line the
// template structure did not produce.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { desiredOccupants, layoutForReload, EMPTY_LAYOUT } from '../src/layout.js';
import type { Deployment, TenantSnapshot } from '../src/model.js';
import { DEFAULT_POLICY } from '../src/policy.js';
import { renderConfig } from '../src/render/haproxy-config.js';
import { routeTableDocument } from '../src/render/route-table.js';
import { defaultSettings, statePaths } from '../src/settings.js';
import { containerClaims, containerWhere, type ContainerSummary } from '../src/sources/docker/claims.js';
import { LABEL, mergeClaims, XDB_LABEL } from '../src/sources/labels.js';
import { serviceWhere, viewOfServices, type ServiceLike } from '../src/sources/kubernetes/service-claims.js';
import { NO_EXTERNAL_NAMES, parseAllowedPorts } from '../src/sources/kubernetes/target-policy.js';
import type { SourceView } from '../src/sources/source.js';
import { buildSnapshot } from '../src/tenants.js';
import { declaredBackends, FALLBACK, layoutOf, splitTenantBackends, TEMPLATES } from './support.js';

const RUNS = 300;
const CONTROL_ID = 'zz-control';
const SPARES = 2;

// The strict rules, restated independently of validate.ts and labels.ts.
const STRICT_ID = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;
const STRICT_TARGET = /^[a-z][a-z0-9-]{0,30}$/;
const strictPort = (v: string): boolean => /^\d{1,6}$/.test(v) && Number(v) >= 1 && Number(v) <= 65535;
const strictMaxconn = (v: string): boolean => /^\d{1,6}$/.test(v) && Number(v) >= 1 && Number(v) <= 100_000;
const strictBool = (v: string): boolean => v.toLowerCase() === 'true' || v.toLowerCase() === 'false';

const nasty = fc.constantFrom(
  'a', 'z', '0', '9', '-', '.', ':', '_', 'A', ' ', '\t', '\n', '\r', '\r\n', '"', "'", '`', '%[', '%[env(HOME)]', '%', '[', ']',
  '#', '\0', '\\', '{{', '}}', '$', '${HOME}', 'é', 'ß', '\u2028', '\u00a0', '\ufeff', '😀', 'ı', '\u0130', ';', ',', '\ud800',
  '\nbackend evil\n', '\n    server x 6.6.6.6:1', ' check', ' maxconn 1', ' disabled', '/', 'lua-load /tmp/x.lua', 'true', '5432',
);
const valueArb: fc.Arbitrary<string> = fc.oneof(
  fc.array(nasty, { maxLength: 12 }).map((parts) => parts.join('')),
  fc.string({ maxLength: 40 }),
  fc.string({ unit: 'grapheme', maxLength: 20 }),
  fc.string({ unit: 'binary', maxLength: 20 }),
  fc.stringMatching(/^[a-z0-9-]{1,70}$/),
  fc.integer({ min: -5, max: 200_000 }).map(String),
  fc.tuple(fc.integer({ min: 0, max: 70_000 }), nasty).map(([n, s]) => `${n}${s}`),
  fc.constantFrom('a'.repeat(300), 'x'.repeat(64), '9'.repeat(300), 'primary', 'pool', '', ' 5432', '5432 ', '05432', '0x10', '1e3', '+5', 'TRUE', 'False', 'yes'),
  fc.string({ minLength: 300, maxLength: 300 }),
  fc.string({ unit: 'binary', minLength: 300, maxLength: 300 }),
);
/** Often a plausible value, sometimes absent, often hostile. */
const hostile = (good: fc.Arbitrary<string>): fc.Arbitrary<string | undefined> => fc.oneof(fc.constant(undefined), good, valueArb);
/** Absent or plausible: keeps accepted definitions common enough to check their values. */
const plausible = (good: fc.Arbitrary<string>): fc.Arbitrary<string | undefined> => fc.option(good, { nil: undefined });

interface Case {
  readonly labels: Record<string, string>;
  /** An older, valid primary claim of the same tenant (so a non-primary target can be accepted). */
  readonly companion: boolean;
}

const caseOf = (opt: (good: fc.Arbitrary<string>) => fc.Arbitrary<string | undefined>): fc.Arbitrary<Case> => fc
  .record({
    tenant: opt(fc.constantFrom('acme', 'a', 'tenant-1')),
    target: opt(fc.constantFrom('primary', 'pool', 'replica')),
    port: opt(fc.constantFrom('5432', '6432', '1', '65535', '0', '65536')),
    enabled: opt(fc.constantFrom('true', 'false', 'FALSE', 'True')),
    maxconn: opt(fc.constantFrom('1', '20', '100000', '100001', '0')),
    xdbEnabled: fc.constantFrom(undefined, 'true', 'TRUE', 'false', 'yes'),
    xdbId: opt(fc.constantFrom('acme', 'globex')),
    xdbType: fc.constantFrom(undefined, 'postgresql', 'PostgreSQL', 'mysql'),
    xdbPooled: fc.constantFrom(undefined, 'true', 'false'),
    xdbPort: opt(fc.constantFrom('5432', '6432', '0')),
    companion: fc.boolean(),
  })
  .map((r) => {
    const labels: Record<string, string> = {};
    const put = (k: string, v: string | undefined): void => {
      if (v !== undefined) labels[k] = v;
    };
    put(LABEL.tenant, r.tenant);
    put(LABEL.target, r.target);
    put(LABEL.port, r.port);
    put(LABEL.enabled, r.enabled);
    put(LABEL.maxconn, r.maxconn);
    put(XDB_LABEL.enabled, r.xdbEnabled);
    put(XDB_LABEL.deploymentId, r.xdbId);
    put(XDB_LABEL.databaseType, r.xdbType);
    put(XDB_LABEL.pooled, r.xdbPooled);
    put(XDB_LABEL.destinationPort, r.xdbPort);
    return { labels, companion: r.companion };
  })
  .filter((c) => c.labels[LABEL.tenant] !== CONTROL_ID && c.labels[XDB_LABEL.deploymentId] !== CONTROL_ID);
const caseArb: fc.Arbitrary<Case> = fc.oneof({ arbitrary: caseOf(hostile), weight: 3 }, { arbitrary: caseOf(plausible), weight: 1 });

/** What the labels should give, by the documented vocabulary, restated here. */
interface Expected {
  /** The object carries tenant labels at all. */
  readonly labelled: boolean;
  readonly tenant: string;
  readonly target: string;
  /** undefined: the default port. */
  readonly port: string | undefined;
  readonly enabled: string | undefined;
  readonly maxconn: string | undefined;
  /** Every value strict and the two vocabularies consistent. */
  readonly strict: boolean;
}

function expected(labels: Record<string, string>): Expected {
  const own = labels[LABEL.tenant];
  const xdbOn = labels[XDB_LABEL.enabled]?.toLowerCase() === 'true';
  const xdbId = xdbOn ? labels[XDB_LABEL.deploymentId] : undefined;
  const type = labels[XDB_LABEL.databaseType];
  const tenant = own ?? xdbId ?? '';
  const target = labels[LABEL.target] ?? (xdbOn && labels[XDB_LABEL.pooled]?.toLowerCase() === 'true' ? 'pool' : 'primary');
  const port = labels[LABEL.port] ?? (xdbOn ? labels[XDB_LABEL.destinationPort] : undefined);
  const enabled = labels[LABEL.enabled];
  const maxconn = labels[LABEL.maxconn];
  const xdbOk = !xdbOn || ((type === undefined || type.toLowerCase() === 'postgresql') && tenant !== '' && (own === undefined || xdbId === undefined || own === xdbId));
  const strict =
    xdbOk &&
    STRICT_ID.test(tenant) &&
    STRICT_TARGET.test(target) &&
    (port === undefined || strictPort(port)) &&
    (enabled === undefined || strictBool(enabled)) &&
    // Only the primary's limit counts (a tenant has one per-server limit).
    (target !== 'primary' || maxconn === undefined || strictMaxconn(maxconn));
  return { labelled: own !== undefined || xdbOn, tenant, target, port, enabled, maxconn, strict };
}

// ---- the objects --------------------------------------------------------------------------------

const DOCKER_IP = '172.18.0.5';
const COMPANION_IP = '172.18.0.4';
const CONTROL_IP = '172.18.0.3';

function container(name: string, id: string, created: number, labels: Record<string, string>, ip: string): ContainerSummary {
  return { Id: id.padEnd(64, '0'), Names: [`/${name}`], Created: created, Labels: labels, State: 'running', NetworkSettings: { Networks: { bridge: { IPAddress: ip } } } };
}

interface Built {
  readonly view: SourceView;
  readonly subjectWhere: string;
  readonly companionWhere: string;
  /** The address the subject's claim must carry when accepted. */
  readonly subjectHost: string;
  /** The port it gets without a port label. */
  readonly defaultPort: number;
}

function dockerView(c: Case): Built {
  const subject = container('subject', 'a1', 1_700_000_100, c.labels, DOCKER_IP);
  const companion = container('companion', 'b2', 1_700_000_000, { [LABEL.tenant]: expected(c.labels).tenant || 'acme' }, COMPANION_IP);
  const control = container('control', 'c3', 1_700_000_000, { [LABEL.tenant]: CONTROL_ID, [LABEL.maxconn]: '7' }, CONTROL_IP);
  const list = c.companion ? [control, companion, subject] : [subject, control];
  const { claims, refused } = containerClaims(list);
  return { view: mergeClaims(claims, refused), subjectWhere: containerWhere(subject), companionWhere: containerWhere(companion), subjectHost: DOCKER_IP, defaultPort: 5432 };
}

const SERVICE_PORT = 5433;
function service(name: string, created: string, labels: Record<string, string>, clusterIP: string): ServiceLike {
  return {
    metadata: { name, namespace: 'team-a', labels, creationTimestamp: created },
    spec: { type: 'ClusterIP', clusterIP, ports: [{ name: 'postgres', port: SERVICE_PORT, targetPort: 5432 }] },
  };
}

function kubernetesView(c: Case, address: 'dns' | 'cluster-ip'): Built {
  const subject = service('subject', '2024-01-02T00:00:00Z', c.labels, '10.96.0.10');
  const companion = service('companion', '2024-01-01T00:00:00Z', { [LABEL.tenant]: expected(c.labels).tenant || 'acme' }, '10.96.0.11');
  const control = service('control', '2024-01-01T00:00:00Z', { [LABEL.tenant]: CONTROL_ID, [LABEL.maxconn]: '7' }, '10.96.0.12');
  const list = c.companion ? [subject, companion, control] : [control, subject];
  // Every port: this property is about what a label value can inject, the same for both sources
  // (kubernetes-target-policy.test.ts covers which ports are allowed).
  const view = viewOfServices(list, { address, clusterDomain: 'cluster.local', policy: { externalNames: NO_EXTERNAL_NAMES, ports: parseAllowedPorts('1-65535') } });
  return {
    view,
    subjectWhere: serviceWhere(subject),
    companionWhere: serviceWhere(companion),
    subjectHost: address === 'cluster-ip' ? '10.96.0.10' : 'subject.team-a.svc.cluster.local',
    defaultPort: SERVICE_PORT,
  };
}

// ---- the checks ---------------------------------------------------------------------------------

const settings = defaultSettings('/tmp/pgroute-labels-property-test');
const paths = statePaths(settings.stateDir);
const VERSION = 'fixedversion0000';
const deployment: Deployment = { listeners: [FALLBACK], policy: DEFAULT_POLICY };
const EMPTY: TenantSnapshot = { tenants: [], refused: [] };
// Outside the tenant backends (and spares, which sit among them) the config is the empty one.
const emptyLines = renderConfig(deployment, layoutOf(EMPTY), settings, paths, VERSION, TEMPLATES).haproxyConfig.split('\n');

const ADDRESS = String.raw`(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f.:]+\]):\d{1,5}`;
const BACKEND_LINE_ALLOWLIST: readonly RegExp[] = [
  /^backend pg\.[a-z0-9-]{1,63}\.[a-z][a-z0-9-]{0,30}$/,
  /^backend pg\.spare\.\d+$/,
  /^# tenant [a-z0-9-]{1,63}, target [a-z][a-z0-9-]{0,30}$/,
  /^# spare: taken at runtime by a new tenant$/,
  /^    mode tcp$/,
  /^    default-server init-addr last,libc,none resolvers pgroute$/,
  /^    balance first$/,
  /^    timeout queue 10s$/,
  new RegExp(`^    server s1 ${ADDRESS}(?: check inter 2s fastinter 250ms downinter 250ms)?(?: maxconn \\d{1,6})?(?: disabled)?$`),
  /^$/,
];

let accepted = 0;
let refusedCount = 0;
let ignored = 0;

/** Runs every check on one built view; `c` is the case it was built from. */
function check(c: Case, b: Built): void {
  const { view, subjectWhere, companionWhere } = b;
  const snapshot = view.snapshot;
  const exp = expected(c.labels);

  for (const r of snapshot.refused) {
    expect(r.reason.length, `a refusal reason is a sentence: ${JSON.stringify(r.reason)}`).toBeGreaterThan(0);
    expect(r.reason.length, `a refusal reason stays short: ${JSON.stringify(r.reason.slice(0, 200))}...`).toBeLessThan(400);
    expect(r.reason).not.toMatch(/[\0\n\r]/);
  }

  // The control tenant always comes through, exactly as declared.
  const control = snapshot.tenants.find((t) => t.id === CONTROL_ID);
  expect(control?.maxconn).toBe(7);
  expect(Object.keys(control?.targets ?? {})).toEqual(['primary']);

  // Every accepted tenant holds strict values only.
  for (const t of snapshot.tenants) {
    expect(t.id).toMatch(STRICT_ID);
    expect(typeof t.enabled).toBe('boolean');
    if (t.maxconn !== undefined) expect(Number.isInteger(t.maxconn) && t.maxconn >= 1 && t.maxconn <= 100_000).toBe(true);
    for (const [name, target] of Object.entries(t.targets)) {
      expect(name).toMatch(STRICT_TARGET);
      expect([DOCKER_IP, COMPANION_IP, CONTROL_IP, '10.96.0.10', '10.96.0.11', '10.96.0.12', 'subject.team-a.svc.cluster.local', 'companion.team-a.svc.cluster.local', 'control.team-a.svc.cluster.local']).toContain(target.host);
      expect(Number.isInteger(target.port) && target.port >= 1 && target.port <= 65535).toBe(true);
    }
  }

  // The subject: accepted exactly as its labels say, refused with a reason, or (no tenant labels) ignored.
  const mine = snapshot.tenants.find((t) => Object.values(t.targets).some((x) => x.host === b.subjectHost));
  const mentioned = snapshot.refused.filter((r) => r.where === subjectWhere || (c.companion && r.where === companionWhere));
  if (!exp.labelled) {
    expect(mine).toBeUndefined();
    expect(snapshot.refused.filter((r) => r.where === subjectWhere)).toEqual([]);
    ignored++;
    return;
  }
  const placeable = exp.target === 'primary' ? !c.companion : c.companion;
  if (mine === undefined) {
    expect(mentioned.length, `not accepted, so refused with a reason: ${JSON.stringify(c)}`).toBeGreaterThan(0);
    expect(exp.strict && placeable, `refused although strict: ${JSON.stringify(mentioned)} for ${JSON.stringify(c)}`).toBe(false);
    refusedCount++;
    return;
  }
  accepted++;
  expect(exp.strict, `accepted although not strict: ${JSON.stringify(c)}`).toBe(true);
  expect(placeable).toBe(true);
  expect(mine.id).toBe(exp.tenant);
  const target = mine.targets[exp.target];
  expect(target?.host).toBe(b.subjectHost);
  expect(target?.port).toBe(exp.port === undefined ? b.defaultPort : Number(exp.port));
  expect(mine.enabled).toBe(exp.enabled === undefined ? true : exp.enabled.toLowerCase() === 'true');
  if (exp.target === 'primary') expect(mine.maxconn).toBe(exp.maxconn === undefined ? undefined : Number(exp.maxconn));
}

/** Renders the snapshot the way a (re)load does and checks every line against the template's. */
function checkRender(view: SourceView): void {
  const snapshot = view.snapshot;
  const layout = layoutForReload(EMPTY_LAYOUT, desiredOccupants(snapshot.tenants), SPARES);
  const cfg = renderConfig(deployment, layout, settings, paths, VERSION, TEMPLATES).haproxyConfig;
  const { section, outside } = splitTenantBackends(cfg);
  for (const line of section) {
    expect(BACKEND_LINE_ALLOWLIST.some((re) => re.test(line)), `unexpected line ${JSON.stringify(line)}`).toBe(true);
  }
  const targets = snapshot.tenants.reduce((n, t) => n + Object.keys(t.targets).length, 0);
  expect(section.filter((l) => l.startsWith('backend ')).length).toBe(targets + SPARES);
  expect(section.filter((l) => l.startsWith('    server ')).length).toBe(targets + SPARES);
  expect(outside).toEqual(emptyLines);
  const doc = routeTableDocument(deployment, snapshot, layout);
  const named = doc.tenants.flatMap((t) => Object.values(t.backends)).sort();
  expect(declaredBackends(cfg).filter((n) => n.startsWith('pg.') && !n.startsWith('pg.spare.')).sort()).toEqual(named);
}

describe('label values cannot inject configuration', { timeout: 60_000 }, () => {
  it('Docker containers: each labelled container is refused with a reason or accepted with strict values only', () => {
    accepted = refusedCount = ignored = 0;
    fc.assert(fc.property(caseArb, (c) => check(c, dockerView(c))), { numRuns: RUNS });
    expect(accepted).toBeGreaterThan(RUNS / 50);
    expect(refusedCount).toBeGreaterThan(RUNS / 4);
    expect(ignored).toBeGreaterThan(0);
  });

  it('Kubernetes Services (dns and cluster-ip addresses): the same', () => {
    accepted = refusedCount = ignored = 0;
    fc.assert(
      fc.property(caseArb, fc.constantFrom('dns' as const, 'cluster-ip' as const), (c, address) => check(c, kubernetesView(c, address))),
      { numRuns: RUNS },
    );
    expect(accepted).toBeGreaterThan(RUNS / 50);
    expect(refusedCount).toBeGreaterThan(RUNS / 4);
  });

  it('the rendered haproxy.cfg only ever holds template lines (both sources)', () => {
    fc.assert(
      fc.property(caseArb, fc.constantFrom('dns' as const, 'cluster-ip' as const), (c, address) => {
        checkRender(dockerView(c).view);
        checkRender(kubernetesView(c, address).view);
      }),
      { numRuns: RUNS },
    );
  });

  it('the checks are not vacuous: strict labels are accepted, and an injected line is caught', () => {
    const c: Case = { labels: { [LABEL.tenant]: 'acme', [LABEL.port]: '6432', [LABEL.maxconn]: '20', [LABEL.enabled]: 'FALSE' }, companion: false };
    const b = dockerView(c);
    const snap = b.view.snapshot;
    expect(snap.tenants.find((t) => t.id === 'acme')).toEqual({ id: 'acme', enabled: false, maxconn: 20, targets: { primary: { host: DOCKER_IP, port: 6432 } } });
    const layout = layoutForReload(EMPTY_LAYOUT, desiredOccupants(snap.tenants), SPARES);
    const cfg = renderConfig(deployment, layout, settings, paths, VERSION, TEMPLATES).haproxyConfig;
    const injected = cfg.replace(`    server s1 ${DOCKER_IP}:6432 check inter 2s fastinter 250ms downinter 250ms maxconn 20`, `    server s1 ${DOCKER_IP}:6432 check inter 2s fastinter 250ms downinter 250ms maxconn 20\n    server s2 6.6.6.6:5432`);
    expect(injected).not.toBe(cfg);
    expect(splitTenantBackends(injected).section.filter((l) => !BACKEND_LINE_ALLOWLIST.some((re) => re.test(l)))).toEqual(['    server s2 6.6.6.6:5432']);
  });
});
