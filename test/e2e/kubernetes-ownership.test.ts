// Declared ownership end to end: `pgroute watch --source kubernetes --kube-address cluster-ip
// --spawn-haproxy` with PGROUTE_KUBE_OWNERSHIP=declared, against the fake API server
// (test/support/fake-kube-apiserver.ts, Services and Namespaces), with real HAProxy and real
// PostgreSQL. Services get clusterIP 127.0.0.1 and the port of a local test server.
//
// What is shown, in order (each step builds on the one before):
// 1. team-a's Namespace declares acme (annotation pgroute.io/tenants) and team-a's Service serves
//    it; team-b's Service claiming acme, although older, is refused and the log says why.
// 2. team-a deletes its Service (as a redeploy does): acme is refused ("no tenant"), and no
//    connection ever reaches team-b's server (under first-claim it would: kubernetes-watch.test.ts).
// 3. team-a re-creates its Service: acme is team-a's again.
// 4. The admin moves the annotation to team-b: while both declare acme it is refused (the log names
//    both namespaces); once team-a's declaration is gone, acme is team-b's.
// 5. Namespace annotation changes are followed without a restart, also across an expired (410)
//    Namespace watch.

import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FakeKubeApiServer } from '../support/fake-kube-apiserver.js';
import { startKubeWatch, stopKubeWatch } from '../support/kube-config.js';
import { portBlock } from '../support/ports.js';
import { startPostgresMany, type PgServer } from '../support/postgres.js';
import { waitFor, type ProcessHandle } from '../support/process.js';
import { routedClients } from '../support/routed.js';

const ports = portBlock(23);
const API_PORT = ports.spare[0] as number;
const WITHIN_MS = 1_000;
const T0 = '2024-01-01T00:00:00Z';
const T1 = '2024-01-02T00:00:00Z';
const T2 = '2024-01-03T00:00:00Z';
const ANNOTATION = 'pgroute.io/tenants';

let fake: FakeKubeApiServer;
let servers: PgServer[] = [];
let dir = '';
let watch: ProcessHandle | undefined;
const timings: Record<string, number> = {};
/** Every outcome a client saw for acme, in order: team-b's server must never appear until step 4. */
const acmeOutcomes: string[] = [];
const { outcome, reaches, psqlRouted } = routedClients({
  port: ports.haproxy,
  showOnTimeout: () => watch,
  timings,
  onOutcome: (tenant, result) => {
    if (tenant === 'acme') acmeOutcomes.push(result);
  },
});

function server(i: number): PgServer {
  const s = servers[i];
  if (!s) throw new Error(`no server ${i}`);
  return s;
}

