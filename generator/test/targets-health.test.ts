// Cluster targets (members) and their health checks: parsed from the tenants file, rendered into
// backends that follow a Patroni failover by themselves, and always applied by a reload.

import { describe, expect, it } from 'vitest';
import { desiredOccupants } from '../src/layout.js';
import { planChange } from '../src/plan.js';
import { renderConfig } from '../src/render/haproxy-config.js';
import { defaultSettings, statePaths } from '../src/settings.js';
import { parseTenantsFile } from '../src/sources/file.js';
import { FALLBACK, layoutOf, ORIGIN, TEMPLATES } from './support.js';

const FILE = `
tenants:
  - id: acme
    members:
      - { host: 10.0.0.1, port: 5432 }
      - { host: 10.0.0.2, port: 5432 }
      - { host: 10.0.0.3, port: 5432 }
    check: { kind: patroni, port: 8008 }
    maxconn: 50
    maxqueue: 20
    targets:
      replica:
        members:
          - { host: 10.0.0.2, port: 5432 }
          - { host: 10.0.0.3, port: 5432 }
        check: patroni
      pool: { host: 10.0.0.9, port: 6432, check: { kind: pgsql, user: monitor } }
`;

const settings = defaultSettings('/tmp/pgroute-targets-test');
const paths = statePaths(settings.stateDir);

function block(cfg: string, name: string): string[] {
  const lines = cfg.split('\n');
  const start = lines.indexOf(`backend ${name}`);
  const out: string[] = [];
  for (let i = start + 1; i < lines.length && (lines[i] ?? '') !== ''; i++) out.push(lines[i] as string);
  return out;
}

describe('cluster targets', () => {
  const f = parseTenantsFile(FILE, ORIGIN, FALLBACK);

  it('parses members, checks (with per-target Patroni paths) and limits', () => {
    expect(f.snapshot.refused).toEqual([]);
    const acme = f.snapshot.tenants[0];
    expect(acme?.targets.primary?.members).toHaveLength(3);
    expect(acme?.targets.primary?.check).toEqual({ kind: 'patroni', port: 8008, path: '/primary' });
    expect(acme?.targets.replica?.check).toEqual({ kind: 'patroni', port: 8008, path: '/replica' });
    expect(acme?.targets.pool?.check).toEqual({ kind: 'pgsql', user: 'monitor' });
    expect(acme?.maxqueue).toBe(20);
  });

  it('renders the primary as every member checked on /primary (one answer decides), sessions cut when a member changes role', () => {
    const cfg = renderConfig(f.deployment, layoutOf(f.snapshot), settings, paths, 'v', TEMPLATES).haproxyConfig;
    const primary = block(cfg, 'pg.acme.primary');
    expect(primary).toContain('    option httpchk GET /primary');
    expect(primary).toContain('    http-check expect status 200');
    expect(primary).toContain('    balance first');
    for (const [i, host] of ['10.0.0.1', '10.0.0.2', '10.0.0.3'].entries()) {
      expect(primary).toContain(`    server s${i + 1} ${host}:5432 check inter 2s fastinter 250ms downinter 250ms port 8008 fall 1 rise 1 maxconn 50 maxqueue 20 on-marked-down shutdown-sessions`);
    }
    const replica = block(cfg, 'pg.acme.replica');
    expect(replica).toContain('    option httpchk GET /replica');
    expect(replica).toContain('    balance leastconn');
    expect(block(cfg, 'pg.acme.pool')).toContain('    option pgsql-check user monitor');
  });

  it('refuses members with host/port, bad check kinds and bad Patroni ports with a reason', () => {
    const bad = parseTenantsFile(
      `tenants:
  - { id: a, host: 10.0.0.1, port: 5432, members: [{ host: 10.0.0.2, port: 5432 }] }
  - { id: b, host: 10.0.0.1, port: 5432, check: http }
  - { id: c, host: 10.0.0.1, port: 5432, check: { kind: patroni, port: 0 } }
  - { id: d, host: 10.0.0.1, port: 5432, check: { kind: pgsql, user: "x; drop" } }
  - { id: e, members: [] }
`,
      ORIGIN,
      FALLBACK,
    );
    expect(bad.snapshot.tenants).toEqual([]);
    expect(bad.snapshot.refused.map((r) => r.reason)).toEqual([
      'give either host and port, or members, not both',
      'check kind "http" is not one of tcp, pgsql, patroni, none',
      'check.port: port must be an integer from 1 to 65535, got 0',
      'check.user must be a PostgreSQL role name of letters, digits and _',
      'members must be a list of 1 to 16 { host, port }',
    ]);
  });

  it('a cluster target never goes into a spare: adding one, or changing its members, is a reload', () => {
    const single = parseTenantsFile('tenants:\n  - { id: acme, host: 10.0.0.1, port: 5432 }\n', ORIGIN, FALLBACK);
    const current = layoutOf(single.snapshot, 4);
    const add = planChange(current, desiredOccupants(f.snapshot.tenants), { now: 0, spares: 4, restMs: 1000, forcedReload: [] });
    expect(add.reloadReasons.join(' ')).toMatch(/members, health check or queue limit changed for acme\/primary/);
    expect(add.reloadReasons.join(' ')).toMatch(/new target\(s\) that no free spare backend fits/);
  });
});
