// Two sources at once on Docker: `pgroute watch --source file,docker --spawn-haproxy` with a tenants
// file, the real dockerd and labelled PostgreSQL containers (test/support/docker-images.ts: built
// locally, no registry), a host PostgreSQL for the file's tenants, real HAProxy, and psql through it.
//
// What is shown: a tenant of each source is routed; when a container claims an id the file already
// serves, the id is refused in both sources (never settled by order), each refusal naming the other
// source, in the log and in `pgroute status`, while every other tenant stays routed (the running
// configuration is kept); `pgroute plan` with the same sources says nothing would change and that
// HAProxy accepts it; once the file drops the id, the container's definition is served.

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ChangePreview } from '../../generator/src/preview/preview.js';
import type { PlanCheck } from '../../generator/src/preview/check.js';
import type { StatusReport } from '../../generator/src/status/join.js';
import { cleanupOnExit, ensureDocker, removeContainers, runContainer, testPrefix } from '../support/docker.js';
import { ensurePostgresImage } from '../support/docker-images.js';
import { deploymentFlags, runCliOnce, startWatch } from '../support/pgroute.js';
import { portBlock } from '../support/ports.js';
import { startPostgres, type PgServer } from '../support/postgres.js';
import { type ProcessHandle } from '../support/process.js';
import { routedClients } from '../support/routed.js';

const ports = portBlock(16);
const P = testPrefix('docker-multi');
/** Tenant ids unique to this run (the engine is shared with other files' containers). */
const TAG = `${(process.pid % 1296).toString(36)}${Date.now().toString(36).slice(-4)}`;
const id = (name: string): string => `ms${TAG}-${name}`;
/** Only this run's containers may declare tenants (--docker-constraint). */
const RUN_LABEL = 'com.example.pgroute-run';

let image = '';
let host: PgServer | undefined;
let dir = '';
let state = '';
let tenantsFile = '';
let watch: ProcessHandle | undefined;
const timings: Record<string, number> = {};
// The host server and the containers both have the superuser postgres (trust).
const { outcome, reaches, psqlRouted } = routedClients({ port: ports.haproxy, user: 'postgres', showOnTimeout: () => watch, timings });

function writeTenants(ids: readonly string[]): void {
  writeFileSync(tenantsFile, JSON.stringify({ tenants: ids.map((t) => ({ id: t, host: '127.0.0.1', port: ports.pg[0] })) }));
}

/** The source flags `watch` runs with, and `plan` takes too. */
function sourceFlags(): string[] {
  return ['--source', 'file,docker', '--tenants', tenantsFile, '--docker-constraint', `label=${RUN_LABEL}=${P}`];
}

async function pgContainer(name: string, tenant: string): Promise<void> {
  await runContainer({ name: P + name, image, labels: { [RUN_LABEL]: P, 'pgroute.tenant': tenant }, env: { CLUSTER_NAME: name } });
}

async function statusJson(): Promise<StatusReport> {
  const r = await runCliOnce(['status', '--json', '--state-dir', state], 30_000);
  if (r.code !== 0) throw new Error(`pgroute status exited ${r.code}: ${r.stderr}`);
  return JSON.parse(r.stdout) as StatusReport;
}

const escape = (s: string): string => s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');

beforeAll(async () => {
  await ensureDocker();
  image = await ensurePostgresImage();
  cleanupOnExit(P);
  host = await startPostgres({ name: 'ms-file', port: ports.pg[0] });
  dir = mkdtempSync(join(tmpdir(), 'pgroute-docker-multi-'));
  state = join(dir, 'state');
  tenantsFile = join(dir, 'tenants.yaml');
  writeTenants([id('alpha'), id('shared')]);
  await pgContainer('ms-dock', id('dock'));
  const t = Date.now();
  watch = await startWatch(ports, state, sourceFlags(), { name: 'pgroute-watch-docker-multi' });
  timings['pgroute watch start'] = Date.now() - t;
}, 180_000);

