// Several sources at once: the merged view keeps each source's tenants, refusals and the file's
// listeners, and refuses a tenant id two sources define in both (never settled by order).

import { describe, expect, it } from 'vitest';
import type { Deployment, Tenant } from '../../src/model.js';
import { MergedSource, mergeViews } from '../../src/sources/merged.js';
import type { SourceView, TenantSource } from '../../src/sources/source.js';

const POLICY: Deployment['policy'] = { keys: ['database'], targetByPort: {}, defaultTarget: 'primary', revealDisabled: false };
const FILE_DEPLOYMENT: Deployment = { listeners: [{ address: '127.0.0.1', port: 6543 }], policy: POLICY };

function tenant(id: string, port: number): Tenant {
  return { id, enabled: true, targets: { primary: { host: '10.0.0.1', port } } };
}

function view(tenants: Tenant[], where: Record<string, string>, extra: Partial<SourceView> = {}): SourceView {
  return { snapshot: { tenants, refused: [] }, where, ...extra };
}

describe('mergeViews', () => {
  const file = view([tenant('acme', 5432), tenant('shared', 5433)], { acme: 'tenants.yaml: tenants[0]', shared: 'tenants.yaml: tenants[1]' }, { deployment: FILE_DEPLOYMENT });
  const kube = view([tenant('globex', 5434), tenant('shared', 5435)], { globex: 'kubernetes service team-b/globex-db', shared: 'kubernetes service team-c/shared-db' });

  it('keeps the tenants only one source defines, sorted, with where they come from and the file\'s listeners', () => {
    const m = mergeViews([{ source: 'file', view: file }, { source: 'kubernetes', view: kube }]);
    expect(m.snapshot.tenants.map((t) => t.id)).toEqual(['acme', 'globex']);
    expect(m.where).toEqual({ acme: 'tenants.yaml: tenants[0]', globex: 'kubernetes service team-b/globex-db' });
    expect(m.deployment).toEqual(FILE_DEPLOYMENT);
  });

  it('refuses an id two sources define in both, each naming the other, whatever their order', () => {
    const a = mergeViews([{ source: 'file', view: file }, { source: 'kubernetes', view: kube }]);
    const b = mergeViews([{ source: 'kubernetes', view: kube }, { source: 'file', view: file }]);
    expect(a.snapshot.tenants).toEqual(b.snapshot.tenants);
    expect(a.snapshot.refused).toEqual([
      { where: 'tenants.yaml: tenants[1]', id: 'shared', reason: 'tenant id shared is also defined by the kubernetes source (kubernetes service team-c/shared-db); a tenant id belongs to one source, so neither is served until all but one drop it' },
      { where: 'kubernetes service team-c/shared-db', id: 'shared', reason: 'tenant id shared is also defined by the file source (tenants.yaml: tenants[1]); a tenant id belongs to one source, so neither is served until all but one drop it' },
    ]);
    expect(new Set(b.snapshot.refused)).toEqual(new Set(a.snapshot.refused));
  });

  it("keeps each source's own refusals, and the fallback listeners when no source defines them", () => {
    const docker = { snapshot: { tenants: [], refused: [{ where: 'docker container x (1234)', id: 'x', reason: 'contested' }] }, where: {} };
    const m = mergeViews([{ source: 'docker', view: docker }, { source: 'kubernetes', view: kube }]);
    expect(m.snapshot.refused).toEqual(docker.snapshot.refused);
    expect(m.snapshot.tenants.map((t) => t.id)).toEqual(['globex', 'shared']);
    expect(m.deployment).toBeUndefined();
  });
});

/** A source whose views the test pushes. */
class Pushed implements TenantSource {
  push: (v: SourceView) => void = () => undefined;
  stopped = false;
  constructor(readonly name: string, private readonly first: SourceView, private readonly fail = false) {}
  async start(onView: (v: SourceView) => void): Promise<void> {
    if (this.fail) throw new Error(`${this.name} unreachable`);
    this.push = onView;
    onView(this.first);
  }
  async stop(): Promise<void> {
    this.stopped = true;
  }
}

describe('MergedSource', () => {
  it('delivers one first view once every source has one, then a merged view on every push', async () => {
    const f = new Pushed('file', view([tenant('acme', 5432)], { acme: 'f' }));
    const k = new Pushed('kubernetes', view([], {}));
    const m = new MergedSource([f, k]);
    expect(m.name).toBe('file+kubernetes');
    const seen: SourceView[] = [];
    await m.start((v) => seen.push(v));
    expect(seen.map((v) => v.snapshot.tenants.map((t) => t.id))).toEqual([['acme']]);
    k.push(view([tenant('acme', 5433)], { acme: 'k' }));
    expect(seen.at(-1)?.snapshot.tenants).toEqual([]);
    expect(seen.at(-1)?.snapshot.refused.map((r) => r.where)).toEqual(['f', 'k']);
    k.push(view([], {}));
    expect(seen.at(-1)?.snapshot.tenants.map((t) => t.id)).toEqual(['acme']);
    await m.stop();
    expect([f.stopped, k.stopped]).toEqual([true, true]);
  });

  it('a source that cannot start stops the ones already started and fails the start', async () => {
    const f = new Pushed('file', view([], {}));
    const d = new Pushed('docker', view([], {}), true);
    await expect(new MergedSource([f, d]).start(() => undefined)).rejects.toThrow('docker unreachable');
    expect(f.stopped).toBe(true);
  });
});
