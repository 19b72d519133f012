// Where a Kubernetes Service may send the public port (generator/src/sources/kubernetes/
// target-policy.ts, through viewOfServices): ExternalName Services only when allow-listed, tenant
// ports only from --kube-allowed-ports. Pure: no API server here (the e2e file
// test/e2e/kubernetes-targets.test.ts runs it against one, with real routing).

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/errors.js';
import { type ClaimOptions, type ServiceLike, viewOfServices } from '../../src/sources/kubernetes/service-claims.js';
import {
  DEFAULT_ALLOWED_PORTS,
  DEFAULT_TARGET_POLICY,
  describePatterns,
  describePorts,
  externalNameProblem,
  parseAllowedPorts,
  parseExternalNamePatterns,
  portAllowed,
  targetPolicyFromFlags,
} from '../../src/sources/kubernetes/target-policy.js';

const T0 = '2024-01-01T00:00:00Z';
const DNS: ClaimOptions = { address: 'dns', clusterDomain: 'cluster.local' };

function clusterIp(namespace: string, name: string, tenant: string, port: number, labels: Record<string, string> = {}): ServiceLike {
  return {
    metadata: { namespace, name, creationTimestamp: T0, labels: { 'pgroute.tenant': tenant, ...labels } },
    spec: { type: 'ClusterIP', clusterIP: '10.96.0.9', ports: [{ name: 'postgres', port }] },
  };
}

function external(namespace: string, name: string, tenant: string, externalName: string, port = '5432'): ServiceLike {
  return {
    metadata: { namespace, name, creationTimestamp: T0, labels: { 'pgroute.tenant': tenant, 'pgroute.port': port } },
    spec: { type: 'ExternalName', externalName },
  };
}

/** tenant id -> host:port of its primary, after validation (what is routed). */
function routed(services: ServiceLike[], options: ClaimOptions = DNS): Record<string, string> {
  const view = viewOfServices(services, options);
  const snap = view.snapshot;
  return Object.fromEntries(snap.tenants.map((t) => [t.id, `${t.targets.primary!.host}:${t.targets.primary!.port}`]));
}

function reasons(services: ServiceLike[], options: ClaimOptions = DNS): Record<string, string> {
  return Object.fromEntries(viewOfServices(services, options).snapshot.refused.map((r) => [r.where, r.reason]));
}

