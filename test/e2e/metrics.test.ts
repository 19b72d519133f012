// The metrics address seen from another host: a network namespace joined to this one by a veth
// pair stands for Prometheus' pod. `pgroute up` (agent on TCP, as in the Kubernetes pod) with
// --metrics-address 0.0.0.0:<port> is scraped from there: /metrics (agent and generator) and
// /metrics/haproxy (HAProxy's exporter, relayed), while HAProxy's stats port and a metrics address
// left at its loopback default stay out of reach. A real Prometheus (Debian's package) runs in the
// namespace with the alert rules of monitoring/: both jobs up, HAProxy's series joined to tenants,
// the tenant-backend-down alert raised when the tenant's server stops. Every metric name the
// dashboard and the rules use is in what the real programs export.

import { execFile, execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exposedNames, metricNames, queries, RULES_FILE } from '../support/monitoring.js';
import { runCli, writeTenantsFile } from '../support/pgroute.js';
import { portBlock } from '../support/ports.js';
import { startPostgres, type PgServer } from '../support/postgres.js';
import { spawnLogged, stopAll, waitFor, waitForPort, type ProcessHandle } from '../support/process.js';
import { psql } from '../support/psql.js';

const run = promisify(execFile);
const ports = portBlock(120);
const NS = 'pgr-metrics-120';
const VETH_HOST = 'pgrm120h';
const VETH_NS = 'pgrm120n';
const HOST_IP = '10.231.120.1';
const NS_IP = '10.231.120.2';
const PROMETHEUS = '/usr/bin/prometheus';

const dirs: string[] = [];
let pg: PgServer | undefined;
let up: ProcessHandle | undefined;

