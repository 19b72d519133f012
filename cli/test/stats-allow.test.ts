// --stats-allow: what may read HAProxy's stats port besides loopback.

import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../generator/src/errors.js';
import { defaultGateway, parseStatsAllow } from '../stats-allow.js';

describe('--stats-allow', () => {
  it('takes IPs and networks, and gateway as this namespace\'s default gateway', () => {
    expect(parseStatsAllow('--stats-allow', undefined)).toEqual([]);
    expect(parseStatsAllow('--stats-allow', '10.0.0.0/8, 192.0.2.7 ::1 2001:db8::/32')).toEqual(['10.0.0.0/8', '192.0.2.7', '::1', '2001:db8::/32']);
    expect(parseStatsAllow('--stats-allow', 'gateway', () => '172.18.0.1')).toEqual(['172.18.0.1']);
  });

  it('refuses anything else, so nothing unchecked reaches haproxy.cfg', () => {
    // ',,,' named nobody and left the port open to anyone.
    for (const bad of ['}', 'localhost', '10.0.0.0/33', '1.2.3.4 }\nfrontend x', '::1/129', ',,,', ' , ']) {
      expect(() => parseStatsAllow('--stats-allow', bad), bad).toThrow(ConfigError);
    }
    expect(() => parseStatsAllow('--stats-allow', 'gateway', () => undefined)).toThrow(/no IPv4 default gateway/);
  });

  it('reads the default gateway from /proc/net/route', () => {
    const dir = mkdtempSync(join(tmpdir(), 'pgroute-route-'));
    writeFileSync(join(dir, 'route'), 'Iface\tDestination\tGateway \tFlags\n' + 'eth1\t000012AC\t00000000\t0001\n' + 'eth0\t00000000\t010012AC\t0003\n');
    expect(defaultGateway(join(dir, 'route'))).toBe('172.18.0.1');
    expect(defaultGateway(join(dir, 'missing'))).toBeUndefined();
  });
});
