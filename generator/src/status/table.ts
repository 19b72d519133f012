// Renders a status report as a readable table. Pure.

import { sanitizeText } from '../../../agent/src/index.js';
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
 * each limit since the tenant's counters were created (cap/rate/address, and queue: over a target's maxqueue).
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
      c === undefined ? '-' : `${c.refusedCap}/${c.refusedRate}/${c.refusedClientRate}/${c.refusedQueue}`,
    ];
  });
  return renderTable(['TENANT', 'ALLOW', 'CAP', 'RATE', 'PER-ADDRESS', 'OPEN', 'ADMITTED/S', 'REFUSED cap/rate/address/queue'], rows);
}

/** 45s, 12m, 3h, 2d: how long ago, coarsely. */
export function ago(seconds: number | undefined): string {
  if (seconds === undefined) return '-';
  if (seconds < 120) return `${seconds}s`;
  if (seconds < 2 * 3600) return `${Math.floor(seconds / 60)}m`;
  if (seconds < 2 * 86400) return `${Math.floor(seconds / 3600)}h`;
  return `${Math.floor(seconds / 86400)}d`;
}

/** This replica's name and resync, then each peer as this replica's HAProxy sees it. */
function replicaTable(r: NonNullable<StatusReport['replica']>): string {
  let out = `Replica ${r.name}: initial resync ${r.resynced ? 'finished' : 'not finished'}; ${r.peers.length === 0 ? 'no peers' : `${r.peers.filter((p) => p.connected).length}/${r.peers.length} peers connected`}\n`;
  if (r.peers.length > 0) {
    out += renderTable(
      ['PEER', 'ADDRESS', 'CONNECTED', 'LAST-STATUS', 'LAST-HANDSHAKE'],
      r.peers.map((p) => [p.name, p.address, p.connected ? 'yes' : 'no', p.lastStatus, p.lastHandshakeSeconds === undefined ? 'never' : `${ago(p.lastHandshakeSeconds)} ago`]),
    );
  }
  return out;
}

const HEADER = ['TENANT', 'STATE', 'TARGET', 'BACKEND', 'ADDRESS', 'HEALTH', 'SESSIONS', 'QUEUED', 'MAXCONN', 'MAXQUEUE', 'REFUSED', 'RATE', 'TOTAL', 'CHANGED'];

/**
 * One line per tenant target, in the manner of PgBouncer's SHOW POOLS: health, current and queued
 * connections against their limits, connections refused, session rate and total, and how long ago
 * the health last changed. Then the refused definitions.
 */
export function statusTable(report: StatusReport): string {
  const rows: string[][] = [];
  for (const t of report.tenants) {
    const state =
      t.state === 'enabled' ? 'enabled' : t.state === 'paused' ? `paused${t.pending === true ? ' (pending)' : ''}` : `disabled (${t.disabledBy ?? 'source'}${t.pending === true ? ', pending' : ''})`;
    if (t.targets.length === 0) rows.push([t.id, state, '-', '-', '-', '-', '0', '0', '-', '-', '0', '0', '0', '-']);
    for (const x of t.targets) {
      const servers = x.servers.length > 1 ? ` (${x.servers.map((s) => `${s.name} ${s.status}`).join(', ')})` : '';
      rows.push([t.id, state, x.target, x.backend, x.address, x.health + servers, String(x.scur), String(x.queued), String(x.maxconn ?? '-'), String(x.maxqueue ?? '-'), String(x.refused), String(x.rate), String(x.stot), ago(x.lastChangeSeconds)]);
    }
  }
  let out = renderTable(HEADER, rows);
  const policies = report.tenants.filter((t) => t.policy !== undefined);
  if (policies.length > 0) out += `\n${policyTable(policies)}`;
  if (!report.haproxy.reachable) out += `\nHAProxy's admin socket did not answer${report.haproxy.error ? ` (${report.haproxy.error})` : ''}: health and sessions are unknown.\n`;
  if (report.tenants.length === 0) out += '\nno tenants in routes.json or layout.json\n';
  if (report.refused.length > 0) {
    out += `\nRefused definitions (not served):\n${renderTable(['TENANT', 'WHERE', 'REASON'], report.refused.map((r) => [r.id ?? '-', sanitizeText(r.where, 200), sanitizeText(r.reason, 500)]))}`;
  }
  if (report.replica !== undefined) out += `\n${replicaTable(report.replica)}`;
  if (report.held !== undefined && (report.held.total > 0 || report.tenants.some((t) => t.state === 'paused'))) {
    out += `\nHeld connections (paused tenants, targets being added; this replica): ${report.held.now} waiting now, ${report.held.total} since HAProxy started (pgroute_agent_hold_total on /metrics: released, timed out, refused)\n`;
  }
  return out;
}
