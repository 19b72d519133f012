// The Applier with a real RouteStore, the real `haproxy -c`, and fake admin and master sockets in
// the state dir: the agent's table is ordered around HAProxy's changes, runtime failures fall back
// to a reload, and a failed reload restores the last-known-good files.

import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { cliSocket } from './support.js';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { Registry } from 'prom-client';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { RouteTable } from '../../agent/src/decision/types.js';
import { EMPTY_ROUTE_TABLE, RouteStore } from '../../agent/src/routes-store.js';
import { Applier } from '../src/apply.js';
import { createGeneratorMetrics, type GeneratorMetrics } from '../src/metrics.js';
import type { Deployment, Target, Tenant, TenantSnapshot } from '../src/model.js';
import { defaultSettings, statePaths, type Settings, type StatePaths } from '../src/settings.js';

process.env.PGROUTE_HAPROXY ??= '/usr/sbin/haproxy';

const DEPLOYMENT: Deployment = {
  listeners: [{ address: '127.0.0.1', port: 25432 }],
  policy: { keys: ['database'], targetByPort: {}, defaultTarget: 'primary', revealDisabled: false },
};

function tenant(id: string, primary: Target, maxconn?: number): Tenant {
  return maxconn === undefined ? { id, enabled: true, targets: { primary } } : { id, enabled: true, targets: { primary }, maxconn };
}
const snap = (...tenants: Tenant[]): TenantSnapshot => ({ tenants, refused: [] });
const ACME = tenant('acme', { host: '10.0.0.1', port: 5432 });
const OLD = tenant('old', { host: '10.0.0.2', port: 5432 });
const NEW = tenant('new', { host: '10.0.0.3', port: 5433 });

/** Which tenant routes to which backends, from the agent's table. */
function routes(table: RouteTable): Record<string, Record<string, string>> {
  return Object.fromEntries([...table.tenants].map(([id, t]) => [id, { ...t.backends }]));
}

/** The targets a table names as pending (HAProxy is adding their backends), by tenant. */
function pending(table: RouteTable): Record<string, readonly string[]> {
  return Object.fromEntries([...table.tenants].flatMap(([id, t]) => (t.pending === undefined ? [] : [[id, t.pending]])));
}

// --- Fake HAProxy sockets -------------------------------------------------------------------

interface FakeSocket {
  readonly lines: string[];
  close(): Promise<void>;
}


interface FakeAdmin extends FakeSocket {
  /** The agent's table at the instant each command line arrived. */
  readonly tablesSeen: RouteTable[];
  /** Map command lines (haproxy/maps-publisher.ts), apart from `lines`, with the agent's table then. */
  readonly mapLines: { readonly line: string; readonly table: RouteTable }[];
  refuse: boolean;
  /** Map commands (all, or `del map` only) get HAProxy's answer for an unknown map (the others are answered as usual). */
  refuseMaps: false | 'all' | 'del';
}

async function fakeAdmin(path: string, store: RouteStore): Promise<FakeAdmin> {
  const fake = { lines: [] as string[], tablesSeen: [] as RouteTable[], mapLines: [] as FakeAdmin['mapLines'][number][], refuse: false, refuseMaps: false as FakeAdmin['refuseMaps'], close: async (): Promise<void> => undefined };
  const server = await cliSocket(path, (line, sock) => {
    if (/^(add|del|clear) map /.test(line)) fake.mapLines.push({ line, table: store.table });
    else {
      fake.lines.push(line);
      fake.tablesSeen.push(store.table);
    }
    let out = '';
    for (const cmd of line.split(';').map((c) => c.trim())) {
      if (cmd === 'quit') break;
      if ((fake.refuseMaps === 'all' && /^(add|del|clear) map /.test(cmd)) || (fake.refuseMaps === 'del' && /^del map /.test(cmd))) out += 'Unknown map identifier. Please use #<id> or <file>.\n\n';
      else if (fake.refuse) out += 'No such backend.\n\n';
      else {
        const addr = /addr (\S+) port (\d+)$/.exec(cmd);
        if (addr && !/^[\d.]+$|:/.test(addr[1] as string)) out += `Invalid addr '${addr[1]}' by 'stats socket command'\n\n`;
        else out += addr ? `IP changed from '127.0.0.1' to '${addr[1]}', port changed from '1' to '${addr[2]}' by 'stats socket command'\n\n` : '\n';
      }
    }
    sock.end(out);
  });
  fake.close = () => new Promise<void>((r) => server.close(() => r()));
  return fake;
}

