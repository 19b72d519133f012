// The monitoring kit (monitoring/, kubernetes/components/monitoring) against what the code exports:
// every pgroute, process and Node metric name the Grafana dashboard and the alert rules query is
// registered by the agent or the generator (HAProxy's names are checked against a real HAProxy in
// test/e2e/metrics.test.ts); the rules pass `promtool check rules`; the PrometheusRule carries the
// same groups; the Kubernetes component scrapes the port and paths the pod serves.

import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse as parseYaml, parseAllDocuments } from 'yaml';
import { loadAgentRuntime } from '../../agent/src/index.js';
import { createGeneratorMetrics } from '../src/metrics.js';
import { DASHBOARD_FILE, dashboard, metricNames, queries, RULES_FILE, ruleGroups, seriesNames } from '../../test/support/monitoring.js';

const ROOT = resolve(import.meta.dirname, '..', '..');
const { createAgentMetrics } = await loadAgentRuntime();
const COMPONENT = join(ROOT, 'kubernetes', 'components', 'monitoring');
/** Series Prometheus makes itself, not an exporter. */
const PROMETHEUS_OWN = new Set(['up']);

type Obj = Record<string, any>;

function has(cmd: string): boolean {
  return spawnSync(cmd, ['--version'], { encoding: 'utf8' }).status === 0;
}
const promtool = has('promtool');
const kubectl = spawnSync('kubectl', ['version', '--client'], { encoding: 'utf8' }).status === 0;

/** Every series name pgroute's /metrics can show: the agent's registry with the generator's on it, Node defaults included. */
async function registeredNames(): Promise<Set<string>> {
  const agent = createAgentMetrics(true);
  createGeneratorMetrics(agent.registry);
  const names = new Set<string>();
  for (const m of await agent.registry.getMetricsAsJSON()) for (const n of seriesNames(m.name, String(m.type))) names.add(n);
  return names;
}

function component(file: string): Obj[] {
  return parseAllDocuments(readFileSync(join(COMPONENT, file), 'utf8')).map((d) => d.toJS() as Obj);
}