function ip(...args: string[]): void {
  execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

function removeNetwork(): void {
  spawnSync('ip', ['link', 'del', VETH_HOST]);
  spawnSync('ip', ['netns', 'del', NS]);
}

/** An HTTP GET made from inside the namespace (another host, as far as the kernel is concerned). */
async function getFromNamespace(url: string): Promise<{ status: number; body: string } | { error: string }> {
  const script = `fetch(${JSON.stringify(url)}, { signal: AbortSignal.timeout(5000) }).then(async (r) => process.stdout.write(JSON.stringify({ status: r.status, body: await r.text() })), (e) => process.stdout.write(JSON.stringify({ error: String(e.cause?.code ?? e.message) })))`;
  const { stdout } = await run('ip', ['netns', 'exec', NS, process.execPath, '-e', script], { maxBuffer: 32 * 1024 * 1024 });
  return JSON.parse(stdout) as { status: number; body: string } | { error: string };
}

async function scrape(path: string): Promise<string> {
  const r = await getFromNamespace(`http://${HOST_IP}:${ports.agentHealth}${path}`);
  if ('error' in r) throw new Error(`GET ${path} from ${NS} failed: ${r.error}`);
  expect(r.status, r.body.slice(0, 500)).toBe(200);
  return r.body;
}

function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

async function promQuery(expr: string): Promise<{ metric: Record<string, string>; value: [number, string] }[]> {
  const res = await fetch(`http://${NS_IP}:${ports.spare[0]}/api/v1/query?query=${encodeURIComponent(expr)}`, { signal: AbortSignal.timeout(5_000) });
  const body = (await res.json()) as { status: string; data: { result: { metric: Record<string, string>; value: [number, string] }[] } };
  expect(body.status).toBe('success');
  return body.data.result;
}

beforeAll(async () => {
  removeNetwork();
  ip('netns', 'add', NS);
  ip('link', 'add', VETH_HOST, 'type', 'veth', 'peer', 'name', VETH_NS);
  ip('link', 'set', VETH_NS, 'netns', NS);
  ip('addr', 'add', `${HOST_IP}/24`, 'dev', VETH_HOST);
  ip('link', 'set', VETH_HOST, 'up');
  ip('netns', 'exec', NS, 'ip', 'addr', 'add', `${NS_IP}/24`, 'dev', VETH_NS);
  ip('netns', 'exec', NS, 'ip', 'link', 'set', VETH_NS, 'up');
  ip('netns', 'exec', NS, 'ip', 'link', 'set', 'lo', 'up');

  pg = await startPostgres({ name: 'acme', port: ports.pg[0] as number });
  const { dir, file } = writeTenantsFile([{ id: 'acme', port: pg.port }]);
  dirs.push(dir);
  up = runCli('pgroute-up-metrics', [
    'up', '--tenants', file, '--state-dir', join(dir, 'state'),
    '--bind', '127.0.0.1', '--port', String(ports.haproxy),
    // As in the Kubernetes pod: HAProxy asks the agent over TCP, and its SPOP health checks with it.
    '--agent-transport', 'tcp', '--agent-port', String(ports.agent),
    '--stats-port', String(ports.stats),
    '--metrics-address', `0.0.0.0:${ports.agentHealth}`,
  ]);
  await waitForPort(ports.haproxy, '127.0.0.1', 20_000, { process: up, what: 'pgroute up listening' });
  await up.waitForOutput(/pgroute is running/, 20_000);
});

afterAll(async () => {
  await stopAll();
  await pg?.stop();
  removeNetwork();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe('the metrics address, scraped from another network namespace', () => {
  it('/metrics: build info, Node defaults under their standard names, every gauge from the start, the first apply, the backend-to-tenant join', async () => {
    const text = await scrape('/metrics');
    expect(text).toMatch(/^pgroute_build_info\{version="[^"]+",haproxy_version="[^"]+",node_version="v\d+[^"]*"\} 1$/m);
    expect(text).toMatch(/^process_cpu_seconds_total \d/m);
    expect(text).toMatch(/^nodejs_eventloop_lag_p99_seconds \d/m);
    expect(text).not.toMatch(/^pgroute_agent_(process|nodejs)_/m);
    expect(sample(text, 'pgroute_spare_backends{state="free"}')).toBe(16);
    expect(sample(text, 'pgroute_spare_backends{state="occupied"}')).toBe(0);
    expect(sample(text, 'pgroute_tenants{state="enabled"}')).toBe(1);
    expect(sample(text, 'pgroute_tenants{state="refused"}')).toBe(0);
    expect(sample(text, 'pgroute_applies_total{kind="initial",result="ok"}')).toBe(1);
    expect(sample(text, 'pgroute_applies_total{kind="reload",result="failed"}')).toBe(0);
    expect(sample(text, 'pgroute_haproxy_old_workers')).toBe(0);
    expect(sample(text, 'pgroute_agent_route_table_tenants')).toBe(1);
    expect(sample(text, 'pgroute_backend_info{backend="pg.acme.primary",tenant="acme",target="primary"}')).toBe(1);
  });

  it('a routed connection is counted by kind of packet, never by tenant or target name', async () => {
    const r = await psql({ host: '127.0.0.1', port: ports.haproxy, user: 'app', db: 'acme', command: 'SHOW cluster_name' });
    expect(r.stdout.trim()).toBe('acme');
    const text = await scrape('/metrics');
    expect(sample(text, 'pgroute_agent_decisions_total{outcome="route",reason="startup"}')).toBeGreaterThanOrEqual(1);
    expect(text.split('\n').filter((l) => l.startsWith('pgroute_agent_decisions_total{') && /acme|primary/.test(l))).toEqual([]);
  });

  it("idle and healthy: HAProxy's SPOP health checks come and go without a socket error", async () => {
    const hellos = async (): Promise<number> => sample(await scrape('/metrics'), 'pgroute_agent_frames_total{direction="in",type="haproxy-hello"}') ?? 0;
    const before = await hellos();
    // Each check is a HELLO on a new connection, ended by HAProxy with a reset.
    await waitFor(async () => (await hellos()) >= before + 3, { timeoutMs: 15_000, what: 'three more SPOP health checks', process: up });
    const text = await scrape('/metrics');
    expect(sample(text, 'pgroute_agent_errors_total{kind="socket"}')).toBe(0);
    expect(sample(text, 'pgroute_agent_errors_total{kind="protocol"}')).toBe(0);
  });

  it("/metrics/haproxy: HAProxy's exporter, relayed; its stats port itself stays unreachable", async () => {
    const text = await waitFor(async () => {
      const t = await scrape('/metrics/haproxy');
      return sample(t, 'haproxy_backend_status{proxy="pg.acme.primary",state="UP"}') === 1 ? t : undefined;
    }, { timeoutMs: 15_000, what: 'pg.acme.primary UP in /metrics/haproxy', process: up });
    expect(text).toMatch(/^haproxy_process_uptime_seconds \d/m);
    const stats = await getFromNamespace(`http://${HOST_IP}:${ports.stats}/stats`);
    expect(stats).toEqual({ error: 'ECONNREFUSED' });
  });

  it('every metric name the dashboard and the alert rules use is in what the real agent, generator and HAProxy export', async () => {
    const exported = new Set([...exposedNames(await scrape('/metrics')), ...exposedNames(await scrape('/metrics/haproxy')), 'up']);
    const missing = queries().flatMap(({ where, expr }) => metricNames(expr).filter((n) => !exported.has(n)).map((n) => `${where}: ${n}`));
    expect(missing).toEqual([]);
  });

  it('left at its default, the metrics address is loopback only: another host cannot reach it', async () => {
    const solo = runCli('pgroute-agent-default', ['agent', '--routes', join(dirs[0] as string, 'state', 'routes.json'), '--port', String(ports.agentAlt), '--http-port', String(ports.agentAltHealth)]);
    await waitForPort(ports.agentAltHealth, '127.0.0.1', 15_000, { process: solo, what: 'pgroute agent metrics address' });
    expect((await fetch(`http://127.0.0.1:${ports.agentAltHealth}/healthz`)).status).toBe(200);
    expect(await getFromNamespace(`http://${HOST_IP}:${ports.agentAltHealth}/metrics`)).toEqual({ error: 'ECONNREFUSED' });
    const routeLoads = await (await fetch(`http://127.0.0.1:${ports.agentAltHealth}/metrics`)).text();
    expect(sample(routeLoads, 'pgroute_agent_route_table_loads_total{result="ok"}')).toBe(1);
    expect((await fetch(`http://127.0.0.1:${ports.agentAltHealth}/metrics/haproxy`)).status).toBe(404);
    await solo.stop('SIGTERM', 10_000);
  });

  it('a real Prometheus in the other namespace scrapes both jobs, joins HAProxy\'s backends to tenants, and raises PgrouteTenantBackendDown when the tenant\'s server stops', async () => {
    expect(existsSync(PROMETHEUS), `${PROMETHEUS} is missing: install Debian's prometheus package (scripts/setup.sh does with SETUP_DOCKER=1)`).toBe(true);
    const dir = mkdtempSync(join(tmpdir(), 'pgroute-prom-'));
    dirs.push(dir);
    const target = `${HOST_IP}:${ports.agentHealth}`;
    // The two jobs the rules and the ServiceMonitor name, on one address (so `instance` matches).
    writeFileSync(join(dir, 'prometheus.yml'), JSON.stringify({
      global: { scrape_interval: '1s', evaluation_interval: '1s' },
      rule_files: [RULES_FILE],
      scrape_configs: [
        { job_name: 'pgroute', metrics_path: '/metrics', static_configs: [{ targets: [target] }] },
        { job_name: 'pgroute-haproxy', metrics_path: '/metrics/haproxy', static_configs: [{ targets: [target] }] },
      ],
    }));
    const prometheus = spawnLogged('ip', ['netns', 'exec', NS, PROMETHEUS, `--config.file=${join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${join(dir, 'data')}`, `--web.listen-address=${NS_IP}:${ports.spare[0]}`], { name: 'prometheus' });
    await waitForPort(ports.spare[0] as number, NS_IP, 30_000, { process: prometheus, what: 'Prometheus listening' });

    const targets = await waitFor(async () => {
      const r = await promQuery('up').catch(() => []);
      return r.length === 2 && r.every((s) => s.value[1] === '1') ? r : undefined;
    }, { timeoutMs: 30_000, what: 'both scrape jobs up in Prometheus', process: prometheus });
    expect(targets.map((s) => s.metric.job).sort()).toEqual(['pgroute', 'pgroute-haproxy']);

    const joined = await waitFor(async () => {
      const r = await promQuery('label_replace(haproxy_backend_active_servers, "backend", "$1", "proxy", "(.*)") * on(instance, backend) group_left(tenant, target) pgroute_backend_info');
      return r.length > 0 ? r : undefined;
    }, { timeoutMs: 15_000, what: 'the join of HAProxy backends to tenants', process: prometheus });
    expect(joined.map((s) => [s.metric.backend, s.metric.tenant, s.metric.target, s.value[1]])).toEqual([['pg.acme.primary', 'acme', 'primary', '1']]);

    // Every rule evaluates without error against real series.
    type Rules = { data: { groups: { rules: { name: string; health: string; lastError?: string }[] }[] } };
    const evaluated = await waitFor(async () => {
      const r = (await (await fetch(`http://${NS_IP}:${ports.spare[0]}/api/v1/rules`)).json()) as Rules;
      const all = r.data.groups.flatMap((g) => g.rules);
      return all.length > 0 && all.every((x) => x.health !== 'unknown') ? all : undefined;
    }, { timeoutMs: 15_000, what: 'every rule evaluated once', process: prometheus });
    expect(evaluated.filter((x) => x.health !== 'ok').map((x) => `${x.name}: ${x.lastError}`)).toEqual([]);
    expect(evaluated).toHaveLength(8);
    expect(await promQuery('ALERTS')).toEqual([]);

    // The tenant's server stops: HAProxy marks its backend down, and the alert names the tenant.
    await pg?.stop();
    const alert = await waitFor(async () => {
      const r = await promQuery('ALERTS{alertname="PgrouteTenantBackendDown"}');
      return r.length > 0 ? r : undefined;
    }, { timeoutMs: 30_000, what: 'PgrouteTenantBackendDown pending', process: prometheus });
    expect(alert.map((s) => [s.metric.tenant, s.metric.target, s.metric.backend, s.metric.alertstate])).toEqual([['acme', 'primary', 'pg.acme.primary', 'pending']]);
    await prometheus.stop('SIGTERM', 15_000);
  });
});
