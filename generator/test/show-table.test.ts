import { describe, expect, it } from 'vitest';
import { parseTenantCounters } from '../src/status/show-table.js';

describe('parseTenantCounters', () => {
  it('reads HAProxy 2.6\'s show table lines (gpc array as gpc0..gpc4)', () => {
    const text = [
      '# table: pgroute-tenants, type: string, size:204800, used:2',
      '0x7f3958044d00: key=acme use=2 exp=595727 conn_cur=2 gpc0=8 gpc1=2 gpc2=1 gpc3=5 gpc4=7 gpc0_rate(1000)=3',
      '0x7f3958044e00: key=globex use=0 exp=1000 shard=0 conn_cur=0 gpc(0)=1 gpc(1)=0 gpc(2)=0 gpc(3)=0 gpc(4)=4 gpc_rate(0,1000)=0',
      '',
    ].join('\n');
    const c = parseTenantCounters(text);
    expect(c.get('acme')).toEqual({ open: 2, admittedPerSecond: 3, admitted: 8, refusedCap: 2, refusedRate: 1, refusedClientRate: 5, refusedQueue: 7 });
    expect(c.get('globex')).toEqual({ open: 0, admittedPerSecond: 0, admitted: 1, refusedCap: 0, refusedRate: 0, refusedClientRate: 0, refusedQueue: 4 });
  });
});