describe('monitoring kit', () => {
  it('the name extraction reads PromQL as intended', () => {
    expect(metricNames('sum by (tenant) (label_replace(rate(haproxy_backend_sessions_total{proxy=~"pg\\\\..*"}[5m]), "backend", "$1", "proxy", "(.*)") * on(instance, backend) group_left(tenant, target) pgroute_backend_info) > 0').sort())
      .toEqual(['haproxy_backend_sessions_total', 'pgroute_backend_info']);
    expect(metricNames('histogram_quantile(0.9, sum by (le) (rate(pgroute_apply_latency_seconds_bucket[$__rate_interval])))')).toEqual(['pgroute_apply_latency_seconds_bucket']);
    expect(metricNames('up{job="pgroute"} == 0 and on(instance) x_total > bool 1')).toEqual(['up', 'x_total']);
  });

  it('every pgroute, process and Node name the dashboard and the rules query is registered by the code', async () => {
    const known = await registeredNames();
    const used = queries().flatMap(({ where, expr }) => metricNames(expr).map((name) => ({ where, name })));
    expect(used.length).toBeGreaterThan(20);
    const ours = used.filter((u) => !u.name.startsWith('haproxy_') && !PROMETHEUS_OWN.has(u.name));
    // Both kinds are used (the extraction finds them), and every one of ours exists.
    expect(ours.some((u) => u.name.startsWith('pgroute_'))).toBe(true);
    expect(ours.some((u) => u.name.startsWith('process_'))).toBe(true);
    expect(used.some((u) => u.name.startsWith('haproxy_'))).toBe(true);
    expect(ours.filter((u) => !known.has(u.name))).toEqual([]);
  });

  it('no metric of the code keeps the old pgroute_agent_ prefix on Node defaults, and none removed is still queried', async () => {
    const known = await registeredNames();
    expect([...known].filter((n) => /^pgroute_agent_(process|nodejs)_/.test(n))).toEqual([]);
    expect(known.has('process_cpu_seconds_total')).toBe(true);
    const gone = ['pgroute_reload_failures_total', 'pgroute_rollbacks_total', 'pgroute_agent_cancels_dropped_total'];
    expect(gone.filter((n) => known.has(n))).toEqual([]);
    expect(queries().filter((q) => gone.some((n) => q.expr.includes(n)))).toEqual([]);
  });

  it('promtool check rules accepts the rules file and the PrometheusRule (promtool from Debian\'s prometheus package)', () => {
    // Required, never skipped: scripts/setup.sh installs it.
    expect(promtool, 'promtool is not installed: run scripts/setup.sh (Debian package prometheus)').toBe(true);
    const dir = mkdtempSync(join(tmpdir(), 'pgroute-rules-'));
    const fromOperator = join(dir, 'operator.rules.yml');
    const rule = component('prometheusrule.yaml')[0]!;
    writeFileSync(fromOperator, JSON.stringify({ groups: rule.spec.groups }));
    for (const file of [RULES_FILE, fromOperator]) {
      const r = spawnSync('promtool', ['check', 'rules', file], { encoding: 'utf8' });
      expect(r.status, `${r.stdout}${r.stderr}`).toBe(0);
      expect(r.stdout).toMatch(/SUCCESS: 8 rules found/);
    }
  });

  it('the alerts the operators asked for are there, each with a severity and a summary', () => {
    const rules = ruleGroups().flatMap((g) => g.rules);
    expect(rules.map((r) => r.alert)).toEqual(expect.arrayContaining(['PgrouteDown', 'PgrouteReloadFailed', 'PgrouteTenantBackendDown', 'PgrouteCancelsDropped', 'PgrouteSpareSlotsExhausted']));
    for (const r of rules) {
      expect(r.labels?.severity, r.alert).toMatch(/^(critical|warning|info)$/);
      expect(r.annotations?.summary, r.alert).toBeTruthy();
    }
  });

  it('the PrometheusRule of the Kubernetes component has exactly the groups of the rules file', () => {
    const [rule] = component('prometheusrule.yaml');
    expect(rule!.kind).toBe('PrometheusRule');
    expect(rule!.spec.groups).toEqual(ruleGroups());
  });

  it('the dashboard is one Grafana JSON model: unique panel ids, every query on the datasource variable', () => {
    const d = dashboard() as unknown as Obj;
    expect(JSON.parse(readFileSync(DASHBOARD_FILE, 'utf8')).uid).toBe('pgroute');
    const ids = (d.panels as Obj[]).map((p) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
    for (const p of (d.panels as Obj[]).filter((x) => x.type !== 'row')) {
      expect(p.datasource?.uid, p.title).toBe('${datasource}');
      expect(p.targets.length, p.title).toBeGreaterThan(0);
    }
    expect(d.templating.list.map((v: Obj) => v.name)).toEqual(['datasource', 'instance']);
  });

  it('the component is a standalone kustomize Component listing every file beside it', () => {
    const k = parseYaml(readFileSync(join(COMPONENT, 'kustomization.yaml'), 'utf8')) as Obj;
    expect(k.kind).toBe('Component');
    expect(k.apiVersion).toBe('kustomize.config.k8s.io/v1alpha1');
    const beside = readdirSync(COMPONENT).filter((f) => /\.ya?ml$/.test(f) && f !== 'kustomization.yaml').sort();
    expect([...k.resources].sort()).toEqual(beside);
    // Nothing outside the component: it composes with any overlay.
    expect(k.resources.every((r: string) => !r.includes('/'))).toBe(true);
  });

  it('the ServiceMonitor scrapes the pod\'s metrics address at /metrics and /metrics/haproxy as the jobs the rules name, never through the public Service', () => {
    const base = parseAllDocuments(readFileSync(join(ROOT, 'kubernetes', 'base', 'deployment.yaml'), 'utf8'))[0]!.toJS() as Obj;
    const publicSvc = parseAllDocuments(readFileSync(join(ROOT, 'kubernetes', 'base', 'service.yaml'), 'utf8'))[0]!.toJS() as Obj;
    const pod = base.spec.template;
    const pg = (pod.spec.containers as Obj[]).find((c) => c.name === 'pgroute')!;
    const address = (pg.args as string[]).find((a) => a.startsWith('--metrics-address='))?.split('=')[1];
    expect(address).toBe('0.0.0.0:6711');
    const port = Number(address!.split(':')[1]);
    const named = (pg.ports as Obj[]).find((p) => p.name === 'metrics');
    expect(named?.containerPort).toBe(port);
    expect(pod.metadata.annotations).toMatchObject({ 'prometheus.io/scrape': 'true', 'prometheus.io/port': String(port), 'prometheus.io/path': '/metrics' });
    // The public LoadBalancer carries PostgreSQL only.
    expect((publicSvc.spec.ports as Obj[]).map((p) => p.port)).toEqual([5432]);

    const [svc] = component('service.yaml');
    expect(svc!.spec.type).toBe('ClusterIP');
    expect(Object.entries(svc!.spec.selector).every(([k, v]) => pod.metadata.labels[k] === v)).toBe(true);
    expect(svc!.spec.ports).toEqual([{ name: 'metrics', port, targetPort: 'metrics', protocol: 'TCP' }]);
    const [sm] = component('servicemonitor.yaml');
    expect(sm!.kind).toBe('ServiceMonitor');
    expect(Object.entries(sm!.spec.selector.matchLabels).every(([k, v]) => svc!.metadata.labels[k] === v)).toBe(true);
    expect(sm!.spec.namespaceSelector.matchNames).toEqual([svc!.metadata.namespace]);
    const endpoints = (sm!.spec.endpoints as Obj[]).map((e) => ({ port: e.port, path: e.path, job: e.relabelings?.find((r: Obj) => r.targetLabel === 'job')?.replacement }));
    expect(endpoints).toEqual([
      { port: 'metrics', path: '/metrics', job: 'pgroute' },
      { port: 'metrics', path: '/metrics/haproxy', job: 'pgroute-haproxy' },
    ]);
    const jobs = new Set(queries().flatMap((q) => [...q.expr.matchAll(/job="([^"]+)"/g)].map((m) => m[1])));
    expect([...jobs].sort()).toEqual(['pgroute', 'pgroute-haproxy']);
  });

  it('kubectl kustomize renders the base with the component: the Service, ServiceMonitor and PrometheusRule join it', () => {
    // Required, never skipped: kubectl (with kustomize) comes with this machine image.
    expect(kubectl, 'kubectl is not installed: it renders the manifests as an operator would').toBe(true);
    const dir = mkdtempSync(join(tmpdir(), 'pgroute-kust-'));
    // kustomize takes roots as relative paths only.
    writeFileSync(join(dir, 'kustomization.yaml'), JSON.stringify({ resources: [relative(dir, join(ROOT, 'kubernetes', 'base'))], components: [relative(dir, COMPONENT)] }));
    const r = spawnSync('kubectl', ['kustomize', dir], { encoding: 'utf8', timeout: 60_000 });
    expect(r.status, r.stderr).toBe(0);
    const kinds = parseAllDocuments(r.stdout).map((d) => d.toJS() as Obj).map((o) => `${o.kind}/${o.metadata.name}`);
    expect(kinds).toEqual(expect.arrayContaining(['Deployment/pgroute', 'Service/pgroute', 'Service/pgroute-metrics', 'ServiceMonitor/pgroute', 'PrometheusRule/pgroute']));
  });
});