afterAll(async () => {
  await watch?.stop('SIGINT', 15_000);
  await removeContainers(P).catch(() => undefined);
  await host?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
  console.log(`docker-multi-source timings (ms): ${JSON.stringify(timings)}`);
}, 60_000);

describe('pgroute watch --source file,docker (real dockerd, HAProxy spawned)', () => {
  it("routes each source's own tenants (psql through pgroute)", async () => {
    // A container answers a second or two after it starts: wait for it, not for a fixed time.
    await reaches('docker tenant routable', id('dock'), 'ms-dock', Date.now(), 30_000);
    expect(await psqlRouted(id('dock'))).toEqual({ ok: true, text: 'ms-dock' });
    expect(await psqlRouted(id('alpha'))).toEqual({ ok: true, text: 'ms-file' });
    expect(await psqlRouted(id('shared'))).toEqual({ ok: true, text: 'ms-file' });
  });

  it('a container claiming an id the file serves: refused in both, each naming the other; the other tenants stay routed', async () => {
    const shared = id('shared');
    const t = Date.now();
    await pgContainer('ms-shared', shared);
    await reaches('contest begins: refused', shared, 'refused 3D000', t, 15_000);
    const p = await psqlRouted(shared);
    expect(p.ok).toBe(false);
    expect(p.text).toContain(`no tenant "${shared}" is served here`);
    // The running configuration is kept: what is not contested is served as before.
    expect(await outcome(id('alpha'))).toBe('ms-file');
    expect(await outcome(id('dock'))).toBe('ms-dock');

    const container = `docker container ${P}ms-shared \\(`;
    await watch?.waitForOutput(new RegExp(`"where":"${escape(tenantsFile)}: tenants\\[1\\]".*"reason":"tenant id ${shared} is also defined by the docker source \\(${container}`), 5_000);
    await watch?.waitForOutput(new RegExp(`"where":"${container}[0-9a-f]+\\)".*"reason":"tenant id ${shared} is also defined by the file source \\(${escape(tenantsFile)}: tenants\\[1\\]\\)`), 5_000);
    const report = await statusJson();
    expect(report.tenants.map((x) => x.id).sort()).toEqual([id('alpha'), id('dock')]);
    expect(report.refused).toEqual([
      { where: `${tenantsFile}: tenants[1]`, id: shared, reason: expect.stringMatching(new RegExp(`^tenant id ${shared} is also defined by the docker source \\(${container}`)) },
      { where: expect.stringMatching(new RegExp(`^${container}`)), id: shared, reason: expect.stringMatching(new RegExp(`^tenant id ${shared} is also defined by the file source \\(${escape(tenantsFile)}: tenants\\[1\\]\\)`)) },
    ]);
  });

  it('pgroute plan with the same sources: nothing would change, HAProxy accepts it, the refusals listed (--strict: exit 3)', async () => {
    const r = await runCliOnce(['plan', '--json', ...sourceFlags(), ...deploymentFlags(ports, state)], 30_000);
    expect(r.code).toBe(0);
    const plan = JSON.parse(r.stdout) as ChangePreview & { check: PlanCheck };
    expect(plan.kind).toBe('unchanged');
    expect(plan.check).toEqual({ result: 'passed', warnings: [] });
    expect(plan.refused.map((x) => x.id)).toEqual([id('shared'), id('shared')]);
    const strict = await runCliOnce(['plan', '--strict', ...sourceFlags(), ...deploymentFlags(ports, state)], 30_000);
    expect(strict.code).toBe(3);
  });

  it("once the file drops the id, the container's definition is served", async () => {
    const t = Date.now();
    writeTenants([id('alpha')]);
    await reaches('contest ends: docker tenant routable', id('shared'), 'ms-shared', t, 15_000);
    expect(await psqlRouted(id('shared'))).toEqual({ ok: true, text: 'ms-shared' });
    expect(await outcome(id('alpha'))).toBe('ms-file');
    const report = await statusJson();
    expect(report.refused).toEqual([]);
    expect(report.tenants.map((x) => x.id).sort()).toEqual([id('alpha'), id('dock'), id('shared')]);
  });
});
