// `pgroute status`, pure part: `show stat` answers captured from the real HAProxy 2.6.12 that
// `pgroute up` ran (fixtures/), joined with the routes.json and layout.json it wrote.
//   show-stat-sessions.csv   acme UP with 2 open sessions, globex/primary DOWN (closed port), globex/replica UP
//   show-stat-no-check.csv   after adding initech with `check: none` (server "no check"), globex disabled in access.json
// routes-/layout-no-check.json are the files pgroute wrote then; the -sessions.json ones are the same
// minus initech, with globex enabled (what it had written before: no backend changed in between).

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Layout } from '../../src/layout.js';
import { joinStatus, normalizeHealth, targetHealth, tenantServers, type RoutesView, type ServerStatus } from '../../src/status/join.js';
import { parseShowStat, splitCsvLine, statsByBackend } from '../../src/status/show-stat.js';
import { ago, renderTable, statusTable } from '../../src/status/table.js';

const fixture = (name: string): string => readFileSync(join(import.meta.dirname, 'fixtures', name), 'utf8');
const layout = JSON.parse(fixture('layout-sessions.json')) as Layout;
const routes = JSON.parse(fixture('routes-sessions.json')) as RoutesView;

describe('parseShowStat (HAProxy 2.6 CSV)', () => {
  const rows = parseShowStat(fixture('show-stat-sessions.csv'));

  it('reads every frontend, server and backend line by its header name', () => {
    expect(rows.map((r) => `${r.pxname}/${r.svname}`)).toEqual([
      'pgroute/FRONTEND',
      'pgroute-nowhere/BACKEND',
      'pgroute-agent/agent1',
      'pgroute-agent/BACKEND',
      'pg.acme.primary/s1',
      'pg.acme.primary/BACKEND',
      'pg.globex.primary/s1',
      'pg.globex.primary/BACKEND',
      'pg.globex.replica/s1',
      'pg.globex.replica/BACKEND',
      'pg.spare.0/s1',
      'pg.spare.0/BACKEND',
      'pg.spare.1/s1',
      'pg.spare.1/BACKEND',
      'pgroute-stats/FRONTEND',
    ]);
    const acme = rows.find((r) => r.pxname === 'pg.acme.primary' && r.svname === 's1');
    expect(acme).toMatchObject({ status: 'UP', scur: 2, stot: 2, rate: 0, addr: '127.0.0.1:21150', checkStatus: 'L4OK' });
    expect(acme?.fields['slim']).toBe('50');
    expect(rows.find((r) => r.pxname === 'pg.globex.primary' && r.svname === 's1')).toMatchObject({ status: 'DOWN', checkStatus: 'L4CON', addr: '127.0.0.1:21151' });
    expect(rows.find((r) => r.pxname === 'pg.spare.0' && r.svname === 's1')?.status).toBe('MAINT');
  });

  it('groups servers under their backend and leaves frontends out', () => {
    const by = statsByBackend(rows);
    expect(by.has('pgroute')).toBe(false);
    expect(by.get('pg.acme.primary')?.backend?.scur).toBe(2);
    expect(by.get('pg.acme.primary')?.servers.map((s) => s.svname)).toEqual(['s1']);
  });

  it('"no check" is read as a status', () => {
    const r = parseShowStat(fixture('show-stat-no-check.csv')).find((x) => x.pxname === 'pg.initech.primary' && x.svname === 's1');
    expect(r?.status).toBe('no check');
    expect(r?.checkStatus).toBeUndefined();
  });

  it('refuses an answer that is not show stat, naming it', () => {
    expect(() => parseShowStat('Unknown command. Please enter one of the following commands only :\n')).toThrow(/not a "show stat" answer: Unknown command/);
    expect(() => parseShowStat('')).toThrow(/empty answer/);
  });

  it('splits quoted CSV values', () => {
    expect(splitCsvLine('a,"b,c",,"d ""e"""')).toEqual(['a', 'b,c', '', 'd "e"']);
    expect(splitCsvLine('x,y,')).toEqual(['x', 'y', '']);
  });
});

describe('health', () => {
  const s = (health: ServerStatus['health']): ServerStatus => ({ name: 's', address: '', health, status: health, scur: 0, queued: 0 });

  it('normalizes HAProxy server states', () => {
    expect(['UP', 'UP 1/2', 'NOLB', 'DOWN', 'DOWN 1/2', 'MAINT', 'MAINT (via pg.x.primary/s1)', 'MAINT (resolution)', 'DRAIN', 'no check', 'OPEN'].map(normalizeHealth)).toEqual([
      'UP', 'UP', 'UP', 'DOWN', 'DOWN', 'MAINT', 'MAINT', 'MAINT', 'MAINT', 'no check', 'unknown',
    ]);
  });

  it('a target is UP when one server is, else no check, else MAINT when all are, else DOWN', () => {
    expect(targetHealth([s('DOWN'), s('UP')])).toBe('UP');
    expect(targetHealth([s('no check')])).toBe('no check');
    expect(targetHealth([s('MAINT'), s('MAINT')])).toBe('MAINT');
    expect(targetHealth([s('MAINT'), s('DOWN')])).toBe('DOWN');
    expect(targetHealth([])).toBe('unknown');
  });
});

