// --stats-allow: which client addresses may read HAProxy's stats and metrics besides loopback.
// In the compose deployment the stats port is published to the host, whose connections arrive
// from the tenants' network's gateway (Docker's port proxy); the tenant containers on that same
// network must not read it. `gateway` names that address without knowing it in advance.

import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { ConfigError } from '../generator/src/index.js';
import { refuse } from './flag-values.js';

const CIDR = /^([0-9a-fA-F:.]+)\/(\d{1,3})$/;

/** The IPv4 default gateway of this network namespace (from /proc/net/route), if there is one. */
export function defaultGateway(routes = '/proc/net/route'): string | undefined {
  let text: string;
  try {
    text = readFileSync(routes, 'utf8');
  } catch {
    return undefined;
  }
  for (const line of text.split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f[1] !== '00000000' || f[2] === undefined || f[2] === '00000000') continue;
    const n = Number.parseInt(f[2], 16);
    // Little-endian: the first octet is the lowest byte.
    return [n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, n >>> 24].join('.');
  }
  return undefined;
}

/** The addresses and networks of `value` (comma or space separated; `gateway` as above), validated. */
export function parseStatsAllow(label: string, value: string | undefined, gateway: () => string | undefined = defaultGateway): string[] {
  if (value === undefined || value.trim() === '') return [];
  const items = value.split(/[\s,]+/).filter((v) => v !== '');
  // Separators alone are no list: taken as none, they left the stats port open to anyone.
  if (items.length === 0) refuse(label, 'IP addresses, networks (10.0.0.0/8) or the word gateway, separated by commas', value);
  return items.map((item) => {
    if (item === 'gateway') {
      const gw = gateway();
      if (gw === undefined) throw new ConfigError(`${label}: gateway was asked for, but this network namespace has no IPv4 default gateway; name the addresses instead`);
      return gw;
    }
    const m = CIDR.exec(item);
    const ok = m === null ? isIP(item) !== 0 : isIP(m[1] as string) !== 0 && Number(m[2]) <= (isIP(m[1] as string) === 4 ? 32 : 128);
    if (!ok) refuse(label, 'IP addresses, networks (10.0.0.0/8) or the word gateway, separated by commas', value);
    return item;
  });
}
