// Renders a status report as a readable table. Pure.

import type { StatusReport } from './join.js';

export function renderTable(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]): string =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  return [line(header), ...rows.map(line)].join('\n') + '\n';
}

const limit = (n: number | undefined, unit = ''): string => (n === undefined || n === 0 ? 'none' : `${n}${unit}`);

/**
 * Each tenant's policy at the door: allowed networks, the limits (CAP at once; RATE and PER-ADDRESS
 * new connections a second), what HAProxy counts now (OPEN, ADMITTED/S) and what it refused over
 * each limit since the tenant's counters were created (cap/rate/address).
 */
function policyTable(tenants: StatusReport['tenants']): string {
  const rows = tenants.map((t) => {
    const p = t.policy!;
    const c = p.counters;
    return [
      t.id,
      p.allow === undefined ? 'any' : p.allow.join(','),
      limit(p.limits.maxClientConnections),
      limit(p.limits.maxConnectionRate, '/s'),
      limit(p.limits.maxClientConnectionRate, '/s'),
      c === undefined ? '-' : String(c.open),
      c === undefined ? '-' : String(c.admittedPerSecond),
      c === undefined ? '-' : `${c.refusedCap}/${c.refusedRate}/${c.refusedClientRate}`,
    ];
  });
  return renderTable(['TENANT', 'ALLOW', 'CAP', 'RATE', 'PER-ADDRESS', 'OPEN', 'ADMITTED/S', 'REFUSED cap/rate/address'], rows);
}

/** TENANT STATE TARGET BACKEND ADDRESS HEALTH SESSIONS RATE TOTAL, one line per target. */
export function statusTable(report: StatusReport): string {
  const rows: string[][] = [];
  for (const t of report.tenants) {
    const state = t.state === 'enabled' ? 'enabled' : `disabled (${t.disabledBy ?? 'source'}${t.pending === true ? ', pending' : ''})`;
    if (t.targets.length === 0) rows.push([t.id, state, '-', '-', '-', '-', '0', '0', '0']);
    for (const x of t.targets) {
      const servers = x.servers.length > 1 ? ` (${x.servers.map((s) => `${s.name} ${s.status}`).join(', ')})` : '';
      rows.push([t.id, state, x.target, x.backend, x.address, x.health + servers, String(x.scur), String(x.rate), String(x.stot)]);
    }
  }
  let out = renderTable(['TENANT', 'STATE', 'TARGET', 'BACKEND', 'ADDRESS', 'HEALTH', 'SESSIONS', 'RATE', 'TOTAL'], rows);
  const policies = report.tenants.filter((t) => t.policy !== undefined);
  if (policies.length > 0) out += `\n${policyTable(policies)}`;
  if (!report.haproxy.reachable) out += `\nHAProxy's admin socket did not answer${report.haproxy.error ? ` (${report.haproxy.error})` : ''}: health and sessions are unknown.\n`;
  if (report.tenants.length === 0) out += '\nno tenants in routes.json or layout.json\n';
  return out;
}