/** pgroute_tenants{state="refused"} from the agent's /metrics (the generator's gauges are there too). */
async function refusedGauge(): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${ports.agentHealth}/metrics`, { signal: AbortSignal.timeout(5_000) })).text();
  const m = /^pgroute_tenants\{state="refused"\} (\d+)$/m.exec(text);
  if (!m) throw new Error(`no pgroute_tenants{state="refused"} in /metrics:\n${text.slice(0, 2000)}`);
  return Number(m[1]);
}

/** The log line (JSON; "where" comes before "msg") of a refused Service claim. */
function refusalOf(service: string): RegExp {
  return new RegExp(`"where":"kubernetes service ${service}".*"msg":"tenant definition refused"`);
}

/** Log lines after the first `skip` ones that match `re` (pgroute logs one JSON object a line). */
function linesAfter(skip: number, re: RegExp): string[] {
  return (watch?.outputLines() ?? []).slice(skip).filter((l) => re.test(l));
}

function service(namespace: string, name: string, tenant: string, port: number, creationTimestamp: string): void {
  fake.createService({ namespace, name, labels: { 'pgroute.tenant': tenant }, clusterIP: '127.0.0.1', ports: [{ name: 'postgres', port }], creationTimestamp });
}

beforeAll(async () => {
  servers = await startPostgresMany(['own-a', 'own-b', 'own-c'].map((name, i) => ({ name, port: ports.pg[i] as number })));
  fake = new FakeKubeApiServer({ port: API_PORT, bookmarkIntervalMs: 60_000 });
  await fake.start();
  fake.createNamespace({ name: 'team-a', annotations: { [ANNOTATION]: 'acme' } });
  fake.createNamespace({ name: 'team-b' });
  fake.createNamespace({ name: 'team-c', annotations: { [ANNOTATION]: 'initech' } });
  dir = mkdtempSync(join(tmpdir(), 'pgroute-kubernetes-ownership-'));
  const t = Date.now();
  // The environment variable rather than --kube-ownership: the flag itself is checked by
  // generator/test/kubernetes-manifests.test.ts (the declared-ownership overlay's arguments).
  watch = await startKubeWatch(ports, dir, fake.url, { name: 'pgroute-watch-k8s-declared', env: { PGROUTE_KUBE_OWNERSHIP: 'declared' } });
  timings['pgroute watch start'] = Date.now() - t;
}, 120_000);

afterAll(() => stopKubeWatch('kubernetes-ownership', { watch, fake, dir, timings }), 60_000);

describe('pgroute watch --source kubernetes with declared ownership (fake API server, real HAProxy and PostgreSQL)', () => {
  it('1. the declared namespace owns the tenant; another namespace\'s older claim is refused, with the reason in the log and the metrics', async () => {
    const line = await watch?.waitForOutput(/watching kubernetes services and namespaces/, 5_000);
    expect(line).toContain('"ownership":"declared"');
    expect(fake.resourceCounters.namespaces.lists).toBe(1);
    expect(fake.resourceCounters.namespaces.watches).toBeGreaterThanOrEqual(1);

    // team-b's claim comes first and is the older one: first-claim would give it acme.
    service('team-b', 'acme-impostor', 'acme', server(1).port, T0);
    const refused = await watch?.waitForOutput(refusalOf('team-b/acme-impostor'), 5_000);
    expect(refused).toContain('tenant acme is not declared for namespace team-b (annotation pgroute.io/tenants on Namespace team-b); it is declared for namespace team-a');
    expect(await outcome('acme')).toBe('refused 3D000');
    // The gauge is set when the view is applied, just after the refusal is logged.
    await waitFor(async () => (await refusedGauge()) === 1, { timeoutMs: 5_000, what: 'pgroute_tenants{state="refused"} 1', process: watch });

    const t = Date.now();
    service('team-a', 'acme', 'acme', server(0).port, T1);
    expect(await reaches('declared owner: Service -> routable', 'acme', 'own-a', t)).toBeLessThan(WITHIN_MS);
    for (let i = 0; i < 10; i++) expect(await outcome('acme')).toBe('own-a');
    expect(await psqlRouted('acme')).toEqual({ ok: true, text: 'own-a' });
    expect(await refusedGauge()).toBe(1);
  });

  it('2. the owner deletes its Service: clients get "no tenant", never the other namespace\'s server', async () => {
    const session = new pg.Client({ host: '127.0.0.1', port: ports.haproxy, user: 'app', database: 'postgres', options: '-c pgroute.tenant=acme' });
    await session.connect();
    try {
      const t = Date.now();
      fake.deleteService('team-a', 'acme');
      expect(await reaches('owner deleted -> refused', 'acme', 'refused 3D000', t)).toBeLessThan(WITHIN_MS);
      // The open session stays where it is.
      const r = await session.query<{ cluster_name: string }>('SHOW cluster_name');
      expect(r.rows[0]?.cluster_name).toBe('own-a');
    } finally {
      await session.end().catch(() => undefined);
    }
    // A later view (team-c's unrelated change) proves pgroute has settled: still no acme.
    const skip = watch?.outputLines().length ?? 0;
    service('team-c', 'initech', 'initech', server(2).port, T0);
    await reaches('unrelated change applied', 'initech', 'own-c', Date.now());
    expect(linesAfter(skip, /tenant definition refused/)).toEqual([]);
    for (let i = 0; i < 20; i++) expect(await outcome('acme')).toBe('refused 3D000');
    const p = await psqlRouted('acme');
    expect(p.ok).toBe(false);
    expect(p.text).toMatch(/no tenant "acme" is served here/);
    expect(acmeOutcomes).not.toContain('own-b');
  });

  it('3. the owner re-creates its Service (newer than the other claim now): the tenant is the owner\'s again', async () => {
    const t = Date.now();
    service('team-a', 'acme', 'acme', server(0).port, T2);
    expect(await reaches('owner re-created -> routable again', 'acme', 'own-a', t)).toBeLessThan(WITHIN_MS);
    for (let i = 0; i < 10; i++) expect(await outcome('acme')).toBe('own-a');
    expect(await psqlRouted('acme')).toEqual({ ok: true, text: 'own-a' });
    expect(acmeOutcomes).not.toContain('own-b');
  });

  it('4. the admin moves the annotation to team-b: refused while both declare it, then team-b\'s', async () => {
    const skip = watch?.outputLines().length ?? 0;
    let t = Date.now();
    fake.setNamespaceAnnotations('team-b', { [ANNOTATION]: 'acme' });
    expect(await reaches('declared twice -> refused', 'acme', 'refused 3D000', t)).toBeLessThan(WITHIN_MS);
    await waitFor(() => linesAfter(skip, /declared for 2 namespaces.*tenant definition refused/).length >= 2, { timeoutMs: 5_000, what: 'both claims refused in the log', process: watch });
    expect(linesAfter(skip, /declared for 2 namespaces/)[0]).toContain('tenant acme is declared for 2 namespaces (team-a, team-b; annotation pgroute.io/tenants): every claim of it is refused until one Namespace alone declares it');
    expect(acmeOutcomes).not.toContain('own-b');

    const skipMoved = watch?.outputLines().length ?? 0;
    t = Date.now();
    fake.setNamespaceAnnotations('team-a', {});
    expect(await reaches('annotation moved -> new owner', 'acme', 'own-b', t)).toBeLessThan(WITHIN_MS);
    expect(await psqlRouted('acme')).toEqual({ ok: true, text: 'own-b' });
    const refused = await waitFor(() => linesAfter(skipMoved, refusalOf('team-a/acme'))[0], { timeoutMs: 5_000, what: "team-a's claim refused in the log", process: watch });
    expect(refused).toContain('tenant acme is not declared for namespace team-a (annotation pgroute.io/tenants on Namespace team-a); it is declared for namespace team-b');
  });

  it('5. Namespace annotation changes are followed without a restart, also after the Namespace watch expires (410 Gone)', async () => {
    const pid = watch?.pid;
    // team-c's Service for globex waits, refused, until the admin declares globex for team-c.
    service('team-c', 'globex', 'globex', server(2).port, T0);
    await watch?.waitForOutput(refusalOf('team-c/globex'), 5_000);
    expect(await outcome('globex')).toBe('refused 3D000');
    let t = Date.now();
    fake.setNamespaceAnnotations('team-c', { [ANNOTATION]: 'initech, glob*' });
    expect(await reaches('annotation added -> routable', 'globex', 'own-c', t)).toBeLessThan(WITHIN_MS);

    // The watches drop, the declaration is withdrawn meanwhile and the history compacted: the
    // Namespace informer's resourceVersion is too old, it lists again and sees the change.
    const lists = fake.resourceCounters.namespaces.lists;
    fake.closeAllWatches();
    fake.setNamespaceAnnotations('team-c', { [ANNOTATION]: 'initech' });
    fake.compactHistory();
    t = Date.now();
    await reaches('410 Gone -> annotation change followed', 'globex', 'refused 3D000', t, 10_000);
    expect(fake.resourceCounters.namespaces.lists).toBeGreaterThan(lists);
    await waitFor(() => fake.openWatches >= 2, { timeoutMs: 10_000, what: 'pgroute to watch Services and Namespaces again', process: watch });
    expect(await outcome('initech')).toBe('own-c');
    expect(await outcome('acme')).toBe('own-b');
    expect(watch?.running()).toBe(true);
    expect(watch?.pid).toBe(pid);
  });
});