describe('joinStatus', () => {
  it('one row per tenant target with health and the backend line counters', () => {
    const report = joinStatus({ routes, layout, disabled: [], stats: parseShowStat(fixture('show-stat-sessions.csv')) });
    expect(report.haproxy).toEqual({ reachable: true });
    expect(report.tenants.map((t) => t.id)).toEqual(['acme', 'globex']);
    const [acme, globex] = report.tenants;
    expect(acme).toMatchObject({ id: 'acme', state: 'enabled', scur: 2 });
    expect(acme?.targets).toEqual([
      {
        target: 'primary',
        backend: 'pg.acme.primary',
        address: '127.0.0.1:21150',
        health: 'UP',
        scur: 2,
        rate: 0,
        stot: 2,
        queued: 0,
        refused: 0,
        maxconn: 50,
        lastChangeSeconds: 7,
        servers: [{ name: 's1', address: '127.0.0.1:21150', health: 'UP', status: 'UP', checkStatus: 'L4OK', scur: 2, queued: 0, maxconn: 50, lastChangeSeconds: 7 }],
      },
    ]);
    expect(globex?.targets[0]?.maxconn).toBeUndefined();
    expect(report.refused).toEqual([]);
    expect(globex?.targets.map((t) => [t.target, t.backend, t.health, t.scur])).toEqual([
      ['primary', 'pg.globex.primary', 'DOWN', 0],
      ['replica', 'pg.globex.replica', 'UP', 0],
    ]);
    expect(globex?.disabledBy).toBeUndefined();
  });

  it('access.json disables; pending while routes.json still says enabled; the source disables too', () => {
    const r1 = joinStatus({ routes, layout, disabled: ['globex'], stats: [] });
    expect(r1.tenants.find((t) => t.id === 'globex')).toMatchObject({ state: 'disabled', disabledBy: 'access.json', pending: true });
    const off: RoutesView = { tenants: routes.tenants.map((t) => (t.id === 'globex' ? { ...t, enabled: false } : t)) };
    expect(joinStatus({ routes: off, layout, disabled: ['globex'], stats: [] }).tenants.find((t) => t.id === 'globex')).toEqual(expect.objectContaining({ state: 'disabled', disabledBy: 'access.json' }));
    expect(joinStatus({ routes: off, layout, disabled: ['globex'], stats: [] }).tenants.find((t) => t.id === 'globex')?.pending).toBeUndefined();
    expect(joinStatus({ routes: off, layout, disabled: [], stats: [] }).tenants.find((t) => t.id === 'globex')).toMatchObject({ state: 'disabled', disabledBy: 'source' });
  });

  it('tenants placed in layout.json but missing from routes.json still appear; without HAProxy health is unknown', () => {
    const report = joinStatus({ routes: { tenants: [] }, layout, disabled: [], statsError: 'connect ENOENT' });
    expect(report.haproxy).toEqual({ reachable: false, error: 'connect ENOENT' });
    expect(report.tenants.map((t) => t.id)).toEqual(['acme', 'globex']);
    expect(report.tenants.flatMap((t) => t.targets.map((x) => x.health))).toEqual(['unknown', 'unknown', 'unknown']);
  });

  it('the table names every tenant, target, health and session count', () => {
    const text = statusTable(joinStatus({ routes, layout, disabled: ['globex'], stats: parseShowStat(fixture('show-stat-sessions.csv')) }));
    const lines = text.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^TENANT\s+STATE\s+TARGET\s+BACKEND\s+ADDRESS\s+HEALTH\s+SESSIONS\s+QUEUED\s+MAXCONN\s+MAXQUEUE\s+REFUSED\s+RATE\s+TOTAL\s+CHANGED$/);
    expect(lines[1]).toMatch(/^acme\s+enabled\s+primary\s+pg\.acme\.primary\s+127\.0\.0\.1:21150\s+UP\s+2\s+0\s+50\s+-\s+0\s+0\s+2\s+7s$/);
    expect(lines[2]).toMatch(/^globex\s+disabled \(access\.json, pending\)\s+primary\s+pg\.globex\.primary\s+127\.0\.0\.1:21151\s+DOWN\s+0\s+0\s+-\s+-\s+0\s+0\s+0\s+6s$/);
    expect(lines[3]).toMatch(/^globex\s+.*replica\s+pg\.globex\.replica\s+.*UP\s+0\s+0\s+-\s+-\s+0\s+0\s+0\s+7s$/);
    expect(statusTable(joinStatus({ routes, layout, disabled: [] }))).toMatch(/admin socket did not answer/);
  });

  it('without HAProxy the limits are the layout\'s; refused definitions are listed under the table', () => {
    const limited: Layout = {
      ...layout,
      backends: layout.backends.map((b) => (b.state.kind === 'occupied' && b.state.occupant.tenant === 'globex' ? { ...b, state: { kind: 'occupied', occupant: { ...b.state.occupant, maxconn: 7, maxqueue: 3 } } } : b)),
    };
    const refused = [{ where: 'docker container x (3f2a9c0d1e2b)', id: 'acme', reason: 'tenant id acme is also defined by file: tenants.yaml: tenants[0]\u001b[2J' }];
    const report = joinStatus({ routes, layout: limited, disabled: [], statsError: 'connect ENOENT', refused });
    expect(report.tenants.find((t) => t.id === 'globex')?.targets.map((t) => [t.maxconn, t.maxqueue, t.queued, t.refused, t.lastChangeSeconds])).toEqual([
      [7, 3, 0, 0, undefined],
      [7, 3, 0, 0, undefined],
    ]);
    expect(report.refused).toEqual(refused);
    const text = statusTable(report);
    expect(text).toMatch(/^globex\s+enabled\s+primary\s+pg\.globex\.primary\s+\S+\s+unknown\s+0\s+0\s+7\s+3\s+0\s+0\s+0\s+-$/m);
    expect(text).toContain('\nRefused definitions (not served):\nTENANT  WHERE');
    expect(text).toMatch(/^acme\s+docker container x \(3f2a9c0d1e2b\)\s+tenant id acme is also defined by file: tenants\.yaml: tenants\[0\]/m);
    expect(text).not.toContain('\u001b');
  });

  it('ago: seconds, minutes, hours, days', () => {
    expect([undefined, 0, 119, 120, 7199, 7200, 172_799, 172_800].map(ago)).toEqual(['-', '0s', '119s', '2m', '119m', '2h', '47h', '2d']);
  });

  it('renderTable aligns columns', () => {
    expect(renderTable(['A', 'BB'], [['xxx', 'y']])).toBe('A    BB\nxxx  y\n');
  });
});