interface FakeMaster extends FakeSocket {
  outcome: 'success' | 'failure';
}

async function fakeMaster(path: string): Promise<FakeMaster> {
  const state = { reloads: 0, failed: 0, worker: 500 };
  const fake = { lines: [] as string[], outcome: 'success' as 'success' | 'failure', close: async (): Promise<void> => undefined };
  const server = await cliSocket(path, (line, sock) => {
    fake.lines.push(line);
    const cmd = line.split(';')[0]?.trim();
    if (cmd === 'reload') {
      sock.destroy();
      setTimeout(() => {
        state.reloads += 1;
        if (fake.outcome === 'failure') state.failed += 1;
        else {
          state.failed = 0;
          state.worker += 1;
        }
      }, 20);
      return;
    }
    sock.end(
      '#<PID>          <type>          <reloads>       <uptime>        <version>      \n' +
        `1               master          ${`${state.reloads} [failed: ${state.failed}]`.padEnd(15)} 0d00h01m00s     2.6.12-1+deb12u4\n` +
        '# workers\n' +
        `${String(state.worker).padEnd(15)} worker          0               0d00h00m05s     2.6.12-1+deb12u4\n` +
        '# programs\n\n',
    );
  });
  fake.close = () => new Promise<void>((r) => server.close(() => r()));
  return fake;
}

// --- Fixture ----------------------------------------------------------------------------------

