// A tenant's allowed networks (`allow: [10.0.0.0/8, 2001:db8::/32]`): the text is checked once by
// parseNetwork (the generator validates with it, so a list the agent receives always parses), and
// matched per connection by node's BlockList, built once per tenant route. An IPv4 network also
// matches the IPv4-mapped IPv6 form of its addresses (a listener on `::` sees ::ffff:10.1.2.3).

import { BlockList, isIP } from 'node:net';
import { describeValue } from '../quote.js';

export interface Network {
  readonly address: string;
  readonly prefix: number;
  readonly family: 'ipv4' | 'ipv6';
}

/** Most networks in one tenant's list. */
export const MAX_NETWORKS = 256;

/** `10.0.0.0/8`, `2001:db8::/32`, or a bare address (one host); otherwise the reason it is not. */
export function parseNetwork(text: unknown): Network | string {
  if (typeof text !== 'string' || text === '') return `a network must be text such as 10.0.0.0/8 or 2001:db8::/32, got ${describeValue(text)}`;
  const shown = JSON.stringify(text.length > 60 ? `${text.slice(0, 60)}...` : text);
  const slash = text.indexOf('/');
  const address = slash < 0 ? text : text.slice(0, slash);
  const v = isIP(address);
  if (v === 0 || address.includes('%')) return `${shown} is not a network: ${JSON.stringify(address.slice(0, 60))} is not an IP address (write 10.0.0.0/8 or 2001:db8::/32)`;
  const family = v === 4 ? 'ipv4' : 'ipv6';
  const bits = v === 4 ? 32 : 128;
  let prefix = bits;
  if (slash >= 0) {
    const p = text.slice(slash + 1);
    if (!/^\d{1,3}$/.test(p) || Number(p) > bits) return `${shown} is not a network: the prefix length must be a number from 0 to ${bits}`;
    prefix = Number(p);
  }
  const bytes = addressBytes(address, v);
  if (hostBitsSet(bytes, prefix)) return `${shown} is not a network: it has address bits set beyond its /${prefix} prefix (did you mean ${networkText(bytes, prefix, v)}?)`;
  return { address, prefix, family };
}

/** The reason a list of networks is unusable, or undefined. */
export function networksProblem(list: unknown): string | undefined {
  if (!Array.isArray(list) || list.length === 0) return 'allow must be a non-empty list of networks such as [10.0.0.0/8, 2001:db8::/32] (leave it out to allow every address)';
  if (list.length > MAX_NETWORKS) return `allow lists ${list.length} networks; at most ${MAX_NETWORKS} are allowed`;
  for (const [i, n] of list.entries()) {
    const r = parseNetwork(n);
    if (typeof r === 'string') return `allow[${i}]: ${r}`;
  }
  return undefined;
}

export type AddressCheck = (address: string) => boolean;

const matchers = new WeakMap<readonly string[], AddressCheck>();

/**
 * Whether an address is inside one of the networks (checked with parseNetwork beforehand; an entry
 * that does not parse matches nothing). Cached per list object: a route table's lists live as long
 * as the table.
 */
export function addressAllowed(allow: readonly string[], address: string): boolean {
  let check = matchers.get(allow);
  if (check === undefined) {
    check = compile(allow);
    matchers.set(allow, check);
  }
  return check(address);
}

function compile(allow: readonly string[]): AddressCheck {
  const list = new BlockList();
  for (const text of allow) {
    const n = parseNetwork(text);
    if (typeof n !== 'string') list.addSubnet(n.address, n.prefix, n.family);
  }
  return (address) => {
    const v = isIP(address);
    return v !== 0 && list.check(address, v === 4 ? 'ipv4' : 'ipv6');
  };
}

function addressBytes(address: string, v: number): number[] {
  if (v === 4) return address.split('.').map(Number);
  let text = address;
  let tail: number[] = [];
  const dotted = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (dotted !== null) {
    tail = (dotted[1] as string).split('.').map(Number);
    text = text.slice(0, -(dotted[1] as string).length) + '0:0';
  }
  const [head = '', rest] = text.split('::');
  const groups = (s: string | undefined): number[] => (s === undefined || s === '' ? [] : s.split(':').map((g) => parseInt(g, 16)));
  const h = groups(head);
  const r = rest === undefined ? [] : groups(rest);
  const all = rest === undefined ? h : [...h, ...new Array<number>(8 - h.length - r.length).fill(0), ...r];
  const bytes = all.flatMap((g) => [g >> 8, g & 0xff]);
  if (tail.length === 4) bytes.splice(12, 4, ...tail);
  return bytes;
}

function hostBitsSet(bytes: readonly number[], prefix: number): boolean {
  for (let i = 0; i < bytes.length; i++) {
    const keep = Math.max(0, Math.min(8, prefix - i * 8));
    const mask = keep === 0 ? 0 : (0xff << (8 - keep)) & 0xff;
    if (((bytes[i] as number) & ~mask & 0xff) !== 0) return true;
  }
  return false;
}

function networkText(bytes: readonly number[], prefix: number, v: number): string {
  const masked = bytes.map((b, i) => {
    const keep = Math.max(0, Math.min(8, prefix - i * 8));
    return b & (keep === 0 ? 0 : (0xff << (8 - keep)) & 0xff);
  });
  if (v === 4) return `${masked.join('.')}/${prefix}`;
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((((masked[i] as number) << 8) | (masked[i + 1] as number)).toString(16));
  // Shortest form is not needed in a hint; the longest zero run is still folded for readability.
  return `${groups.join(':').replace(/(^|:)0(:0)+(:|$)/, '::')}/${prefix}`;
}
