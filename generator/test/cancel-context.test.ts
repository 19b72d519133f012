// The cancel tables: one per replica, each written only by its owner, all read by the cancel message.

import { describe, expect, it } from 'vitest';
import { cancelTableArgNames } from '../../agent/src/index.js';
import { renderConfig } from '../src/render/haproxy-config.js';
import { CANCEL_TABLE, cancelContext, cancelTableOf } from '../src/render/cancel-context.js';
import { parseReplicas, singleReplica } from '../src/replicas/peers.js';
import { defaultSettings, statePaths } from '../src/settings.js';
import { parseTenantsFile } from '../src/sources/file.js';
import { declaredBackends, FALLBACK, layoutOf, ORIGIN, TEMPLATES } from './support.js';

const THREE = parseReplicas('r2', ['r1=10.0.0.1:10000', 'r2=10.0.0.2:10000', 'r3=10.0.0.3:10000']);

function rendered(replicas = THREE): { cfg: string; spoe: string } {
  const settings = { ...defaultSettings('/tmp/pgroute-cancel-context-test'), replicas };
  const f = parseTenantsFile('tenants:\n  - id: acme\n    host: 10.0.0.5\n    port: 5432\n', ORIGIN, FALLBACK);
  const r = renderConfig(f.deployment, layoutOf(f.snapshot), settings, statePaths(settings.stateDir), 'v', TEMPLATES);
  return { cfg: r.haproxyConfig, spoe: r.spoeConfig };
}

describe('cancel tables', () => {
  it('one replica: the one table pgroute-cancels, as before', () => {
    const c = cancelContext(singleReplica('solo'));
    expect(c.own).toBe(CANCEL_TABLE);
    expect(c.tables).toEqual([CANCEL_TABLE]);
    expect(c.args).toHaveLength(1 + 8);
  });

  it('several replicas: a table per replica name, this one writing its own', () => {
    const c = cancelContext(THREE);
    expect(c.tables).toEqual(['pgroute-cancels-r1', 'pgroute-cancels-r2', 'pgroute-cancels-r3']);
    expect(c.own).toBe('pgroute-cancels-r2');
    const j1 = cancelTableArgNames(1);
    expect(c.args).toContain(`${j1.written}=src_get_gpc(0,pgroute-cancels-r2)`);
    expect(c.args).toContain(`${j1.words[7]}=src_get_gpt(7,pgroute-cancels-r2)`);
    expect(c.args).toHaveLength(3 * 9);
  });

  it('refuses a name that is not a valid replica name (it becomes a proxy name)', () => {
    expect(cancelTableOf('db-1.eu')).toBe('pgroute-cancels-db-1.eu');
    expect(() => cancelTableOf('a b')).toThrow(/cancel table for replica "a b"/);
    expect(() => cancelTableOf('')).toThrow();
  });

  it('renders every table replicated by the peers section, written only by the own table, read all by the message', () => {
    const { cfg, spoe } = rendered();
    const tables = declaredBackends(cfg).filter((b) => b.startsWith('pgroute-cancels'));
    expect(tables).toEqual(['pgroute-cancels-r1', 'pgroute-cancels-r2', 'pgroute-cancels-r3']);
    for (const t of tables) expect(cfg).toMatch(new RegExp(`backend ${t.replace(/[.-]/g, '\\$&')}\\n    stick-table type ipv6 size 100k expire 24h store gpt\\(8\\),gpc\\(1\\) peers pgroute\\n`));
    const tracked = cfg.split('\n').filter((l) => l.includes('track-sc'));
    expect(tracked.filter((l) => l.includes('pgroute-cancels'))).toEqual([expect.stringContaining('track-sc2 src table pgroute-cancels-r2 if')]);
    // Nothing else writes a cancel table: sticky counter 2 tracks only the own cancel table (the
    // per-tenant policy's counters 0 and 1 track its own tables), and writes through it are the
    // record's (its gpt slots and its write counter).
    expect(tracked.filter((l) => l.includes('track-sc2'))).toEqual([expect.stringContaining('track-sc2 src table pgroute-cancels-r2 if')]);
    for (const l of cfg.split('\n').filter((x) => /sc-(set-gpt|inc-gpc)\(\d+,2\)/.test(x))) expect(l).toMatch(/sc-(set-gpt\(\d,2\)|inc-gpc\(0,2\))/);
    const args = spoe.split('\n').find((l) => l.includes('args pkt=') && l.includes('src_get_gpc'))!;
    for (const t of tables) expect(args).toContain(`src_get_gpc(0,${t})`);
  });
});
