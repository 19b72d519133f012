// The cancel tables: one per replica, each written only by its owner, all read by the cancel message.

import { describe, expect, it } from 'vitest';
import { cancelTableArgNames } from '../../agent/src/index.js';
import { renderConfig } from '../src/render/haproxy-config.js';
import { CANCEL_HANDOVER_TABLE, CANCEL_TABLE, cancelContext, cancelTableOf, LEARNED_TABLE } from '../src/render/cancel-context.js';
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
    // The replicated table, then the local handover table.
    expect(c.args).toHaveLength(2 * (1 + 8));
    expect(c.args).toContain(`${cancelTableArgNames(1).written}=src_get_gpc(0,${CANCEL_HANDOVER_TABLE})`);
  });

  it('several replicas: a table per replica name, this one writing its own', () => {
    const c = cancelContext(THREE);
    expect(c.tables).toEqual(['pgroute-cancels-r1', 'pgroute-cancels-r2', 'pgroute-cancels-r3']);
    expect(c.own).toBe('pgroute-cancels-r2');
    const j1 = cancelTableArgNames(1);
    expect(c.args).toContain(`${j1.written}=src_get_gpc(0,pgroute-cancels-r2)`);
    expect(c.args).toContain(`${j1.words[7]}=src_get_gpt(7,pgroute-cancels-r2)`);
    expect(c.args).toHaveLength(4 * 9);
    expect(c.args).toContain(`${cancelTableArgNames(3).words[7]}=src_get_gpt(7,${CANCEL_HANDOVER_TABLE})`);
  });

  it('no replica name takes the handover table\'s name', () => {
    expect(CANCEL_HANDOVER_TABLE.startsWith(`${CANCEL_TABLE}-`)).toBe(false);
    expect(CANCEL_HANDOVER_TABLE).not.toBe(CANCEL_TABLE);
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
    for (const t of tables) expect(cfg).toMatch(new RegExp(`backend ${t.replace(/[.-]/g, '\\$&')}\\n    stick-table type ipv6 size 100k expire 24h store gpt\\(9\\),gpc\\(1\\) peers pgroute\\n`));
    // The handover table and the learned mark: local (no peers), so a new worker starts with them empty.
    expect(cfg).toContain(`backend ${CANCEL_HANDOVER_TABLE}\n    stick-table type ipv6 size 100k expire 24h store gpt(9),gpc(1)\n`);
    expect(cfg).toContain(`backend ${LEARNED_TABLE}\n    stick-table type integer size 1\n`);
    const tracked = cfg.split('\n').filter((l) => l.includes('track-sc'));
    const own = 'track-sc2 src table pgroute-cancels-r2 if !pgr_cancel_handover ';
    const handover = `track-sc2 src table ${CANCEL_HANDOVER_TABLE} if pgr_cancel_handover `;
    expect(tracked.filter((l) => l.includes('pgroute-cancel'))).toEqual([expect.stringContaining(own), expect.stringContaining(handover)]);
    // Nothing else writes a cancel table: sticky counter 2 tracks only the own cancel table or the
    // handover table (the per-tenant policy's counters 0 and 1 track its own tables), and writes
    // through it are the record's (its gpt slots and its write counter).
    expect(tracked.filter((l) => l.includes('track-sc2'))).toEqual([expect.stringContaining(own), expect.stringContaining(handover)]);
    for (const l of cfg.split('\n').filter((x) => /sc-(set-gpt|inc-gpc)\(\d+,2\)/.test(x))) expect(l).toMatch(/sc-(set-gpt\(\d,2\)|inc-gpc\(0,2\))/);
    const args = spoe.split('\n').find((l) => l.includes('args pkt=') && l.includes('src_get_gpc'))!;
    for (const t of tables) expect(args).toContain(`src_get_gpc(0,${t})`);
  });

  it('tracks (and so pushes to the peers) only a new id or a stale hour stamp; reads by lookups', () => {
    const { cfg } = rendered();
    const rules = cfg.split('\n').map((l) => l.trim());
    // A tracked or written entry is pushed to every peer, changed or not: the record is read
    // without tracking, from the own table.
    // Each read is from the table the record is written to: the own one, or the handover one.
    const reads = rules.filter((l) => /^tcp-request content set-var\(txn\.pgr\.x(\d|h)\)/.test(l));
    expect(reads).toHaveLength(2 * (2 * 4 + 1));
    for (const l of reads) expect(l).toMatch(new RegExp(`( src_get_gpt\\(\\d,pgroute-cancels-r2\\),xor\\(.* if !pgr_cancel_handover |src_get_gpt\\(\\d,${CANCEL_HANDOVER_TABLE}\\),xor\\(.* if pgr_cancel_handover )pgr_cancel_id !pgr_refused$`));
    expect(rules.filter((l) => l.includes('sc_get_gpt('))).toEqual([]);
    expect(rules.filter((l) => l.includes('track-sc2'))).toEqual([
      'tcp-request content track-sc2 src table pgroute-cancels-r2 if !pgr_cancel_handover pgr_cancel_id !pgr_refused !pgr_cancel_known || !pgr_cancel_handover pgr_cancel_id !pgr_refused !pgr_cancel_stamped',
      `tcp-request content track-sc2 src table ${CANCEL_HANDOVER_TABLE} if pgr_cancel_handover pgr_cancel_id !pgr_refused !pgr_cancel_known || pgr_cancel_handover pgr_cancel_id !pgr_refused !pgr_cancel_stamped`,
    ]);
    // The handover table is chosen only for an address the own table holds nothing of, while this
    // worker is not marked learned and is younger than the limit.
    expect(rules).toContain(
      `tcp-request content set-var(txn.pgr.ho) int(1) if !{ int(0),in_table(${LEARNED_TABLE}) } pgr_cancel_id !pgr_refused { src_get_gpc(0,pgroute-cancels-r2) -m int 0 } { date,sub(proc.pgr_born) -m int lt 30 }`,
    );
    expect(rules).toContain('set-var proc.pgr_born date');
    // The stamp (gpt8, after the 4 ids) is the current hour, written only when it is not.
    expect(rules).toContain('tcp-request content set-var(txn.pgr.ch) date,div(3600) if pgr_cancel_id');
    expect(rules).toContain('tcp-request content set-var(txn.pgr.xh) src_get_gpt(8,pgroute-cancels-r2),xor(txn.pgr.ch) if !pgr_cancel_handover pgr_cancel_id !pgr_refused');
    expect(rules).toContain('tcp-request content sc-set-gpt(8,2) var(txn.pgr.ch) if pgr_cancel_id !pgr_refused !pgr_cancel_stamped');
    // Every other write is of a new id.
    for (const l of rules.filter((x) => /sc-(set-gpt\([0-7],2\)|inc-gpc\(0,2\))/.test(x))) expect(l).toContain(' if pgr_cancel_id !pgr_refused !pgr_cancel_known');
  });

  it('accepts at once, before any write, a connection whose id is in the newest slot and whose stamp is this hour', () => {
    const { cfg } = rendered();
    const rules = cfg.split('\n').map((l) => l.trim());
    // The newest slot is the one written last: (written count - 1) mod 4, read by a lookup.
    expect(rules).toContain('tcp-request content set-var(txn.pgr.cs) src_get_gpc(0,pgroute-cancels-r2),add(3),mod(4) if pgr_cancel_id');
    const accept = rules.filter((l) => l.startsWith('tcp-request content accept if pgr_cancel_s'));
    expect(accept).toEqual([
      'tcp-request content accept if ' + [0, 1, 2, 3].map((s) => `pgr_cancel_s${s} pgr_cancel_a${s} pgr_cancel_b${s} pgr_cancel_fresh !pgr_refused`).join(' || '),
    ]);
    for (const s of [0, 1, 2, 3]) {
      expect(rules).toContain(`acl pgr_cancel_a${s}     src_get_gpt(${2 * s},pgroute-cancels-r2),xor(txn.pgr.ca) -m int 0`);
      expect(rules).toContain(`acl pgr_cancel_b${s}     src_get_gpt(${2 * s + 1},pgroute-cancels-r2),xor(txn.pgr.cb) -m int 0`);
    }
    expect(rules).toContain('acl pgr_cancel_fresh   src_get_gpt(8,pgroute-cancels-r2),xor(txn.pgr.ch) -m int 0');
    // The accept comes before every write of the record, so an accepted connection writes nothing.
    const at = rules.indexOf(accept[0] as string);
    expect(rules.findIndex((l) => /track-sc2|sc-set-gpt\(\d,2\)|sc-inc-gpc\(0,2\)/.test(l))).toBeGreaterThan(at);
  });
});
