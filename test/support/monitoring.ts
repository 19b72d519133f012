// The dashboard and alert rules in monitoring/, and the metric names their queries use, for the
// tests that check those names against what pgroute and HAProxy export (unit: the registries;
// e2e: a real scrape of the metrics address).

import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';

export const MONITORING = resolve(import.meta.dirname, '..', '..', 'monitoring');
export const RULES_FILE = join(MONITORING, 'prometheus', 'pgroute.rules.yml');
export const DASHBOARD_FILE = join(MONITORING, 'grafana', 'pgroute.json');

export interface RuleGroup {
  readonly name: string;
  readonly rules: readonly { alert?: string; record?: string; expr: string; for?: string; labels?: Record<string, string>; annotations?: Record<string, string> }[];
}

export function ruleGroups(text = readFileSync(RULES_FILE, 'utf8')): RuleGroup[] {
  return (parseYaml(text) as { groups: RuleGroup[] }).groups;
}

interface Panel {
  readonly title: string;
  readonly targets?: readonly { expr: string }[];
  readonly panels?: readonly Panel[];
}

export function dashboard(): { panels: Panel[]; templating: { list: { query?: unknown; definition?: string }[] } } {
  return JSON.parse(readFileSync(DASHBOARD_FILE, 'utf8')) as ReturnType<typeof dashboard>;
}

/** Every PromQL expression of the dashboard (panels, rows' panels, template queries) and the rules, with where it is. */
export function queries(): { where: string; expr: string }[] {
  const out: { where: string; expr: string }[] = [];
  const d = dashboard();
  const walk = (panels: readonly Panel[]): void => {
    for (const p of panels) {
      for (const t of p.targets ?? []) out.push({ where: `dashboard panel "${p.title}"`, expr: t.expr });
      walk(p.panels ?? []);
    }
  };
  walk(d.panels);
  // Grafana's label_values(<selector>, <label>): the selector is the query.
  for (const v of d.templating.list) {
    const m = /^label_values\((.+),\s*\w+\)$/.exec(v.definition ?? '');
    if (m) out.push({ where: 'dashboard variable', expr: m[1] as string });
  }
  for (const g of ruleGroups()) for (const r of g.rules) out.push({ where: `rule ${r.alert ?? r.record}`, expr: r.expr });
  return out;
}

/** PromQL words that are not metric names. */
const KEYWORDS = new Set(['and', 'or', 'unless', 'bool', 'offset', 'by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'inf', 'nan']);

/**
 * The metric names one PromQL expression reads: identifiers that are neither functions (followed by
 * `(`), keywords, label names (inside `{}` or the lists after by/on/...), nor inside strings.
 */
export function metricNames(expr: string): string[] {
  const stripped = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, '""')
    .replace(/\{[^}]*\}/g, '')
    .replace(/\[[^\]]*\]/g, '')
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, '');
  const names = new Set<string>();
  for (const m of stripped.matchAll(/[A-Za-z_:][A-Za-z0-9_:]*/g)) {
    const word = m[0];
    const after = stripped.slice((m.index ?? 0) + word.length).trimStart();
    if (after.startsWith('(') || KEYWORDS.has(word.toLowerCase())) continue;
    names.add(word);
  }
  return [...names];
}

/** The series names a metric family is read by: a histogram's _bucket, _sum and _count. */
export function seriesNames(name: string, type: string): string[] {
  return type === 'histogram' ? [`${name}_bucket`, `${name}_sum`, `${name}_count`] : type === 'summary' ? [name, `${name}_sum`, `${name}_count`] : [name];
}

/** Metric names in a Prometheus text exposition. */
export function exposedNames(text: string): Set<string> {
  const names = new Set<string>();
  for (const line of text.split('\n')) {
    const m = /^([A-Za-z_:][A-Za-z0-9_:]*)[{ ]/.exec(line);
    if (m) names.add(m[1] as string);
  }
  return names;
}
