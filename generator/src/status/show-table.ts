// `show table pgroute-tenants` (haproxy/partials/policy-tables.hbs) -> each tenant's admission
// counters. Pure. 2.6 prints the gpc array as gpc0..gpc4 and its rate as gpc0_rate(<ms>); the
// parser also takes the gpc(0) spelling.

export interface TenantCounters {
  /** Client connections open now, across the tenant's targets (conn_cur). */
  readonly open: number;
  /** Connections admitted in the last second (gpc_rate 0). */
  readonly admittedPerSecond: number;
  /** Connections admitted since the entry was created (gpc 0). */
  readonly admitted: number;
  /** Refused over the cap (gpc 1), over the tenant's rate (gpc 2), over one address's rate (gpc 3). */
  readonly refusedCap: number;
  readonly refusedRate: number;
  readonly refusedClientRate: number;
  /** Refused over a target's maxqueue (gpc 4; haproxy/partials/queue-limit.hbs). */
  readonly refusedQueue: number;
}

export const TENANTS_TABLE = 'pgroute-tenants';

export function parseTenantCounters(text: string): Map<string, TenantCounters> {
  const out = new Map<string, TenantCounters>();
  for (const line of text.split('\n')) {
    const key = /\bkey=(\S+)/.exec(line)?.[1];
    if (key === undefined) continue;
    const num = (re: RegExp): number => Number(re.exec(line)?.[1] ?? 0);
    const gpc = (i: number): number => num(new RegExp(`\\bgpc\\(?${i}\\)?=(\\d+)`));
    out.set(key, {
      open: num(/\bconn_cur=(\d+)/),
      admittedPerSecond: num(/\bgpc_?\(?0\)?_?rate\([^)]*\)=(\d+)/),
      admitted: gpc(0),
      refusedCap: gpc(1),
      refusedRate: gpc(2),
      refusedClientRate: gpc(3),
      refusedQueue: gpc(4),
    });
  }
  return out;
}
