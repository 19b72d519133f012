// No TCP relay through a Kubernetes Service: `pgroute watch --source kubernetes --kube-address
// cluster-ip --spawn-haproxy` against the fake API server (test/support/fake-kube-apiserver.ts,
// with the real @kubernetes/client-node), real HAProxy and real PostgreSQL.
//
// pgroute runs with --kube-allowed-ports given twice (the test servers' own ports, a list) and
// PGROUTE_KUBE_ALLOW_EXTERNAL_NAMES="127.0.0.1, *.db.example.com". Services then try to turn the
// public port into a relay: ExternalName Services to names and addresses nobody allowed (one of
// them reaching a real PostgreSQL server, as a relay would), to 169.254.169.254, and Services or
// port labels targeting 10250 (kubelet), 6443 (API server) and a real server on a port outside the
// list. Each is refused (log line with the Service, the reason and the flag; the refused-tenants
// gauge), clients naming it get the unknown-tenant answer, nothing of it reaches haproxy.cfg or
// routes.json, and the good tenants (a ClusterIP one and an allowed ExternalName one) keep routing.

import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FakeKubeApiServer } from '../support/fake-kube-apiserver.js';
import { startKubeWatch, stopKubeWatch } from '../support/kube-config.js';
import { runCliOnce } from '../support/pgroute.js';
import { portBlock } from '../support/ports.js';
import { startPostgresMany, type PgServer } from '../support/postgres.js';
import { waitFor, type ProcessHandle } from '../support/process.js';
import { routedClients } from '../support/routed.js';

const ports = portBlock(60);
const API_PORT = ports.spare[0] as number;
const T0 = '2024-01-01T00:00:00Z';

let fake: FakeKubeApiServer;
let servers: PgServer[] = [];
let dir = '';
let watch: ProcessHandle | undefined;
const timings: Record<string, number> = {};
const { outcome, reaches, psqlRouted } = routedClients({ port: ports.haproxy, showOnTimeout: () => watch, timings });

function server(i: number): PgServer {
  const s = servers[i];
  if (!s) throw new Error(`no server ${i}`);
  return s;
}