describe('ExternalName Services', () => {
  const metadata = external('team-x', 'meta', 'meta', '169.254.169.254', '80');

  it('are refused by default, with a reason that names the Service and the flag to set; other tenants stay', () => {
    const services = [clusterIp('team-a', 'acme', 'acme', 5432), external('team-b', 'ext', 'ext', 'pg.db.example.com'), metadata];
    expect(routed(services)).toEqual({ acme: 'acme.team-a.svc.cluster.local:5432' });
    expect(reasons(services)).toEqual({
      'kubernetes service team-b/ext':
        'the ExternalName Service team-b/ext points at "pg.db.example.com", which --kube-allow-external-names does not allow (no ExternalName is allowed by default); add it (or a pattern such as *.db.example.com) to --kube-allow-external-names (PGROUTE_KUBE_ALLOW_EXTERNAL_NAMES), or serve the tenant from a Service with a cluster IP',
      'kubernetes service team-x/meta': 'the ExternalName Service team-x/meta points at "169.254.169.254", a link-local or cloud metadata address, which pgroute never relays to',
    });
  });

  it('are routed when a pattern allows the name; a wildcard matches exactly one more label, without case or trailing dot', () => {
    const policy = targetPolicyFromFlags(['*.db.example.com', 'legacy.example.org'], undefined);
    const options = { ...DNS, policy };
    const services = [
      external('a', 'one', 'one', 'pg.db.example.com'),
      external('a', 'two', 'two', 'PG2.DB.Example.COM.'),
      external('a', 'three', 'three', 'legacy.example.org.'),
      external('a', 'deep', 'deep', 'x.pg.db.example.com'),
      external('a', 'bare', 'bare', 'db.example.com'),
      external('a', 'lookalike', 'lookalike', 'pg.evildb.example.com'),
      external('a', 'sub', 'sub', 'x.legacy.example.org'),
    ];
    expect(routed(services, options)).toEqual({ one: 'pg.db.example.com:5432', two: 'PG2.DB.Example.COM:5432', three: 'legacy.example.org:5432' });
    expect(Object.keys(reasons(services, options)).sort()).toEqual(['kubernetes service a/bare', 'kubernetes service a/deep', 'kubernetes service a/lookalike', 'kubernetes service a/sub']);
    expect(reasons(services, options)['kubernetes service a/deep']).toContain('allowed: "legacy.example.org,*.db.example.com"');
  });

  it('an IP address is allowed only when listed exactly; a wildcard never matches an address or what libc reads as one', () => {
    const patterns = parseExternalNamePatterns('*.db.example.com,10.1.2.3,*.example.net');
    expect(externalNameProblem('a/s', '10.1.2.3', patterns)).toBeUndefined();
    expect(externalNameProblem('a/s', '10.1.2.4', patterns)).toMatch(/^the ExternalName Service a\/s points at the IP address "10.1.2.4", which --kube-allow-external-names does not list \(an IP address is allowed only when listed exactly\)/);
    // inet_aton reads these as 169.254.169.254 / 10.0.0.1: never names, never matched.
    for (const name of ['2852039166', '169.254.43518', '0xa9fea9fe', '10.0.1', '1.2.3.010', 'x.example.net.0x1']) {
      expect(externalNameProblem('a/s', name, patterns), name).toBeDefined();
    }
    for (const name of ['localhost', 'x.localhost', 'metadata.google.internal', 'METADATA.GOOGLE.INTERNAL.']) expect(externalNameProblem('a/s', name, parseExternalNamePatterns('*.google.internal,*.x.localhost')), name).toBeDefined();
  });

  it('link-local and metadata addresses are never allowed, whatever is listed', () => {
    const patterns = parseExternalNamePatterns('*.db.example.com,10.1.2.3');
    for (const name of ['169.254.169.254', '169.254.0.1', '[fe80::1]', 'fe80::1%eth0', '::ffff:169.254.169.254', '[::ffff:a9fe:a9fe]', 'fd00:ec2::254', '100.100.100.200', '0.0.0.0', 'metadata', 'instance-data.ec2.internal']) {
      expect(externalNameProblem('a/s', name, patterns), name).toMatch(/link-local or cloud metadata address, which pgroute never relays to$/);
    }
    for (const entry of ['169.254.169.254', 'fe80::1', '::ffff:169.254.169.254', 'fd00:ec2::254', 'metadata.google.internal']) {
      expect(() => parseExternalNamePatterns(entry), entry).toThrow(/never relays to$/);
    }
  });

  it('patterns that would match too much are refused with the entry and the flag', () => {
    const cases: Record<string, RegExp> = {
      '*': /^--kube-allow-external-names \(PGROUTE_KUBE_ALLOW_EXTERNAL_NAMES\): "\*" would allow every name; give patterns such as \*\.db\.example\.com$/,
      '*.': /would allow every name/,
      '*.com': /would allow a whole top-level domain/,
      '*.*.example.com': /is not \*\. followed by a DNS name/,
      'db.*.example.com': /has a \* elsewhere than as its whole first label/,
      'pg*.example.com': /has a \* elsewhere/,
      '*.10.0.0': /ends in a number, so it would match IP addresses/,
      '1.2.3.010': /looks like an IP address but is not one written plainly/,
      'under_score.example.com': /is not a DNS name, an IP address/,
    };
    for (const [entry, re] of Object.entries(cases)) expect(() => parseExternalNamePatterns(['ok.example.com', entry]), entry).toThrow(re);
  });

  it('repeated values and lists separated by commas or white space are one list; empty is none', () => {
    const p = parseExternalNamePatterns(['a.example.com, *.db.example.com', 'b.example.com\t10.0.0.1', '']);
    expect(describePatterns(p)).toBe('10.0.0.1,a.example.com,b.example.com,*.db.example.com');
    expect(describePatterns(parseExternalNamePatterns(undefined))).toBe('');
    expect(describePatterns(parseExternalNamePatterns(' , '))).toBe('');
    expect(describePatterns(parseExternalNamePatterns('[FD00::0005]'))).toBe('fd00::5');
  });
});

