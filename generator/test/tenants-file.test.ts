// parseTenantsFile: the YAML tenants file into a deployment (listeners, policy) and a snapshot.
// File-level mistakes are ConfigErrors naming the file; per-tenant mistakes refuse only that tenant.

import { describe, expect, it } from 'vitest';
import { keepPreviousDefinitions, parseTenantsFile, readTenantsFile } from '../src/sources/file.js';
import type { TenantsFile } from '../src/sources/file.js';
import { ConfigError } from '../src/errors.js';
import { createCa } from '../src/tls/certificates.js';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { configErrorOf, FALLBACK, ORIGIN } from './support.js';

function parse(text: string): TenantsFile {
  return parseTenantsFile(text, ORIGIN, FALLBACK);
}

/** A file with one bad tenant between two good ones; returns the refusal and the good ids. */
function withOneBad(badTenantYaml: string): { reasons: string[]; ids: string[]; refused: TenantsFile['snapshot']['refused'] } {
  const f = parse(`tenants:
  - id: good-a
    host: 10.0.0.1
    port: 5432
${badTenantYaml}
  - id: good-z
    host: 10.0.0.2
    port: 5432
`);
  return { reasons: f.snapshot.refused.map((r) => r.reason), ids: f.snapshot.tenants.map((t) => t.id), refused: f.snapshot.refused };
}

describe('parseTenantsFile: good files', () => {
  it('parses a minimal file with defaults', () => {
    const f = parse('tenants:\n  - id: acme\n    host: db.acme.internal\n    port: 5432\n');
    expect(f.snapshot.refused).toEqual([]);
    expect(f.snapshot.tenants).toEqual([{ id: 'acme', enabled: true, targets: { primary: { host: 'db.acme.internal', port: 5432 } } }]);
    expect(f.deployment.listeners).toEqual([FALLBACK]);
    expect(f.deployment.policy).toEqual({ keys: ['options', 'database'], targetByPort: {}, defaultTarget: 'primary', revealDisabled: false });
  });

  it('treats an empty file and a file without tenants as no tenants', () => {
    for (const text of ['', '# nothing\n', 'listeners:\n  - port: 6000\n']) {
      const f = parse(text);
      expect(f.snapshot.tenants).toEqual([]);
      expect(f.snapshot.refused).toEqual([]);
    }
  });

  it('defaults enabled to true and honours enabled: false', () => {
    const f = parse(`tenants:
  - { id: on, host: 10.0.0.1, port: 5432 }
  - { id: off, host: 10.0.0.2, port: 5432, enabled: false }
  - { id: explicit-on, host: 10.0.0.3, port: 5432, enabled: true }
`);
    const byId = Object.fromEntries(f.snapshot.tenants.map((t) => [t.id, t.enabled]));
    expect(byId).toEqual({ on: true, off: false, 'explicit-on': true });
  });

  it('sorts tenants by id', () => {
    const f = parse(`tenants:
  - { id: zeta, host: 10.0.0.1, port: 5432 }
  - { id: alpha, host: 10.0.0.2, port: 5432 }
  - { id: mid, host: 10.0.0.3, port: 5432 }
`);
    expect(f.snapshot.tenants.map((t) => t.id)).toEqual(['alpha', 'mid', 'zeta']);
  });

  it('reads extra targets (pool, replica) next to primary, and maxconn', () => {
    const f = parse(`tenants:
  - id: acme
    host: 10.0.0.5
    port: 5432
    maxconn: 50
    targets:
      pool: { host: pgbouncer.acme.internal, port: 6432 }
      replica: { host: "2001:db8::7", port: 5433 }
`);
    expect(f.snapshot.refused).toEqual([]);
    expect(f.snapshot.tenants).toEqual([
      {
        id: 'acme',
        enabled: true,
        maxconn: 50,
        targets: {
          primary: { host: '10.0.0.5', port: 5432 },
          pool: { host: 'pgbouncer.acme.internal', port: 6432 },
          replica: { host: '2001:db8::7', port: 5433 },
        },
      },
    ]);
  });

  it('turns listeners with a target into policy.targetByPort', () => {
    const f = parse(`listeners:
  - port: 5432
  - port: 6432
    target: pool
  - port: 7432
    address: "::"
    target: replica
tenants: []
`);
    expect(f.deployment.listeners).toEqual([
      { address: '127.0.0.1', port: 5432 },
      { address: '127.0.0.1', port: 6432, target: 'pool' },
      { address: '::', port: 7432, target: 'replica' },
    ]);
    expect(f.deployment.policy.targetByPort).toEqual({ 6432: 'pool', 7432: 'replica' });
  });

  it('reads the routing section: keys, user exact, defaultTarget, revealDisabled', () => {
    const f = parse(`routing:
  keys: [options, user, database]
  user: { mode: exact }
  defaultTarget: pool
  revealDisabled: true
`);
    expect(f.deployment.policy).toEqual({
      keys: ['options', 'user', 'database'],
      user: { mode: 'exact' },
      targetByPort: {},
      defaultTarget: 'pool',
      revealDisabled: true,
    });
  });

  it('reads a user pattern and puts user first among the keys when not listed', () => {
    const f = parse(String.raw`routing:
  user:
    mode: pattern
    pattern: '^(?<role>[^.]+)\.(?<tenant>[a-z0-9-]+)$'
`);
    expect(f.deployment.policy.user).toEqual({ mode: 'pattern', pattern: String.raw`^(?<role>[^.]+)\.(?<tenant>[a-z0-9-]+)$` });
    expect(f.deployment.policy.keys).toEqual(['user', 'options', 'database']);
  });

  it('keys listing user without a user section implies exact user names', () => {
    const f = parse('routing:\n  keys: [user]\n');
    expect(f.deployment.policy.keys).toEqual(['user']);
    expect(f.deployment.policy.user).toEqual({ mode: 'exact' });
  });

  it('an empty routing section gives the defaults (keys options, database)', () => {
    for (const text of ['routing:\n', 'routing: {}\n']) {
      const p = parse(text).deployment.policy;
      expect(p.keys).toEqual(['options', 'database']);
      expect(p.defaultTarget).toBe('primary');
      expect(p.revealDisabled).toBe(false);
      expect(p.user).toBeUndefined();
    }
  });
});

