// Two sources at once: `pgroute watch --source file,kubernetes --spawn-haproxy` with a tenants file
// and the test API server (test/support/fake-kube-apiserver.ts), real HAProxy and PostgreSQL.
//
// What is shown: a tenant of each source is routed; a tenant id both define is refused in both
// (never settled by order), each refusal naming the other source, in the log and in `pgroute
// status`; `pgroute plan` with the same sources says nothing would change; once the Service drops
// the id, the file's definition is served.

import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ChangePreview } from '../../generator/src/preview/preview.js';
import type { StatusReport } from '../../generator/src/status/join.js';
import { FakeKubeApiServer } from '../support/fake-kube-apiserver.js';
import { kubeConfigFor, stopKubeWatch } from '../support/kube-config.js';
import { deploymentFlags, runCliOnce, startWatch } from '../support/pgroute.js';
import { portBlock } from '../support/ports.js';
import { startPostgresMany, type PgServer } from '../support/postgres.js';
import { type ProcessHandle } from '../support/process.js';
import { routedClients } from '../support/routed.js';

const ports = portBlock(125);
const API_PORT = ports.spare[0] as number;

let fake: FakeKubeApiServer;
let servers: PgServer[] = [];
let dir = '';
let state = '';
let tenantsFile = '';
let watch: ProcessHandle | undefined;
const timings: Record<string, number> = {};
const { outcome, reaches } = routedClients({ port: ports.haproxy, showOnTimeout: () => watch, timings });

/** The source flags `watch` runs with, and `plan` takes too. */
function sourceFlags(): string[] {
  return ['--source', 'file,kubernetes', '--tenants', tenantsFile, '--kube-address', 'cluster-ip', '--kube-allowed-ports', `${ports.pg[0]}-${ports.pg[9]}`];
}

async function statusJson(): Promise<StatusReport> {
  const r = await runCliOnce(['status', '--json', '--state-dir', state], 30_000);
  if (r.code !== 0) throw new Error(`pgroute status exited ${r.code}: ${r.stderr}`);
  return JSON.parse(r.stdout) as StatusReport;
}

beforeAll(async () => {
  servers = await startPostgresMany(['m-file', 'm-kube'].map((name, i) => ({ name, port: ports.pg[i] as number })));
  fake = new FakeKubeApiServer({ port: API_PORT, bookmarkIntervalMs: 60_000 });
  await fake.start();
  dir = mkdtempSync(join(tmpdir(), 'pgroute-multi-source-'));
  state = join(dir, 'state');
  tenantsFile = join(dir, 'tenants.yaml');
  writeFileSync(tenantsFile, JSON.stringify({ tenants: [{ id: 'alpha', host: '127.0.0.1', port: ports.pg[0] }, { id: 'shared', host: '127.0.0.1', port: ports.pg[0] }] }));
  for (const [ns, tenant] of [['team-b', 'beta'], ['team-c', 'shared']] as const) {
    fake.createService({ namespace: ns, name: `${tenant}-db`, labels: { 'pgroute.tenant': tenant }, clusterIP: '127.0.0.1', ports: [{ name: 'postgres', port: ports.pg[1] as number }], creationTimestamp: '2024-01-01T00:00:00Z' });
  }
  // `plan` (runCliOnce) inherits this process's environment: the same API server as `watch`.
  const kubeconfig = join(dir, 'kubeconfig');
  writeFileSync(kubeconfig, kubeConfigFor(fake.url).exportConfig());
  process.env.KUBECONFIG = kubeconfig;
  delete process.env.KUBERNETES_SERVICE_HOST;
  delete process.env.KUBERNETES_SERVICE_PORT;
  const t = Date.now();
  watch = await startWatch(ports, state, sourceFlags(), { name: 'pgroute-watch-multi', env: { KUBECONFIG: kubeconfig } });
  timings['pgroute watch start'] = Date.now() - t;
}, 120_000);

afterAll(() => stopKubeWatch('multi-source', { watch, fake, dir, timings }), 60_000);

describe('pgroute watch --source file,kubernetes', () => {
  it("routes each source's own tenants", async () => {
    expect(await outcome('alpha')).toBe('m-file');
    expect(await outcome('beta')).toBe('m-kube');
  });

  it('refuses a tenant id both sources define, in both, each naming the other', async () => {
    expect(await outcome('shared')).toBe('refused 3D000');
    const fromFile = await watch?.waitForOutput(/"where":"[^"]*tenants\.yaml: tenants\[1\]".*"reason":"tenant id shared is also defined by the kubernetes source/, 5_000);
    expect(fromFile).toContain('tenant definition refused');
    const report = await statusJson();
    expect(report.tenants.map((t) => t.id)).toEqual(['alpha', 'beta']);
    expect(report.refused).toEqual([
      { where: `${tenantsFile}: tenants[1]`, id: 'shared', reason: expect.stringMatching(/^tenant id shared is also defined by the kubernetes source \(kubernetes service team-c\/shared-db\)/) },
      { where: expect.stringContaining('team-c/shared-db'), id: 'shared', reason: expect.stringMatching(new RegExp(`^tenant id shared is also defined by the file source \\(${tenantsFile.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}: tenants\\[1\\]\\)`)) },
    ]);
  });

  it('pgroute plan with the same sources: nothing would change, the refusals listed', async () => {
    const r = await runCliOnce(['plan', '--json', ...sourceFlags(), ...deploymentFlags(ports, state)], 30_000);
    expect(r.code).toBe(0);
    const p = JSON.parse(r.stdout) as ChangePreview;
    expect(p.kind).toBe('unchanged');
    expect(p.refused.map((x) => x.id)).toEqual(['shared', 'shared']);
    const strict = await runCliOnce(['plan', '--strict', ...sourceFlags(), ...deploymentFlags(ports, state)], 30_000);
    expect(strict.code).toBe(3);
  });

  it("once the Service drops the id, the file's definition is served", async () => {
    const t = Date.now();
    fake.deleteService('team-c', 'shared-db');
    await reaches('contest ends: file tenant routable', 'shared', 'm-file', t, 10_000);
    expect(await outcome('beta')).toBe('m-kube');
    const report = await statusJson();
    expect(report.refused).toEqual([]);
    expect(report.tenants.map((t) => t.id)).toEqual(['alpha', 'beta', 'shared']);
  });
});