/** pgroute_tenants{state="..."} from the agent's /metrics. */
async function tenantsGauge(state: 'refused' | 'enabled'): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${ports.agentHealth}/metrics`, { signal: AbortSignal.timeout(5_000) })).text();
  const m = new RegExp(`^pgroute_tenants\\{state="${state}"\\} (\\d+)$`, 'm').exec(text);
  if (!m) throw new Error(`no pgroute_tenants{state="${state}"} in /metrics:\n${text.slice(0, 2000)}`);
  return Number(m[1]);
}

/** The log line (JSON; "where" comes before "msg") of a refused Service claim. */
function refusalOf(service: string): RegExp {
  return new RegExp(`"where":"kubernetes service ${service}".*"msg":"tenant definition refused"`);
}

/** The reason of a log line (the process support prefixes each line with its stream). */
function reasonIn(line: string): string {
  return (JSON.parse(line.slice(line.indexOf('{'))) as { reason: string }).reason;
}

function clusterIpService(name: string, tenant: string, port: number, labels: Record<string, string> = {}): void {
  fake.createService({ namespace: 'tenants', name, labels: { 'pgroute.tenant': tenant, ...labels }, clusterIP: '127.0.0.1', ports: [{ name: 'postgres', port }], creationTimestamp: T0 });
}

function externalNameService(name: string, tenant: string, externalName: string, port: number): void {
  fake.createService({ namespace: 'tenants', name, labels: { 'pgroute.tenant': tenant, 'pgroute.port': String(port) }, type: 'ExternalName', externalName, creationTimestamp: T0 });
}

beforeAll(async () => {
  servers = await startPostgresMany(['kt-good', 'kt-ext', 'kt-off-list'].map((name, i) => ({ name, port: ports.pg[i] as number })));
  fake = new FakeKubeApiServer({ port: API_PORT, bookmarkIntervalMs: 60_000 });
  await fake.start();
  dir = mkdtempSync(join(tmpdir(), 'pgroute-kubernetes-targets-'));
  const t = Date.now();
  // kt-off-list's port (pg[2]) is left out on purpose: a Service targeting it must not be routed.
  watch = await startKubeWatch(ports, dir, fake.url, {
    name: 'pgroute-watch-k8s-targets',
    args: ['--kube-allowed-ports', String(server(0).port), '--kube-allowed-ports', `${server(1).port},6432`],
    env: { PGROUTE_KUBE_ALLOW_EXTERNAL_NAMES: '127.0.0.1, *.db.example.com' },
  });
  timings['pgroute watch start'] = Date.now() - t;
}, 120_000);

afterAll(() => stopKubeWatch('kubernetes-targets', { watch, fake, dir, timings }), 60_000);

describe('pgroute watch --source kubernetes: ExternalName and port limits (fake API server, real HAProxy and PostgreSQL)', () => {
  /** Each refused Service: its tenant, and what its reason must say. */
  const refused: Record<string, { tenant: string; reason: string }> = {
    'tenants/metadata': { tenant: 'metadata', reason: 'the ExternalName Service tenants/metadata points at "169.254.169.254", a link-local or cloud metadata address, which pgroute never relays to' },
    'tenants/relay': {
      tenant: 'relay',
      reason:
        'the ExternalName Service tenants/relay points at "localhost", which --kube-allow-external-names does not allow (allowed: "127.0.0.1,*.db.example.com"); add it (or a pattern such as *.db.example.com) to --kube-allow-external-names (PGROUTE_KUBE_ALLOW_EXTERNAL_NAMES), or serve the tenant from a Service with a cluster IP',
    },
    'tenants/kubelet': { tenant: 'kubelet', reason: 'the Service tenants/kubelet targets port 10250 (from its port label), which --kube-allowed-ports does not allow' },
    'tenants/apiserver': { tenant: 'apiserver', reason: 'the Service tenants/apiserver targets port 6443 (its port), which --kube-allowed-ports does not allow' },
    'tenants/ext-apiserver': { tenant: 'ext-apiserver', reason: 'the Service tenants/ext-apiserver targets port 6443 (from its port label), which --kube-allowed-ports does not allow' },
    'tenants/off-list': { tenant: 'off-list', reason: 'the Service tenants/off-list targets port' },
  };

  it('a ClusterIP tenant on an allowed port and an allow-listed ExternalName tenant are routed', async () => {
    const t = Date.now();
    clusterIpService('acme', 'acme', server(0).port);
    externalNameService('ext-ok', 'ext-ok', '127.0.0.1', server(1).port);
    await reaches('ClusterIP Service -> routable', 'acme', 'kt-good', t);
    await reaches('allowed ExternalName -> routable', 'ext-ok', 'kt-ext', t);
    expect(await psqlRouted('ext-ok')).toEqual({ ok: true, text: 'kt-ext' });
    expect(await tenantsGauge('refused')).toBe(0);
  });

  it('ExternalName Services nobody allowed, metadata addresses and odd ports are refused, each with the Service, the reason and the flag', async () => {
    const skip = watch?.outputLines().length ?? 0;
    externalNameService('metadata', 'metadata', '169.254.169.254', server(1).port);
    // Resolves to the test servers' address: without the allow-list this relays to kt-ext.
    externalNameService('relay', 'relay', 'localhost', server(1).port);
    clusterIpService('kubelet', 'kubelet', server(0).port, { 'pgroute.port': '10250' });
    clusterIpService('apiserver', 'apiserver', 6443);
    externalNameService('ext-apiserver', 'ext-apiserver', '127.0.0.1', 6443);
    // A real PostgreSQL server, on a port outside --kube-allowed-ports.
    clusterIpService('off-list', 'off-list', server(2).port);
    for (const [svc, want] of Object.entries(refused)) {
      const line = await waitFor(() => (watch?.outputLines() ?? []).slice(skip).find((l) => refusalOf(svc).test(l)), { timeoutMs: 10_000, what: `${svc} refused in the log`, process: watch });
      expect(reasonIn(line), svc).toContain(want.reason);
      expect(line).toContain(`"tenant":"${want.tenant}"`);
    }
    expect(reasonIn((watch?.outputLines() ?? []).slice(skip).find((l) => refusalOf('tenants/off-list').test(l))!)).toBe(
      `the Service tenants/off-list targets port ${server(2).port} (its port), which --kube-allowed-ports does not allow (allowed: 6432,${server(0).port}-${server(1).port}); if it really serves PostgreSQL, add it to --kube-allowed-ports (PGROUTE_KUBE_ALLOWED_PORTS)`,
    );
    await waitFor(async () => (await tenantsGauge('refused')) === Object.keys(refused).length, { timeoutMs: 5_000, what: `pgroute_tenants{state="refused"} ${Object.keys(refused).length}`, process: watch });
  });

  it('clients naming a refused tenant get the unknown-tenant answer; the good tenants keep routing', async () => {
    for (const { tenant } of Object.values(refused)) {
      expect(await outcome(tenant), tenant).toBe('refused 3D000');
      const p = await psqlRouted(tenant);
      expect(p.ok, tenant).toBe(false);
      expect(p.text).toMatch(new RegExp(`no tenant "${tenant}" is served here`));
    }
    for (let i = 0; i < 5; i++) {
      expect(await outcome('acme')).toBe('kt-good');
      expect(await outcome('ext-ok')).toBe('kt-ext');
    }
    expect(await psqlRouted('acme')).toEqual({ ok: true, text: 'kt-good' });
    expect(await tenantsGauge('enabled')).toBe(2);
  });

  it('nothing of a refused Service reaches haproxy.cfg or routes.json', () => {
    const state = join(dir, 'state');
    const routes = readFileSync(join(state, 'routes.json'), 'utf8');
    const config = readFileSync(join(state, 'haproxy.cfg'), 'utf8');
    const ids = (JSON.parse(routes) as { tenants: { id: string }[] }).tenants.map((t) => t.id).sort();
    expect(ids).toEqual(['acme', 'ext-ok']);
    for (const text of [routes, config]) {
      for (const needle of ['169.254.169.254', 'localhost', ':10250', ':6443', `:${server(2).port}`, 'kubelet', 'apiserver', 'off-list', 'metadata', 'relay']) expect(text, needle).not.toContain(needle);
    }
  });

  it('a refused Service fixed to an allowed port is routed, without a restart', async () => {
    const t = Date.now();
    fake.setLabels('tenants', 'kubelet', { 'pgroute.tenant': 'kubelet' });
    await reaches('port fixed -> routable', 'kubelet', 'kt-good', t);
    await waitFor(async () => (await tenantsGauge('refused')) === Object.keys(refused).length - 1, { timeoutMs: 5_000, what: 'one refusal fewer', process: watch });
    expect(await outcome('acme')).toBe('kt-good');
  });

  it('a bad flag value stops pgroute before it starts, with one line naming the flag and the value', async () => {
    const base = ['watch', '--source', 'kubernetes', '--state-dir', join(dir, 'bad-state'), '--port', String(ports.haproxyAlt)];
    const badPorts = await runCliOnce([...base, '--kube-allowed-ports', '5432,10250-'], 30_000);
    expect(badPorts.code).toBe(2);
    expect(badPorts.stderr).toContain('pgroute: --kube-allowed-ports (PGROUTE_KUBE_ALLOWED_PORTS): "10250-" is not a port (1 to 65535) or a range of ports (low-high, such as 5432-5439)\n');
    const badNames = await runCliOnce([...base, '--kube-allow-external-names', '*.com'], 30_000);
    expect(badNames.code).toBe(2);
    expect(badNames.stderr).toContain('pgroute: --kube-allow-external-names (PGROUTE_KUBE_ALLOW_EXTERNAL_NAMES): "*.com" would allow a whole top-level domain; give at least two labels after *. (such as *.db.example.com)\n');
  });
});
