// `show peers` of a two-peer pair (a, b; section pgroute with one table), captured from the real
// HAProxy 2.6 (/usr/sbin/haproxy) and 3.2 on replica a: both connected (after the resync timeout),
// then with b stopped. 2.6 keeps last_status=ESTA for the gone peer; 3.2 shows it reconnecting
// (CONN, state=TAR); neither has an established session (state=EST) any more.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseHaproxyAge, parseShowPeers, showPeersSection } from '../../src/haproxy/show-peers.js';
import { joinStatus, replicaStatus } from '../../src/status/join.js';
import { statusTable } from '../../src/status/table.js';

const fixture = (name: string): string => readFileSync(join(import.meta.dirname, 'fixtures', name), 'utf8');

describe('parseShowPeers (HAProxy 2.6 and 3.2)', () => {
  for (const v of ['26', '32']) {
    it(`${v}: both connected, resync finished; this replica is the local peer`, () => {
      const sections = parseShowPeers(fixture(`show-peers-${v}-connected.txt`));
      expect(sections).toHaveLength(1);
      const s = sections[0]!;
      expect(s.name).toBe('pgroute');
      expect(s.resynced).toBe(true);
      expect(s.peers.map((p) => [p.name, p.local, p.address, p.connected, p.lastStatus])).toEqual([
        ['b', false, `127.0.0.1:${v === '26' ? 48712 : 48732}`, true, 'ESTA'],
        ['a', true, `127.0.0.1:${v === '26' ? 48711 : 48731}`, false, 'NONE'],
      ]);
      expect(s.peers[0]!.lastHandshakeSeconds).toBe(26);
      expect(s.peers[1]!.lastHandshakeSeconds).toBeUndefined();
    });

    it(`${v}: the stopped peer is not connected`, () => {
      const s = showPeersSection(fixture(`show-peers-${v}-peer-down.txt`), 'pgroute')!;
      const b = s.peers.find((p) => p.name === 'b')!;
      expect(b.connected).toBe(false);
      expect(b.lastStatus).toBe(v === '26' ? 'ESTA' : 'CONN');
    });
  }

  it('reads the resync flags of the section line only (bits 0x1 and 0x2)', () => {
    const starting = '0x5600fe082ba0: [06/Dec/2026:08:58:16] id=pgroute disabled=0 flags=0x11 resync_timeout=4s task_calls=1\n';
    expect(showPeersSection(starting, 'pgroute')?.resynced).toBe(false);
    // 3.2 sets higher bits too.
    expect(showPeersSection(starting.replace('0x11', '0x28100001'), 'pgroute')?.resynced).toBe(false);
    expect(showPeersSection(starting.replace('0x11', '0x28300003'), 'pgroute')?.resynced).toBe(true);
    expect(showPeersSection(starting, 'other')).toBeUndefined();
    expect(parseShowPeers('')).toEqual([]);
    expect(parseShowPeers('Unknown command\n')).toEqual([]);
  });

  it('reads HAProxy ages', () => {
    expect(parseHaproxyAge('4s')).toBe(4);
    expect(parseHaproxyAge('1m5s')).toBe(65);
    expect(parseHaproxyAge('2h3m')).toBe(7380);
    expect(parseHaproxyAge('1d2h')).toBe(93600);
    expect(parseHaproxyAge('250ms')).toBe(0);
    expect(parseHaproxyAge('<NEVER>')).toBeUndefined();
    expect(parseHaproxyAge('<PAST>')).toBeUndefined();
    expect(parseHaproxyAge('')).toBeUndefined();
  });
});

describe('the replica in pgroute status', () => {
  const layout = { backends: [] } as unknown as Parameters<typeof joinStatus>[0]['layout'];

  it('names this replica and lists the others with connected/resync, in JSON and in the table', () => {
    const replica = replicaStatus(showPeersSection(fixture('show-peers-32-peer-down.txt'), 'pgroute')!);
    expect(replica).toEqual({ name: 'a', resynced: true, peers: [{ name: 'b', address: '127.0.0.1:48732', connected: false, lastStatus: 'CONN', lastHandshakeSeconds: 0 }] });
    const report = joinStatus({ routes: { tenants: [] }, layout, disabled: [], stats: [], replica });
    expect(report.replica).toEqual(replica);
    const text = statusTable(report);
    expect(text).toContain('Replica a: initial resync finished; 0/1 peers connected\n');
    expect(text).toMatch(/^PEER +ADDRESS +CONNECTED +LAST-STATUS +LAST-HANDSHAKE\nb +127\.0\.0\.1:48732 +no +CONN +0s ago\n/m);
  });

  it('a lone replica: its name, no peers; no `show peers` answer: no replica part', () => {
    const lone = '0x1: [06/Dec/2026:08:58:16] id=pgroute disabled=0 flags=0x33 resync_timeout=<PAST> task_calls=1\n  0x2: id=solo(local,inactive) addr=unix@/s/haproxy-peers.sock last_status=NONE last_hdshk=<NEVER>\n';
    const replica = replicaStatus(showPeersSection(lone, 'pgroute')!);
    expect(replica).toEqual({ name: 'solo', resynced: true, peers: [] });
    expect(statusTable(joinStatus({ routes: { tenants: [] }, layout, disabled: [], stats: [], replica }))).toContain('Replica solo: initial resync finished; no peers\n');
    const none = joinStatus({ routes: { tenants: [] }, layout, disabled: [], stats: [] });
    expect('replica' in none).toBe(false);
    expect(statusTable(none)).not.toContain('Replica');
  });
});
