// `pgroute plan`'s pure core: the applied state rebuilt from the state dir's files is the state the
// pipeline applied (so a plan of the same snapshot says "no changes", and a plan of the next one
// says what the pipeline will do), and the tenant changes an operator reads.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { opCommands } from '../../src/haproxy/runtime.js';
import { EMPTY_LAYOUT } from '../../src/layout.js';
import type { Deployment, Tenant, TenantSnapshot } from '../../src/model.js';
import { appliedOf } from '../../src/preview/applied.js';
import { tenantChanges } from '../../src/preview/changes.js';
import { previewChange } from '../../src/preview/preview.js';
import { previewText } from '../../src/preview/text.js';
import { reconcile, type Applied, type ReconcileContext, type Step } from '../../src/reconcile.js';
import { edit, editArb, tenantArb } from '../churn.js';

const POLICY: Deployment['policy'] = { keys: ['options', 'database'], targetByPort: {}, defaultTarget: 'primary', revealDisabled: false };
const DEPLOYMENT: Deployment = { listeners: [{ address: '127.0.0.1', port: 5432 }], policy: POLICY };
const CTX = { now: 1_000_000, spares: 2, restMs: 10_000, previousLayout: EMPTY_LAYOUT };

function snapshot(tenants: Iterable<Tenant>): TenantSnapshot {
  return { tenants: [...tenants].sort((a, b) => (a.id < b.id ? -1 : 1)), refused: [] };
}

/** What the pipeline records after applying `snap` (the commit step), and the files the write step leaves. */
function applyModel(applied: Applied | undefined, snap: TenantSnapshot, deployment = DEPLOYMENT, now = CTX.now): { applied: Applied; version: string } {
  const ctx: ReconcileContext = { ...CTX, now, live: applied !== undefined, startsHaproxy: false };
  const t = reconcile(applied, { deployment, snapshot: snap }, ctx);
  const commit = t.steps.find((s): s is Extract<Step, { kind: 'commit' }> => s.kind === 'commit');
  const final = t.steps.find((s): s is Extract<Step, { kind: 'publish' }> => s.kind === 'publish' && s.phase === 'final');
  if (commit === undefined || final === undefined) throw new Error('no commit');
  return { applied: commit.applied, version: final.routes.version };
}

/** The applied state as `pgroute plan` reads it back from routes.json, layout.json and deployment.json. */
function fromFiles(a: { applied: Applied; version: string }) {
  const final = reconcile(a.applied, { deployment: a.applied.deployment, snapshot: a.applied.snapshot }, { ...CTX, live: true, startsHaproxy: false });
  const routes = final.steps.find((s): s is Extract<Step, { kind: 'publish' }> => s.kind === 'publish' && s.phase === 'final');
  if (routes === undefined) throw new Error('no table');
  const rebuilt = appliedOf({ routes: routes.routes, layout: a.applied.layout, deployment: a.applied.deployment }, DEPLOYMENT);
  return { state: rebuilt.applied, version: a.version, listenersKnown: rebuilt.listenersKnown };
}

const histories = fc.record({ first: fc.uniqueArray(tenantArb, { selector: (t) => t.id, maxLength: 5 }), edits: fc.array(editArb, { minLength: 1, maxLength: 4 }) });