describe('joinStatus on the second capture', () => {
  it('initech with no check, globex disabled by access.json and applied (routes.json says so)', () => {
    const report = joinStatus({
      routes: JSON.parse(fixture('routes-no-check.json')) as RoutesView,
      layout: JSON.parse(fixture('layout-no-check.json')) as Layout,
      disabled: ['globex'],
      stats: parseShowStat(fixture('show-stat-no-check.csv')),
    });
    expect(report.tenants.map((t) => [t.id, t.state, t.disabledBy ?? '', t.pending ?? false, t.targets.map((x) => `${x.target}:${x.health}`).join(' ')])).toEqual([
      ['acme', 'enabled', '', false, 'primary:UP'],
      ['globex', 'disabled', 'access.json', false, 'primary:DOWN replica:UP'],
      ['initech', 'enabled', '', false, 'primary:no check'],
    ]);
  });
});

describe('tenantServers (for `tenant disable --kill-sessions`)', () => {
  it('every server of the tenant: occupied backends, cluster members, resting backends it left', () => {
    const l: Layout = {
      nextSpare: 2,
      backends: [
        { name: 'pg.acme.primary', spare: false, state: { kind: 'occupied', occupant: { tenant: 'acme', target: 'primary', endpoint: { host: '10.0.0.1', port: 5432 } } } },
        {
          name: 'pg.acme.replica',
          spare: false,
          state: { kind: 'occupied', occupant: { tenant: 'acme', target: 'replica', endpoint: { host: '10.0.0.2', port: 5432 }, members: [{ host: '10.0.0.2', port: 5432 }, { host: '10.0.0.3', port: 5432 }] } },
        },
        { name: 'pg.spare.0', spare: true, state: { kind: 'resting', until: 1, was: { tenant: 'acme', target: 'pool', endpoint: { host: '10.0.0.4', port: 6432 } } } },
        { name: 'pg.spare.1', spare: true, state: { kind: 'free' } },
        { name: 'pg.globex.primary', spare: false, state: { kind: 'occupied', occupant: { tenant: 'globex', target: 'primary', endpoint: { host: '10.0.0.5', port: 5432 } } } },
      ],
    };
    expect(tenantServers(l, 'acme')).toEqual(['pg.acme.primary/s1', 'pg.acme.replica/s1', 'pg.acme.replica/s2', 'pg.spare.0/s1']);
    expect(tenantServers(l, 'nobody')).toEqual([]);
    expect(tenantServers(layout, 'globex')).toEqual(['pg.globex.primary/s1', 'pg.globex.replica/s1']);
  });
});