describe('allowed ports', () => {
  it('the default is PostgreSQL and pooler ports: 5432-5439 and 6432', () => {
    expect(describePorts(DEFAULT_TARGET_POLICY.ports)).toBe(DEFAULT_ALLOWED_PORTS);
    expect(DEFAULT_ALLOWED_PORTS).toBe('5432-5439,6432');
    for (const p of [5432, 5435, 5439, 6432]) expect(portAllowed(DEFAULT_TARGET_POLICY.ports, p), String(p)).toBe(true);
    for (const p of [22, 80, 443, 2379, 5431, 5440, 6443, 10250, 10255]) expect(portAllowed(DEFAULT_TARGET_POLICY.ports, p), String(p)).toBe(false);
  });

  it('a tenant whose label or Service port is not allowed is refused with the Service, the port and the flag; the others stay', () => {
    const services = [
      clusterIp('team-a', 'acme', 'acme', 5432),
      clusterIp('team-a', 'pool', 'pooled', 6432),
      clusterIp('team-b', 'kubelet', 'kubelet', 5432, { 'pgroute.port': '10250' }),
      clusterIp('team-b', 'apiserver', 'apiserver', 6443),
      { ...clusterIp('team-b', 'headless', 'headless', 5432), spec: { type: 'ClusterIP', clusterIP: 'None', ports: [{ name: 'pg', port: 5432, targetPort: 2379 }] } },
      external('team-c', 'ext', 'ext', 'pg.db.example.com', '6443'),
    ];
    const options = { ...DNS, policy: targetPolicyFromFlags('*.db.example.com', undefined) };
    expect(routed(services, options)).toEqual({ acme: 'acme.team-a.svc.cluster.local:5432', pooled: 'pool.team-a.svc.cluster.local:6432' });
    expect(reasons(services, options)).toEqual({
      'kubernetes service team-b/kubelet': 'the Service team-b/kubelet targets port 10250 (from its port label), which --kube-allowed-ports does not allow (allowed: 5432-5439,6432); if it really serves PostgreSQL, add it to --kube-allowed-ports (PGROUTE_KUBE_ALLOWED_PORTS)',
      'kubernetes service team-b/apiserver': 'the Service team-b/apiserver targets port 6443 (its port), which --kube-allowed-ports does not allow (allowed: 5432-5439,6432); if it really serves PostgreSQL, add it to --kube-allowed-ports (PGROUTE_KUBE_ALLOWED_PORTS)',
      'kubernetes service team-b/headless': "the Service team-b/headless targets port 2379 (its port's targetPort), which --kube-allowed-ports does not allow (allowed: 5432-5439,6432); if it really serves PostgreSQL, add it to --kube-allowed-ports (PGROUTE_KUBE_ALLOWED_PORTS)",
      'kubernetes service team-c/ext': 'the Service team-c/ext targets port 6443 (from its port label), which --kube-allowed-ports does not allow (allowed: 5432-5439,6432); if it really serves PostgreSQL, add it to --kube-allowed-ports (PGROUTE_KUBE_ALLOWED_PORTS)',
    });
    // The refusal carries the tenant id, so status and metrics count it as a refused tenant.
    expect(viewOfServices(services, options).snapshot.refused.map((r) => r.id).sort()).toEqual(['apiserver', 'ext', 'headless', 'kubelet']);
  });

  it('an operator can widen the list; ranges merge', () => {
    const options = { ...DNS, policy: targetPolicyFromFlags(undefined, ['5432', '25000-25099,6432']) };
    expect(routed([clusterIp('a', 'x', 'x', 25060), clusterIp('a', 'y', 'y', 5433)], options)).toEqual({ x: 'x.a.svc.cluster.local:25060' });
    expect(describePorts(parseAllowedPorts(['6432 5432-5435', '5436-5439,5434', '1']))).toBe('1,5432-5439,6432');
    expect(describePorts(parseAllowedPorts('1-65535'))).toBe('1-65535');
  });

  it('bad lists are refused with the entry and the flag', () => {
    for (const [value, re] of [
      ['', /^--kube-allowed-ports \(PGROUTE_KUBE_ALLOWED_PORTS\) lists no port; give ports and ranges such as 5432-5439,6432 \(1-65535 allows every port\)$/],
      ['0', /"0" is not a port \(1 to 65535\) or a range/],
      ['65536', /"65536" is not a port/],
      ['5439-5432', /"5439-5432" is not a port/],
      ['5432-', /"5432-" is not a port/],
      ['pg', /"pg" is not a port/],
      ['+5432', /"\+5432" is not a port/],
    ] as const) {
      expect(() => parseAllowedPorts(value), value).toThrow(re);
    }
  });

  it('a port label that is not a number is still refused by validation (as before)', () => {
    const view = viewOfServices([clusterIp('a', 'x', 'x', 5432, { 'pgroute.port': 'five' })], DNS);
    const snap = view.snapshot;
    expect(snap.tenants).toEqual([]);
    expect(snap.refused).toHaveLength(1);
  });
});