describe('pgroute plan (pure)', () => {
  it('the state rebuilt from the files holds the applied tenants: the same snapshot plans as no change', () => {
    fc.assert(
      fc.property(histories, ({ first }) => {
        const a = applyModel(undefined, snapshot(first));
        const back = fromFiles(a);
        expect(back.state.snapshot.tenants).toEqual(a.applied.snapshot.tenants);
        const p = previewChange({ applied: back, desired: { deployment: DEPLOYMENT, snapshot: snapshot(first) }, ctx: CTX });
        expect(p).toMatchObject({ kind: 'unchanged', changes: [], commands: [], reloadReasons: [], desiredVersion: a.version, appliedVersion: a.version });
      }),
    );
  });

  it("the plan of the next snapshot is the transition the pipeline performs (kind, runtime commands, reload reasons)", () => {
    fc.assert(
      fc.property(histories, ({ first, edits }) => {
        const a = applyModel(undefined, snapshot(first));
        const tenants = new Map(first.map((t) => [t.id, t]));
        for (const e of edits) edit(tenants, e);
        const next = snapshot(tenants.values());
        const p = previewChange({ applied: fromFiles(a), desired: { deployment: DEPLOYMENT, snapshot: next }, ctx: CTX });
        const real = reconcile(a.applied, { deployment: DEPLOYMENT, snapshot: next }, { ...CTX, live: true, startsHaproxy: false });
        const changes = tenantChanges(first, next.tenants);
        expect(p.changes).toEqual(changes);
        if (changes.length === 0) expect(p.kind).toBe('unchanged');
        else {
          expect(p.kind).toBe(real.kind);
          expect(p.reloadReasons).toEqual(real.reasons);
          expect(p.commands).toEqual(real.ops.flatMap(opCommands));
          expect(p.desiredVersion).toBe(applyModel(a.applied, next).version);
        }
      }),
    );
  });

  it('names each change: added, removed, moved, disabled, limits, targets', () => {
    const before: Tenant[] = [
      { id: 'acme', enabled: true, targets: { primary: { host: '10.0.0.1', port: 5432 } } },
      { id: 'globex', enabled: true, targets: { primary: { host: '10.0.0.2', port: 5432 }, replica: { host: '10.0.0.3', port: 5432 } } },
      { id: 'initech', enabled: true, targets: { primary: { host: '10.0.0.4', port: 5432 } } },
    ];
    const after: Tenant[] = [
      { id: 'acme', enabled: true, maxconn: 10, targets: { primary: { host: '10.0.0.9', port: 5433 } } },
      { id: 'globex', enabled: false, targets: { primary: { host: '10.0.0.2', port: 5432, check: { kind: 'pgsql', user: 'mon' } }, pool: { host: '10.0.0.5', port: 6432 } } },
      { id: 'hooli', enabled: true, targets: { primary: { host: '2001:db8::1', port: 5432 } } },
    ];
    expect(tenantChanges(before, after)).toEqual([
      { tenant: 'acme', action: 'move', target: 'primary', before: '10.0.0.1:5432', after: '10.0.0.9:5433' },
      { tenant: 'acme', action: 'limit', before: 'maxconn none, maxqueue none', after: 'maxconn 10, maxqueue none' },
      { tenant: 'globex', action: 'disable' },
      { tenant: 'globex', action: 'add-target', target: 'pool', after: '10.0.0.5:6432' },
      { tenant: 'globex', action: 'reconfigure', target: 'primary', before: 'check tcp, tls off', after: 'check pgsql as mon, tls off' },
      { tenant: 'globex', action: 'remove-target', target: 'replica', before: '10.0.0.3:5432' },
      { tenant: 'hooli', action: 'add', after: 'primary [2001:db8::1]:5432' },
      { tenant: 'initech', action: 'remove', before: 'primary 10.0.0.4:5432' },
    ]);
  });

  it('a runtime change lists its commands; a listener change is a reload; refusals are listed', () => {
    const one: Tenant = { id: 'acme', enabled: true, targets: { primary: { host: '10.0.0.1', port: 5432 } } };
    const a = applyModel(undefined, snapshot([one]));
    const added: Tenant = { id: 'hooli', enabled: true, targets: { primary: { host: '10.0.0.7', port: 5432 } } };
    const p = previewChange({ applied: fromFiles(a), desired: { deployment: DEPLOYMENT, snapshot: { tenants: [one, added], refused: [{ where: 'tenants.yaml: tenants[2]', id: 'bad', reason: 'port 0 is not a port' }] } }, ctx: CTX });
    expect(p.kind).toBe('runtime');
    expect(p.commands).toEqual(['set server pg.spare.0/s1 addr 10.0.0.7 port 5432', 'set maxconn server pg.spare.0/s1 0', 'set server pg.spare.0/s1 health up', 'set server pg.spare.0/s1 state ready']);
    const text = previewText(p);
    expect(text).toMatch(/^\+\s+hooli\s+add\s+primary 10\.0\.0\.7:5432$/m);
    expect(text).toContain("Applied through HAProxy's runtime API, without a reload (4 command(s)):\n  set server pg.spare.0/s1 addr 10.0.0.7 port 5432");
    expect(text).toContain('  bad  tenants.yaml: tenants[2]: port 0 is not a port');

    const moved: Deployment = { ...DEPLOYMENT, listeners: [{ address: '127.0.0.1', port: 6543 }] };
    const r = previewChange({ applied: fromFiles(a), desired: { deployment: moved, snapshot: snapshot([one]) }, ctx: CTX });
    expect(r).toMatchObject({ kind: 'reload', changes: [], reloadReasons: ['listeners changed'] });
    expect(previewText(r)).toContain('Applied by a graceful reload of HAProxy, because:\n  - listeners changed');
  });

  it('nothing applied: an initial generation, every tenant added', () => {
    const one: Tenant = { id: 'acme', enabled: false, targets: { primary: { host: '10.0.0.1', port: 5432 } } };
    const p = previewChange({ desired: { deployment: DEPLOYMENT, snapshot: snapshot([one]) }, ctx: CTX });
    expect(p).toMatchObject({ kind: 'initial', tenants: { applied: 0, desired: 1 }, changes: [{ tenant: 'acme', action: 'add', after: 'primary 10.0.0.1:5432 (disabled)' }] });
    expect(p.appliedVersion).toBeUndefined();
  });

  it('without deployment.json the listeners of the desired state stand in, and the plan says so', () => {
    const one: Tenant = { id: 'acme', enabled: true, targets: { primary: { host: '10.0.0.1', port: 5432 } } };
    const a = applyModel(undefined, snapshot([one]));
    const files = fromFiles(a);
    const rebuilt = appliedOf({ routes: { version: a.version, policy: POLICY, tenants: [{ id: 'acme', enabled: true, backends: { primary: 'pg.acme.primary' } }] }, layout: a.applied.layout }, DEPLOYMENT);
    expect(rebuilt.listenersKnown).toBe(false);
    const p = previewChange({ applied: { ...files, state: rebuilt.applied, listenersKnown: false }, desired: { deployment: DEPLOYMENT, snapshot: snapshot([one]) }, ctx: CTX });
    expect(p.kind).toBe('unchanged');
    expect(p.notes).toEqual(['the state dir has no deployment.json (written by an older pgroute): listener changes are not shown']);
  });
});