describe('parseTenantsFile: file-level errors are ConfigErrors naming the file', () => {
  it('bad YAML, with the line number', () => {
    const msg = configErrorOf(() => parse('tenants:\n  - id: a\n    host: [unclosed\n    port: 1\n'));
    expect(msg.startsWith(`${ORIGIN}: not valid YAML at line `)).toBe(true);
    expect(msg).toMatch(/at line \d+/);
    expect(msg).not.toContain('\n');
  });

  it('bad YAML on a known line reports that line', () => {
    const msg = configErrorOf(() => parse('tenants:\n  - id: a\n  bad: "unterminated\n'));
    expect(msg).toMatch(new RegExp(`^${ORIGIN}: not valid YAML at line 3`));
  });

  it('a character YAML forbids raw (U+FFFE) refuses the file on one line, naming the line', () => {
    const msg = configErrorOf(() => parse('tenants:\n  - id: \ufffe\n    host: 10.0.0.1\n    port: 5432\n'));
    expect(msg).toBe(`${ORIGIN}: not valid YAML at line 2: the stream contains non-printable characters`);
  });

  it('duplicate mapping keys are a YAML error', () => {
    const msg = configErrorOf(() => parse('tenants: []\ntenants: []\n'));
    expect(msg).toContain(`${ORIGIN}: not valid YAML`);
  });

  it('an unknown top-level field', () => {
    const msg = configErrorOf(() => parse('tenants: []\ntenant: []\n'));
    expect(msg).toBe(`${ORIGIN}: unknown top-level field "tenant" (known: tenants, listeners, routing)`);
  });

  it('a document that is not a mapping', () => {
    expect(configErrorOf(() => parse('- id: a\n'))).toBe(`${ORIGIN}: expected a mapping with a tenants list`);
    expect(configErrorOf(() => parse('just a string\n'))).toBe(`${ORIGIN}: expected a mapping with a tenants list`);
  });

  it('tenants that is not a list', () => {
    expect(configErrorOf(() => parse('tenants:\n  acme: { host: h, port: 1 }\n'))).toBe(`${ORIGIN}: tenants must be a list`);
    expect(configErrorOf(() => parse('tenants: acme\n'))).toBe(`${ORIGIN}: tenants must be a list`);
  });

  it.each([
    ['listeners: []\n', 'listeners must be a non-empty list'],
    ['listeners: 5432\n', 'listeners must be a non-empty list'],
    ['listeners:\n  - 5432\n', 'listeners[0] must be a mapping'],
    ['listeners:\n  - port: 0\n', 'listeners[0]: port must be an integer from 1 to 65535, got 0'],
    ['listeners:\n  - port: 65536\n', 'listeners[0]: port must be an integer from 1 to 65535'],
    ['listeners:\n  - port: "5432"\n', 'listeners[0]: port must be an integer'],
    ['listeners:\n  - port: 5432\n  - port: 5432\n', 'listeners[1]: port 5432 is listed twice'],
    ['listeners:\n  - port: 5432\n    address: "0.0.0.0 ssl crt /x"\n', 'listeners[0]: host "0.0.0.0 ssl crt /x" is neither an IP address nor a valid host name'],
    ['listeners:\n  - port: 5432\n    address: "fe80::1%lo"\n', 'listeners[0]: host "fe80::1%lo" has an IPv6 zone id'],
    ['listeners:\n  - port: 5432\n    target: Pool\n', 'listeners[0]: target name "Pool" is invalid'],
    ['listeners:\n  - port: 5432\n    acceptProxy: "yes"\n', 'listeners[0]: acceptProxy must be true or false'],
    ['listeners:\n  - port: 5432\n    proxy: true\n', 'listeners[0]: unknown field "proxy" (known: port, address, target, tls, acceptProxy)'],
  ])('a bad listener: %j', (text, expected) => {
    const msg = configErrorOf(() => parse(text));
    expect(msg.startsWith(`${ORIGIN}: `)).toBe(true);
    expect(msg).toContain(expected);
  });

  it.each([
    ['routing: [options]\n', 'routing must be a mapping'],
    ['routing:\n  key: [options]\n', 'routing: unknown field "key"'],
    ['routing:\n  keys: []\n', 'routing.keys must be a non-empty list'],
    ['routing:\n  keys: [host]\n', 'routing.keys: "host" is not one of options, user, database'],
    ['routing:\n  keys: [user, user]\n', 'routing.keys lists a source twice'],
    ['routing:\n  user: { mode: fuzzy }\n', 'routing.user.mode must be exact or pattern'],
    ['routing:\n  user: { mode: pattern }\n', 'routing.user.pattern is required'],
    ['routing:\n  user: { mode: pattern, pattern: "(" }\n', 'routing.user.pattern is not a valid regular expression'],
    ['routing:\n  user: { mode: pattern, pattern: "^(?<t>.*)$" }\n', 'needs a named group (?<tenant>...)'],
    ['routing:\n  defaultTarget: "pool x"\n', 'routing.defaultTarget: target name "pool x" is invalid'],
    ['routing:\n  revealDisabled: yes\n', 'routing.revealDisabled must be true or false'],
  ])('a bad routing section: %j', (text, expected) => {
    const msg = configErrorOf(() => parse(text));
    expect(msg.startsWith(`${ORIGIN}: `)).toBe(true);
    expect(msg).toContain(expected);
  });

  it("readTenantsFile refuses a tenant whose tls.ca HAProxy could not load (missing, no PEM, a bad certificate), alone: HAProxy would refuse the whole configuration", async () => {
    const dir = await mkdtemp(join(tmpdir(), 'pgroute-ca-'));
    try {
      const ca = await createCa({ commonName: 'test CA', validityDays: 1 });
      await writeFile(join(dir, 'ca.pem'), ca.certPem);
      await writeFile(join(dir, 'notes.txt'), 'not a certificate\n');
      await writeFile(join(dir, 'broken.pem'), '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n');
      const tenant = (id: string, ca: string) => `  - { id: ${id}, host: 10.0.0.1, port: 5432, tls: { verify: required, ca: ${join(dir, ca)} } }\n`;
      await writeFile(join(dir, 'tenants.yaml'), `tenants:\n${tenant('good', 'ca.pem')}${tenant('missing', 'none.pem')}${tenant('text', 'notes.txt')}${tenant('broken', 'broken.pem')}`);
      const f = await readTenantsFile(join(dir, 'tenants.yaml'), FALLBACK);
      expect(f.snapshot.tenants.map((t) => t.id)).toEqual(['good']);
      expect(Object.fromEntries(f.snapshot.refused.map((r) => [r.id, r.reason]))).toEqual({
        missing: `tls.ca ${join(dir, 'none.pem')} does not exist (on the machine that runs HAProxy and pgroute)`,
        text: `tls.ca ${join(dir, 'notes.txt')} is no CA certificate HAProxy can load: holds no PEM certificate (a "-----BEGIN CERTIFICATE-----" block)`,
        broken: expect.stringMatching(new RegExp(`^tls\\.ca ${join(dir, 'broken.pem').replace(/[.]/g, '\\.')} is no CA certificate HAProxy can load: certificate #1 cannot be parsed: `)),
      });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('readTenantsFile on a missing file is a ConfigError naming it', async () => {
    await expect(readTenantsFile('/nonexistent/pgroute-tenants.yaml', FALLBACK)).rejects.toThrow(ConfigError);
    await expect(readTenantsFile('/nonexistent/pgroute-tenants.yaml', FALLBACK)).rejects.toThrow(
      'cannot read tenants file /nonexistent/pgroute-tenants.yaml: no such file (ENOENT); check --tenants',
    );
    // A directory given for the file: said in words, with the code.
    await expect(readTenantsFile('/tmp', FALLBACK)).rejects.toThrow('cannot read tenants file /tmp: it is a directory (EISDIR); check --tenants');
  });
});

describe('parseTenantsFile: YAML aliases that stand for a billion values (about 700 bytes)', () => {
  // Ten arrays, each of ten references to the one before: *x8 stands for 10^9 strings. js-yaml keeps
  // references (the file parses at once); a refusal that wrote such a value out whole (JSON.stringify,
  // String()) ran for minutes and gigabytes, freezing `up`'s agent with it.
  const anchors = Array.from({ length: 9 }, (_, i) => `      a${i}: &x${i} [${i === 0 ? Array(10).fill('"lol"').join(',') : Array(10).fill(`*x${i - 1}`).join(',')}]`).join('\n');
  const file = (rest: string): string => `tenants:\n  - id: holder\n    host: 10.0.0.9\n    port: 5432\n    zz:\n${anchors}\n${rest}\n`;

  it.each([
    ['maxconn', '  - { id: bad, host: 10.0.0.3, port: 5432, maxconn: *x8 }', 'maxconn must be an integer from 1 to 100000, got [[[[[[[[["lol","lol"'],
    ['host', '  - { id: bad, host: *x8, port: 5432 }', 'host must be a non-empty string, got [[[[[[[[["lol"'],
    ['allow', '  - { id: bad, host: 10.0.0.3, port: 5432, allow: *x8 }', 'allow[0]: a network must be text such as 10.0.0.0/8 or 2001:db8::/32, got [[[[[[[["lol"'],
  ])('a tenant whose %s is one: refused with the value cut short, the others kept', (_field, bad, reason) => {
    const f = parse(file(`${bad}\n  - { id: good, host: 10.0.0.2, port: 5432 }`));
    expect(f.snapshot.tenants.map((t) => t.id)).toEqual(['good']);
    const refusal = f.snapshot.refused.find((r) => r.id === 'bad');
    expect(refusal?.reason.startsWith(reason)).toBe(true);
    expect(refusal?.reason.endsWith('...')).toBe(true);
    expect(refusal?.reason.length).toBeLessThan(200);
  });

  it('routing.defaultTarget as one: a ConfigError of one short line', () => {
    const msg = configErrorOf(() => parse(file('routing: { defaultTarget: *x8 }')));
    expect(msg.startsWith(`${ORIGIN}: routing.defaultTarget: target name [[[[[[[[["lol"`)).toBe(true);
    expect(msg.length).toBeLessThan(300);
  });
});

describe('parseTenantsFile: a bad tenant is refused, the others still come through', () => {
  it.each([
    ['bad id (upper case)', '  - { id: Acme, host: 10.0.0.3, port: 5432 }', 'tenant id "Acme" is invalid'],
    ['bad id (dot)', '  - { id: a.b, host: 10.0.0.3, port: 5432 }', 'tenant id "a.b" is invalid'],
    ['bad id (leading dash)', '  - { id: -x, host: 10.0.0.3, port: 5432 }', 'tenant id "-x" is invalid'],
    ['bad id (64 chars)', `  - { id: ${'a'.repeat(64)}, host: 10.0.0.3, port: 5432 }`, 'is invalid'],
    ['id not a string', '  - { id: 42, host: 10.0.0.3, port: 5432 }', 'tenant id must be a string, got 42'],
    ['missing id', '  - { host: 10.0.0.3, port: 5432 }', 'tenant id must be a string, got nothing'],
    ['not a mapping', '  - just-a-string', 'a tenant must be a mapping with id, host and port'],
    ['bad host (space)', '  - { id: bad, host: "db x", port: 5432 }', 'host "db x" is neither an IP address nor a valid host name'],
    ['bad host (underscore)', '  - { id: bad, host: db_1.local, port: 5432 }', 'host "db_1.local" is neither'],
    ['bad host (shorthand IPv4: HAProxy reads 10.0.0 as 10.0.0.0)', '  - { id: bad, host: "10.0.0", port: 5432 }', 'host "10.0.0" is neither an IP address nor a valid host name'],
    ['bad host (999.1.1.1)', '  - { id: bad, host: 999.1.1.1, port: 5432 }', 'host "999.1.1.1" is neither'],
    ['IPv6 zone id', '  - { id: bad, host: "fe80::1%eth0", port: 5432 }', 'host "fe80::1%eth0" has an IPv6 zone id, which HAProxy does not accept'],
    ['missing host', '  - { id: bad, port: 5432 }', 'host must be a non-empty string, got nothing'],
    ['empty host', '  - { id: bad, host: "", port: 5432 }', 'host must be a non-empty string'],
    ['bad port (0)', '  - { id: bad, host: 10.0.0.3, port: 0 }', 'port must be an integer from 1 to 65535, got 0'],
    ['bad port (string)', '  - { id: bad, host: 10.0.0.3, port: "5432" }', 'port must be an integer from 1 to 65535, got "5432"'],
    ['bad port (fraction)', '  - { id: bad, host: 10.0.0.3, port: 5432.5 }', 'got 5432.5'],
    ['unknown field', '  - { id: bad, host: 10.0.0.3, port: 5432, hots: x }', 'unknown field "hots" (known: id, host, port, members, check, tls, enabled, targets, maxconn, maxqueue, allow, maxClientConnections, maxConnectionRate, maxClientConnectionRate)'],
    ['allow not a list', '  - { id: bad, host: 10.0.0.3, port: 5432, allow: 10.0.0.0/8 }', 'allow must be a non-empty list of networks'],
    ['allow empty', '  - { id: bad, host: 10.0.0.3, port: 5432, allow: [] }', 'allow must be a non-empty list of networks'],
    ['malformed network', '  - { id: bad, host: 10.0.0.3, port: 5432, allow: [10.0.0.0/33] }', 'allow[0]: "10.0.0.0/33" is not a network: the prefix length must be a number from 0 to 32'],
    ['network that is no address', '  - { id: bad, host: 10.0.0.3, port: 5432, allow: [10.0.0.0/8, 10.300.0.0/16] }', 'allow[1]: "10.300.0.0/16" is not a network: "10.300.0.0" is not an IP address'],
    ['network with host bits', '  - { id: bad, host: 10.0.0.3, port: 5432, allow: ["2001:db8::1/32"] }', 'it has address bits set beyond its /32 prefix (did you mean 2001:db8::/32?)'],
    ['negative cap', '  - { id: bad, host: 10.0.0.3, port: 5432, maxClientConnections: -1 }', 'maxClientConnections must be a whole number from 0 to 1000000, got -1 (0: no limit)'],
    ['rate not a number', '  - { id: bad, host: 10.0.0.3, port: 5432, maxConnectionRate: lots }', 'maxConnectionRate must be a whole number from 0 to 1000000, got "lots"'],
    ['enabled not a boolean', '  - { id: bad, host: 10.0.0.3, port: 5432, enabled: "no" }', 'enabled must be true or false'],
    ['maxconn out of range', '  - { id: bad, host: 10.0.0.3, port: 5432, maxconn: 0 }', 'maxconn must be an integer from 1 to 100000, got 0'],
    ['targets repeating primary', '  - { id: bad, host: 10.0.0.3, port: 5432, targets: { primary: { host: 10.0.0.4, port: 5432 } } }', 'do not repeat it under targets'],
    ['bad target name', '  - { id: bad, host: 10.0.0.3, port: 5432, targets: { Pool: { host: 10.0.0.4, port: 6432 } } }', 'target name "Pool" is invalid'],
    ['target name with a dot', '  - { id: bad, host: 10.0.0.3, port: 5432, targets: { "a.b": { host: 10.0.0.4, port: 6432 } } }', 'target name "a.b" is invalid'],
    ['target name __proto__', '  - { id: bad, host: 10.0.0.3, port: 5432, targets: { __proto__: { host: 10.0.0.4, port: 6432 } } }', 'target name "__proto__" is invalid'],
    ['targets not a mapping', '  - { id: bad, host: 10.0.0.3, port: 5432, targets: [pool] }', 'targets must be a mapping'],
    ['target not a mapping', '  - { id: bad, host: 10.0.0.3, port: 5432, targets: { pool: 6432 } }', 'target pool must be a mapping with host and port'],
    ['target with a bad host', '  - { id: bad, host: 10.0.0.3, port: 5432, targets: { pool: { host: "a b", port: 6432 } } }', 'target pool: host "a b" is neither'],
    ['target with a bad port', '  - { id: bad, host: 10.0.0.3, port: 5432, targets: { pool: { host: 10.0.0.4 } } }', 'target pool: port must be an integer'],
  ])('%s', (_name, tenantYaml, reason) => {
    const r = withOneBad(tenantYaml);
    expect(r.ids).toEqual(['good-a', 'good-z']);
    expect(r.refused).toHaveLength(1);
    expect(r.refused[0]?.where).toBe(`${ORIGIN}: tenants[1]`);
    expect(r.reasons[0]).toContain(reason);
  });

  it('names the id of a refused tenant when the id itself was fine', () => {
    const r = withOneBad('  - { id: bad, host: "db x", port: 5432 }');
    expect(r.refused[0]?.id).toBe('bad');
    const r2 = withOneBad('  - { id: Bad, host: 10.0.0.1, port: 5432 }');
    expect(r2.refused[0]?.id).toBeUndefined();
  });

  it('reads allowed networks and admission limits (0: no limit)', () => {
    const r = withOneBad('  - { id: ok, host: 10.0.0.3, port: 5432, allow: [10.0.0.0/8, "2001:db8::/32", 192.0.2.7], maxClientConnections: 5, maxConnectionRate: 0 }');
    expect(r.ids).toEqual(['good-a', 'good-z', 'ok'].sort());
  });

  it('refuses more than 8 extra targets', () => {
    const targets = Array.from({ length: 9 }, (_, i) => `t${i}: { host: 10.0.0.9, port: ${6000 + i} }`).join(', ');
    const r = withOneBad(`  - { id: many, host: 10.0.0.3, port: 5432, targets: { ${targets} } }`);
    expect(r.reasons).toEqual(['at most 8 extra targets are allowed']);
  });

  it('keeps the first of two tenants with the same id and refuses the later one', () => {
    const f = parse(`tenants:
  - { id: acme, host: first.example, port: 5432 }
  - { id: other, host: 10.0.0.2, port: 5432 }
  - { id: acme, host: second.example, port: 5432 }
`);
    expect(f.snapshot.tenants.map((t) => [t.id, t.targets.primary?.host])).toEqual([
      ['acme', 'first.example'],
      ['other', '10.0.0.2'],
    ]);
    expect(f.snapshot.refused).toEqual([
      { where: `${ORIGIN}: tenants[2]`, id: 'acme', reason: `tenant id acme is already defined at ${ORIGIN}: tenants[0]` },
    ]);
  });

  it('a refused tenant does not claim its id: a later valid one with that id is kept', () => {
    const f = parse(`tenants:
  - { id: acme, host: "bad host", port: 5432 }
  - { id: acme, host: 10.0.0.2, port: 5432 }
`);
    expect(f.snapshot.tenants.map((t) => t.targets.primary?.host)).toEqual(['10.0.0.2']);
    expect(f.snapshot.refused).toHaveLength(1);
    expect(f.snapshot.refused[0]?.where).toBe(`${ORIGIN}: tenants[0]`);
  });

  it('cuts a long bad value at 80 characters in the reason, escaped', () => {
    const r = withOneBad(`  - { id: bad, host: "${'x'.repeat(70)}\\n${'y'.repeat(200)}", port: 5432 }`);
    const reason = r.reasons[0] ?? '';
    expect(reason).toContain('...');
    expect(reason).not.toContain('\n');
    expect(reason.length).toBeLessThan(200);
  });
});

describe('keepPreviousDefinitions: an edit that breaks a served tenant keeps its previous definition', () => {
  const before = parse('tenants:\n  - { id: acme, host: 10.0.0.1, port: 5432, allow: [10.0.0.0/8] }\n  - { id: beta, host: 10.0.0.2, port: 5432 }\n');
  it('keeps acme as it was, reports the refusal saying so, and applies the rest of the edit', () => {
    const next = parse('tenants:\n  - { id: acme, host: 10.0.0.1, port: 5432, allow: [10.0.0.0/33] }\n  - { id: beta, host: 10.0.0.3, port: 5432 }\n');
    const kept = keepPreviousDefinitions(before, next);
    expect(kept.snapshot.tenants).toEqual([before.snapshot.tenants[0], next.snapshot.tenants[0]]);
    expect(kept.snapshot.refused[0]?.reason).toMatch(/prefix length.*; its previous definition is kept$/);
  });
  it('a tenant removed from the file is removed; a new tenant refused stays out', () => {
    const next = parse('tenants:\n  - { id: beta, host: 10.0.0.2, port: 5432 }\n  - { id: gamma, host: 10.0.0.2, port: 5432, maxClientConnections: -1 }\n');
    expect(keepPreviousDefinitions(before, next).snapshot.tenants.map((t) => t.id)).toEqual(['beta']);
  });
});