describe('the flags, over arbitrary strings', () => {
  const values = fc.oneof(
    fc.string({ maxLength: 60 }),
    fc.string({ unit: 'binary', maxLength: 30 }),
    fc.array(fc.constantFrom('*', '.', ',', ' ', '-', '0', '5432', '65535', '99999', 'x', 'db', 'example', 'com', '169.254.169.254', '::', 'fe80', '%', '[', ']', '0x', '\n', 'é'), { maxLength: 14 }).map((p) => p.join('')),
    fc.domain(),
    fc.ipV4(),
    fc.ipV6(),
    fc.integer({ min: -5, max: 70_000 }).map(String),
    fc.tuple(fc.integer({ min: 0, max: 70_000 }), fc.integer({ min: 0, max: 70_000 })).map(([a, b]) => `${a}-${b}`),
  );
  const flagValues = fc.oneof(values, fc.array(values, { maxLength: 4 }));

  /** Accepted, or a ConfigError of one line naming the flag; never another exception. */
  function oneLine<T>(flag: string, f: () => T): T | undefined {
    try {
      return f();
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      const message = (err as Error).message;
      expect(message).not.toMatch(/[\n\r]/);
      expect(message.startsWith(flag)).toBe(true);
      expect(message.length).toBeLessThan(400);
      return undefined;
    }
  }

  it('--kube-allow-external-names: patterns that round-trip, or one clear line', () => {
    fc.assert(
      fc.property(flagValues, fc.oneof(fc.domain(), fc.ipV4(), fc.ipV6(), fc.string({ maxLength: 30 })), (value, name) => {
        const p = oneLine('--kube-allow-external-names', () => parseExternalNamePatterns(value));
        if (p === undefined) return;
        // What it prints, it reads back to the same patterns.
        expect(describePatterns(parseExternalNamePatterns(describePatterns(p)))).toBe(describePatterns(p));
        // Matching never throws, and a link-local address is never allowed.
        const problem = externalNameProblem('ns/svc', name, p);
        expect(problem === undefined || problem.startsWith('the ExternalName Service ns/svc')).toBe(true);
        expect(externalNameProblem('ns/svc', '169.254.169.254', p)).toBeDefined();
      }),
      { numRuns: 2_000 },
    );
  });

  it('--kube-allowed-ports: ranges within 1-65535 that round-trip, or one clear line', () => {
    fc.assert(
      fc.property(flagValues, (value) => {
        const ports = oneLine('--kube-allowed-ports', () => parseAllowedPorts(value));
        if (ports === undefined) return;
        expect(ports.length).toBeGreaterThan(0);
        for (const [a, b] of ports) expect(1 <= a && a <= b && b <= 65535).toBe(true);
        for (let i = 1; i < ports.length; i++) expect(ports[i]![0]).toBeGreaterThan(ports[i - 1]![1] + 1);
        expect(describePorts(parseAllowedPorts(describePorts(ports)))).toBe(describePorts(ports));
      }),
      { numRuns: 2_000 },
    );
  });

  it('over-long values are refused, not read', () => {
    expect(() => parseAllowedPorts('5432,'.repeat(2_000))).toThrow(/^--kube-allowed-ports \(PGROUTE_KUBE_ALLOWED_PORTS\) has 2000 entries, more than the 1024 read; use wildcards or ranges$/);
    expect(() => parseExternalNamePatterns('a'.repeat(70_000))).toThrow(/^--kube-allow-external-names \(PGROUTE_KUBE_ALLOW_EXTERNAL_NAMES\) is 70000 characters long, more than the 65536 read; give fewer entries$/);
  });
});
