// Which servers' state a reload carries over: only those the new configuration leaves as they were.

import { describe, expect, it } from 'vitest';
import { carriedServerState, configuredServers } from '../src/haproxy/server-state.js';

const HEADER = '# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight srv_iweight srv_time_since_last_change srv_check_status srv_check_result srv_check_health srv_check_state srv_agent_state bk_f_forced_id srv_f_forced_id srv_fqdn srv_port srvrecord srv_use_ssl srv_check_port srv_check_addr srv_agent_addr srv_agent_port';

/** A `show servers state` line as HAProxy 2.6 prints it (UP, full health). */
function line(backend: string, addr: string, port: number, opts: { fqdn?: string; admin?: number } = {}): string {
  return `3 ${backend} 1 s1 ${addr} 2 ${opts.admin ?? 0} 1 1 40 6 3 4 6 0 0 0 ${opts.fqdn ?? '-'} ${port} - 0 0 - - 0`;
}

const CONFIG = [
  'backend pg.acme.primary',
  '    mode tcp',
  '    server s1 10.0.0.5:5432 check inter 2s',
  'backend pg.named.primary',
  '    server s1 db.internal:5432 check inter 2s',
  'backend pg.v6.primary',
  '    server s1 [::1]:5433 check',
  'backend pg.spare.0',
  '    server s1 127.0.0.1:1 disabled',
  'frontend pgroute-stats',
  '    server s1 1.2.3.4:5',
].join('\n');

describe('carriedServerState', () => {
  it('reads the servers of the rendered config, without disabled ones or non-backends', () => {
    expect([...configuredServers(CONFIG)]).toEqual([
      ['pg.acme.primary/s1', { host: '10.0.0.5', port: '5432' }],
      ['pg.named.primary/s1', { host: 'db.internal', port: '5432' }],
      ['pg.v6.primary/s1', { host: '::1', port: '5433' }],
    ]);
  });

  it('keeps servers that stay where they were (by address or host name), clearing drain; drops moved, disabled and unknown ones', () => {
    const shown = ['1', HEADER,
      line('pg.acme.primary', '10.0.0.5', 5432, { admin: 8 }),
      line('pg.named.primary', '10.9.9.9', 5432, { fqdn: 'db.internal' }),
      line('pg.v6.primary', '::1', 5434),
      line('pg.spare.0', '10.0.0.7', 5432),
      line('pg.gone.primary', '10.0.0.8', 5432),
      '', ''].join('\n');
    const kept = carriedServerState(shown, CONFIG).split('\n');
    expect(kept[0]).toBe('1');
    expect(kept[1]).toBe(HEADER);
    expect(kept.slice(2, -1)).toEqual([
      line('pg.acme.primary', '10.0.0.5', 5432),
      line('pg.named.primary', '10.9.9.9', 5432, { fqdn: 'db.internal' }),
    ]);
  });

  it('leaves out a server the running worker holds in maintenance (a vacated backend the reload recreates): it starts as a new one', () => {
    for (const admin of [1, 2, 4, 0x20, 1 | 8]) {
      const shown = ['1', HEADER, line('pg.acme.primary', '10.0.0.5', 5432, { admin }).replace(/^(3 \S+ 1 s1 \S+) 2 /, '$1 0 '), ''].join('\n');
      expect(carriedServerState(shown, CONFIG), `admin ${admin}`).toBe(`1\n${HEADER}\n`);
    }
  });

  it('an answer that is not a version 1 state carries nothing', () => {
    expect(carriedServerState('Unknown command', CONFIG)).toBe('');
  });
});