let root: string;
const cleanup: (() => Promise<void>)[] = [];
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'pgroute-apply-'));
});
afterEach(async () => {
  for (const c of cleanup.splice(0)) await c();
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

interface Fixture {
  readonly settings: Settings;
  readonly paths: StatePaths;
  readonly store: RouteStore;
  readonly metrics: GeneratorMetrics;
  readonly applier: Applier;
  readonly admin: FakeAdmin;
  readonly master: FakeMaster;
  /** The map command lines sent for `file`, with the agent's table at each. */
  mapLines(file: string): FakeAdmin['mapLines'];
}

/** An Applier that already rendered `initial` and is attached to the fake sockets. */
async function fixture(initial: TenantSnapshot, spares = 1): Promise<Fixture> {
  const settings: Settings = { ...defaultSettings(await mkdtemp(join(root, 's-'))), spares, restMs: 10_000 };
  const paths = statePaths(settings.stateDir);
  const store = new RouteStore(EMPTY_ROUTE_TABLE);
  const metrics = createGeneratorMetrics(new Registry());
  const applier = new Applier({ settings, store, log: pino({ level: 'silent' }), metrics });
  const admin = await fakeAdmin(paths.adminSocket, store);
  const master = await fakeMaster(paths.masterSocket);
  cleanup.push(admin.close, master.close);
  const first = await applier.apply(DEPLOYMENT, initial);
  expect(first.kind).toBe('initial');
  applier.attach();
  return { settings, paths, store, metrics, applier, admin, master, mapLines: (file) => admin.mapLines.filter((l) => l.line.includes(` map ${file}`)) };
}

/** pgroute_applies_total{kind,result}: -1 when the series does not exist (they all do from the start). */
async function applies(m: GeneratorMetrics, kind: string, result = 'ok'): Promise<number> {
  return (await m.applies.get()).values.find((v) => v.labels.kind === kind && v.labels.result === result)?.value ?? -1;
}

/** What was sent to the admin socket to change HAProxy (reading the servers' state changes nothing). */
function changes(lines: readonly string[]): string[] {
  return lines.filter((l) => !l.startsWith('show servers state'));
}

describe('Applier', { timeout: 30_000 }, () => {
  it('the first apply renders everything and publishes the table; nothing is sent to HAProxy', async () => {
    const f = await fixture(snap(ACME, OLD));
    expect(routes(f.store.table)).toEqual({ acme: { primary: 'pg.acme.primary' }, old: { primary: 'pg.old.primary' } });
    const cfg = await readFile(f.paths.haproxyConfig, 'utf8');
    expect(cfg).toMatch(/^backend pg\.spare\.0$/m);
    expect(f.admin.lines).toEqual([]);
    expect(f.master.lines).toEqual([]);
    expect((await f.applier.apply(DEPLOYMENT, snap(ACME, OLD))).kind).toBe('unchanged');
  });

  it('runtime: the interim table (vacated gone, newcomer not yet) is published BEFORE the commands; the newcomer is routable after', async () => {
    const f = await fixture(snap(ACME, OLD));
    const r = await f.applier.apply(DEPLOYMENT, snap(ACME, NEW));
    expect(r).toEqual({ kind: 'runtime', detail: '2 operation(s), 5 command(s)' });
    expect(f.admin.lines).toEqual([
      'set server pg.old.primary/s1 state maint; set server pg.spare.0/s1 addr 10.0.0.3 port 5433; set maxconn server pg.spare.0/s1 0; set server pg.spare.0/s1 health up; set server pg.spare.0/s1 state ready; quit',
    ]);
    // At the instant HAProxy got the commands, the agent had forgotten `old` and not learned `new`'s
    // backend: `new` is pending (its connections are held, not refused as unknown).
    expect(routes(f.admin.tablesSeen[0] as RouteTable)).toEqual({ acme: { primary: 'pg.acme.primary' }, new: {} });
    expect(pending(f.admin.tablesSeen[0] as RouteTable)).toEqual({ new: ['primary'] });
    // The limits map: the interim table (old gone) keeps old's refusals; new's are added before the
    // agent learns of it (with the interim table, where it is pending), old's deleted after.
    const limits = f.mapLines(f.paths.limitsMap);
    expect(limits.map((l) => l.line.replace(/ [A-Za-z0-9+/=]{40,}/g, ' <b64>'))).toEqual([
      `add map ${f.paths.limitsMap} new/c/1024 <b64>; add map ${f.paths.limitsMap} new/r/1000 <b64>; quit`,
      `del map ${f.paths.limitsMap} old/c/1024; del map ${f.paths.limitsMap} old/r/1000; quit`,
    ]);
    // new's are added with the interim table (which names new, pending), before the agent has it.
    expect(limits.map((l) => Object.keys(routes(l.table)).sort())).toEqual([['acme', 'old'], ['acme', 'new']]);
    // After: `new` is routable in the spare it took, and nothing is pending.
    expect(routes(f.store.table)).toEqual({ acme: { primary: 'pg.acme.primary' }, new: { primary: 'pg.spare.0' } });
    expect(pending(f.store.table)).toEqual({});
    expect(f.master.lines).toEqual([]);
    expect(await applies(f.metrics, 'runtime')).toBe(1);
    // HAProxy's series for pg.spare.0 join to the tenant through pgroute_backend_info; no spare is left free.
    const info = (await f.metrics.backendInfo.get()).values.map((v) => v.labels);
    expect(info).toContainEqual({ backend: 'pg.spare.0', tenant: 'new', target: 'primary' });
    expect(info).toContainEqual({ backend: 'pg.acme.primary', tenant: 'acme', target: 'primary' });
    expect(info.some((l) => l.tenant === 'old')).toBe(false);
    const spares = Object.fromEntries((await f.metrics.spares.get()).values.map((v) => [v.labels.state, v.value]));
    expect(spares).toMatchObject({ free: 0, occupied: 1 });
    // The files say the same, so a later reload keeps it.
    const cfg = await readFile(f.paths.haproxyConfig, 'utf8');
    expect(cfg).toContain('server s1 10.0.0.3:5433');
    const layout = JSON.parse(await readFile(f.paths.layout, 'utf8')) as { backends: { name: string; state: { kind: string } }[] };
    expect(layout.backends.map((b) => [b.name, b.state.kind])).toEqual([
      ['pg.acme.primary', 'occupied'],
      ['pg.old.primary', 'resting'],
      ['pg.spare.0', 'occupied'],
    ]);
    expect(JSON.parse(await readFile(f.paths.routes, 'utf8'))).toMatchObject({ tenants: [{ id: 'acme' }, { id: 'new', backends: { primary: 'pg.spare.0' } }] });
  });

  it('a change to the table only (enabled flag) sends nothing to HAProxy', async () => {
    const f = await fixture(snap(ACME));
    const r = await f.applier.apply(DEPLOYMENT, snap({ ...ACME, enabled: false }));
    expect(r.kind).toBe('agent');
    expect(f.admin.lines).toEqual([]);
    expect(f.store.table.tenants.get('acme')?.enabled).toBe(false);
  });

  it('a runtime failure falls back to a reload, after which the newcomer is routable', async () => {
    const f = await fixture(snap(ACME, OLD));
    f.admin.refuse = true;
    const r = await f.applier.apply(DEPLOYMENT, snap(ACME, NEW));
    expect(r.kind).toBe('reload');
    expect(r.detail).toMatch(/^runtime API failed: new worker 501/);
    expect(changes(f.admin.lines)).toHaveLength(1);
    expect(f.master.lines).toContain('reload; quit');
    // The reload gave the newcomer a readable name; the old tenant is gone.
    expect(routes(f.store.table)).toEqual({ acme: { primary: 'pg.acme.primary' }, new: { primary: 'pg.new.primary' } });
    const cfg = await readFile(f.paths.haproxyConfig, 'utf8');
    expect(cfg).toMatch(/^backend pg\.new\.primary$/m);
    expect(cfg).not.toMatch(/^backend pg\.old\.primary$/m);
    expect(await applies(f.metrics, 'reload')).toBe(1);
    expect(await applies(f.metrics, 'reload', 'failed')).toBe(0);
  });

  it('no free spare: a reload, the table published before it is the interim one', async () => {
    const f = await fixture(snap(ACME, OLD), 0);
    const r = await f.applier.apply(DEPLOYMENT, snap(ACME, NEW));
    expect(r.kind).toBe('reload');
    expect(r.detail).toMatch(/new\/primary/);
    expect(changes(f.admin.lines)).toEqual([]);
    // Before the reload, the running worker's server state was read for the next one.
    expect(f.admin.lines).toContain('show servers state; quit');
    expect(routes(f.store.table)).toEqual({ acme: { primary: 'pg.acme.primary' }, new: { primary: 'pg.new.primary' } });
  });

  it('a reload failure restores the previous files (config, routes, layout), counts a rollback, and leaves the agent on the interim table without pending targets', async () => {
    const f = await fixture(snap(ACME, OLD));
    const cfgBefore = await readFile(f.paths.haproxyConfig);
    const spoeBefore = await readFile(f.paths.spoeConfig);
    const routesBefore = await readFile(f.paths.routes);
    const layoutBefore = await readFile(f.paths.layout);
    f.master.outcome = 'failure';
    const moved: Deployment = { ...DEPLOYMENT, listeners: [{ address: '127.0.0.1', port: 25433 }] };
    const r = await f.applier.apply(moved, snap(ACME, NEW));
    expect(r.kind).toBe('failed');
    expect(r.detail).toMatch(/HAProxy reload failed \(.*failed to load.*\); restored the last-known-good configuration/);
    expect(f.master.lines).toContain('reload; quit');
    expect(await readFile(f.paths.haproxyConfig)).toEqual(cfgBefore);
    expect(await readFile(f.paths.spoeConfig)).toEqual(spoeBefore);
    // A restart (or an agent reading routes.json) must not pick up the rejected candidate.
    expect(await readFile(f.paths.routes)).toEqual(routesBefore);
    expect(await readFile(f.paths.layout)).toEqual(layoutBefore);
    // One failed apply, counted once: the reload it tried, failed (the last-known-good files restored).
    expect(await applies(f.metrics, 'reload', 'failed')).toBe(1);
    expect(await applies(f.metrics, 'reload')).toBe(0);
    // Only what the running workers still have: acme (old was being vacated, new never arrived and
    // is no longer pending: connections held for it were answered when the reload failed).
    expect(routes(f.store.table)).toEqual({ acme: { primary: 'pg.acme.primary' } });
    expect(pending(f.store.table)).toEqual({});
    expect(f.applier.deployment).toEqual(DEPLOYMENT);

    // The same snapshot again is tried again (not "unchanged"), and works once HAProxy does.
    f.master.outcome = 'success';
    const again = await f.applier.apply(moved, snap(ACME, NEW));
    expect(again.kind).toBe('reload');
    expect(again.detail).toMatch(/^listeners changed/);
    expect(routes(f.store.table)).toEqual({ acme: { primary: 'pg.acme.primary' }, new: { primary: 'pg.new.primary' } });
    expect(await readFile(f.paths.haproxyConfig, 'utf8')).toContain('bind 127.0.0.1:25433');
  });

  it('after a failed reload, going back to the running tenants republishes their full table (the agent does not stay on the interim)', async () => {
    const f = await fixture(snap(ACME, OLD), 0);
    f.master.outcome = 'failure';
    expect((await f.applier.apply(DEPLOYMENT, snap(ACME, NEW))).kind).toBe('failed');
    expect(routes(f.store.table)).toEqual({ acme: { primary: 'pg.acme.primary' } });
    const back = await f.applier.apply(DEPLOYMENT, snap(ACME, OLD));
    expect(back).toEqual({ kind: 'agent', detail: 'route table only' });
    expect(routes(f.store.table)).toEqual({ acme: { primary: 'pg.acme.primary' }, old: { primary: 'pg.old.primary' } });
    expect(pending(f.store.table)).toEqual({});
  });

  it('a table the agent could not be given (HAProxy refused a map command) fails the apply unsettled: going back to the running tenants is applied again', async () => {
    const f = await fixture(snap(ACME, OLD), 0);
    f.admin.refuseMaps = 'all';
    // The interim table's publish adds new's limits to HAProxy's map first: refused, before any reload.
    expect((await f.applier.apply(DEPLOYMENT, snap(ACME, NEW))).kind).toBe('failed');
    expect(f.master.lines).not.toContain('reload; quit');
    // Nothing is coming: new is not held as pending while the change is retried.
    expect(routes(f.store.table)).toEqual({ acme: { primary: 'pg.acme.primary' } });
    expect(pending(f.store.table)).toEqual({});
    f.admin.refuseMaps = false;
    const back = await f.applier.apply(DEPLOYMENT, snap(ACME, OLD));
    expect(back.kind).not.toBe('unchanged');
    expect(routes(f.store.table)).toEqual({ acme: { primary: 'pg.acme.primary' }, old: { primary: 'pg.old.primary' } });
    expect(pending(f.store.table)).toEqual({});
  });

  it('the final table failing after a reload (a refused map command): what HAProxy runs is recorded, unsettled; the next change is planned from it', async () => {
    const f = await fixture(snap(ACME, OLD), 0);
    f.admin.refuseMaps = 'del';
    // Reloaded onto acme+new; the final publish deletes old's limits from the map: refused.
    const r = await f.applier.apply(DEPLOYMENT, snap(ACME, NEW));
    expect(r.kind).toBe('failed');
    expect(f.master.lines.filter((l) => l === 'reload; quit')).toHaveLength(1);
    expect(routes(f.store.table)).toEqual({ acme: { primary: 'pg.acme.primary' }, new: { primary: 'pg.new.primary' } });
    f.admin.refuseMaps = false;
    // Going back to old needs old's backend again, which the running configuration lost: a reload
    // (planned from acme+old it would have been a table-only change naming a backend HAProxy lacks).
    const back = await f.applier.apply(DEPLOYMENT, snap(ACME, OLD));
    expect(back.kind).toBe('reload');
    expect(f.master.lines.filter((l) => l === 'reload; quit')).toHaveLength(2);
    expect(routes(f.store.table)).toEqual({ acme: { primary: 'pg.acme.primary' }, old: { primary: 'pg.old.primary' } });
    expect(await readFile(f.paths.haproxyConfig, 'utf8')).toMatch(/^backend pg\.old\.primary$/m);
  });

  it('the final table failing after runtime commands: the files still say what HAProxy runs, and the same change is tried again (the maps)', async () => {
    const f = await fixture(snap(ACME, OLD));
    f.admin.refuseMaps = 'del';
    const r = await f.applier.apply(DEPLOYMENT, snap(ACME, NEW));
    expect(r.kind).toBe('failed');
    expect(f.master.lines).toEqual([]);
    expect(routes(f.store.table)).toEqual({ acme: { primary: 'pg.acme.primary' }, new: { primary: 'pg.spare.0' } });
    // Written after the commit as on success: a reload (by anyone) would keep new where HAProxy has it.
    expect(await readFile(f.paths.haproxyConfig, 'utf8')).toContain('server s1 10.0.0.3:5433');
    f.admin.refuseMaps = false;
    const seen = f.mapLines(f.paths.limitsMap).length;
    const again = await f.applier.apply(DEPLOYMENT, snap(ACME, NEW));
    expect(again).toEqual({ kind: 'agent', detail: 'route table only' });
    // The maps' content was unknown after the refusal: the retry clears the map and writes it whole, without old's.
    const retried = f.mapLines(f.paths.limitsMap).slice(seen).map((l) => l.line);
    expect(retried[0]).toMatch(/^clear map /);
    expect(retried.join('\n')).toContain('new/c/1024');
    expect(retried.join('\n')).not.toContain('old/');
  });

  it('runtime commands failing and then the fallback reload failing: the next change is a reload, whatever it is', async () => {
    const f = await fixture(snap(ACME, OLD));
    f.admin.refuse = true;
    f.master.outcome = 'failure';
    const r = await f.applier.apply(DEPLOYMENT, snap(ACME));
    expect(r.kind).toBe('failed');
    expect(r.detail).toMatch(/HAProxy reload failed/);
    // The agent keeps only what HAProxy surely still serves: acme.
    expect(routes(f.store.table)).toEqual({ acme: { primary: 'pg.acme.primary' } });
    f.admin.refuse = false;
    f.master.outcome = 'success';
    const adminLines = changes(f.admin.lines).length;
    // old comes back: its backend may have been put in maintenance by the failed commands, so no
    // runtime shortcut: a reload makes HAProxy's state known again.
    const next = await f.applier.apply(DEPLOYMENT, snap(ACME, OLD));
    expect(next.kind).toBe('reload');
    expect(next.detail).toMatch(/^a previous apply failed part-way through the runtime API/);
    // No runtime command, only the reload (which saves the servers' state first).
    expect(changes(f.admin.lines)).toHaveLength(adminLines);
    expect(routes(f.store.table)).toEqual({ acme: { primary: 'pg.acme.primary' }, old: { primary: 'pg.old.primary' } });
  });

  it('a target at a host name is placed by a reload, never through the runtime API', async () => {
    const f = await fixture(snap(ACME));
    const r = await f.applier.apply(DEPLOYMENT, snap(ACME, tenant('named', { host: 'db.internal', port: 5432 })));
    expect(r.kind).toBe('reload');
    expect(r.detail).toMatch(/named\/primary is at a host name \(db\.internal\)/);
    expect(changes(f.admin.lines)).toEqual([]);
  });

  it('a target at a host name that changes port only is reloaded, not sent to the runtime API as an address (bug fix)', async () => {
    const f = await fixture(snap(ACME, tenant('named', { host: 'db.internal', port: 5432 })));
    // maxconn alone is fine through the runtime API
    const limited = await f.applier.apply(DEPLOYMENT, snap(ACME, tenant('named', { host: 'db.internal', port: 5432 }, 5)));
    expect(limited.kind).toBe('runtime');
    expect(f.admin.lines).toEqual(['set maxconn server pg.named.primary/s1 5; quit']);
    const r = await f.applier.apply(DEPLOYMENT, snap(ACME, tenant('named', { host: 'db.internal', port: 6432 }, 5)));
    expect(r.kind).toBe('reload');
    expect(r.detail).toMatch(/is at a host name/);
    expect(f.admin.lines.some((l) => l.includes('addr db.internal'))).toBe(false);
  });

  it("a limit change reaches HAProxy's limits map in the publish step: the new refusal before the agent learns the limit, the old one gone after; the file says the same", async () => {
    const f = await fixture(snap({ ...ACME, limits: { maxClientConnections: 3 } }));
    const file = f.paths.limitsMap;
    expect(await readFile(file, 'utf8')).toMatch(/^acme\/c\/3 \S+$/m);
    const r = await f.applier.apply(DEPLOYMENT, snap({ ...ACME, limits: { maxClientConnections: 4 } }));
    expect(r.kind).toBe('agent');
    const b64 = (l: { readonly line: string }): string => l.line.replace(/ [A-Za-z0-9+/=]{40,}/, ' <b64>');
    const cap = (t: RouteTable): number | undefined => t.tenants.get('acme')?.limits?.maxClientConnections;
    expect(f.mapLines(file).map(b64)).toEqual([`add map ${file} acme/c/4 <b64>; quit`, `del map ${file} acme/c/3; quit`]);
    expect(f.mapLines(file).map((l) => cap(l.table))).toEqual([3, 4]);
    expect(cap(f.store.table)).toBe(4);
    const text = await readFile(file, 'utf8');
    expect(text).toMatch(/^acme\/c\/4 \S+$/m);
    expect(text).not.toMatch(/^acme\/c\/3 /m);
  });
});
