// IPv4/IPv6 text <-> network-order bytes for the IPV4/IPV6 typed data.
// Formatting follows RFC 5952 (lowercase hex, longest run of >= 2 zero groups shortened to "::",
// first run on ties) and renders IPv4-mapped addresses as "::ffff:a.b.c.d", like inet_ntop and Node.

import { IPV4_SIZE, IPV6_SIZE } from './constants.js';
import { invalid } from './errors.js';

const IPV6_GROUPS = 8;
const IPV4_MAPPED_PREFIX_GROUP = 0xffff;
const MAX_OCTET = 255;
const MAX_GROUP = 0xffff;
const MAX_GROUP_HEX_DIGITS = 4;

/** The decimal text of every byte value: formatting an address (once per connection) converts no numbers. */
const OCTET_TEXT: readonly string[] = Array.from({ length: MAX_OCTET + 1 }, (_, i) => String(i));

export function formatIPv4(buf: Buffer, offset: number): string {
  return `${OCTET_TEXT[buf[offset]!]!}.${OCTET_TEXT[buf[offset + 1]!]!}.${OCTET_TEXT[buf[offset + 2]!]!}.${OCTET_TEXT[buf[offset + 3]!]!}`;
}

export function formatIPv6(buf: Buffer, offset: number): string {
  const groups: number[] = new Array<number>(IPV6_GROUPS);
  for (let i = 0; i < IPV6_GROUPS; i++) groups[i] = buf.readUInt16BE(offset + 2 * i);
  // IPv4-mapped ::ffff:a.b.c.d
  if (groups[0] === 0 && groups[1] === 0 && groups[2] === 0 && groups[3] === 0 && groups[4] === 0 && groups[5] === IPV4_MAPPED_PREFIX_GROUP) {
    return `::ffff:${formatIPv4(buf, offset + 12)}`;
  }
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < IPV6_GROUPS; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < IPV6_GROUPS && groups[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = (g: number | undefined): string => (g ?? 0).toString(16);
  if (bestLen < 2) return groups.map(hex).join(':');
  const head = groups.slice(0, bestStart).map(hex).join(':');
  const tail = groups.slice(bestStart + bestLen).map(hex).join(':');
  return `${head}::${tail}`;
}

function parseIPv4Into(text: string, out: Buffer, offset: number): boolean {
  const parts = text.split('.');
  if (parts.length !== IPV4_SIZE) return false;
  for (let i = 0; i < IPV4_SIZE; i++) {
    const p = parts[i]!;
    // Decimal only, no leading zeros (avoids octal ambiguity), 0..255.
    if (!/^(0|[1-9][0-9]{0,2})$/.test(p)) return false;
    const n = Number(p);
    if (n > MAX_OCTET) return false;
    out[offset + i] = n;
  }
  return true;
}

/** Parses dotted-quad text into 4 bytes; throws SpopError(INVALID) on bad input. */
export function parseIPv4(text: string): Buffer {
  const out = Buffer.alloc(IPV4_SIZE);
  if (!parseIPv4Into(text, out, 0)) throw invalid(`invalid IPv4 address text: ${JSON.stringify(text)}`);
  return out;
}

function parseGroups(part: string): number[] | null {
  if (part === '') return [];
  const out: number[] = [];
  for (const g of part.split(':')) {
    if (g.length === 0 || g.length > MAX_GROUP_HEX_DIGITS || !/^[0-9a-fA-F]+$/.test(g)) return null;
    const n = parseInt(g, 16);
    if (n > MAX_GROUP) return null;
    out.push(n);
  }
  return out;
}

/** Parses IPv6 text (with optional "::" and trailing dotted IPv4; no zone id) into 16 bytes. */
export function parseIPv6(text: string): Buffer {
  const bad = (): never => {
    throw invalid(`invalid IPv6 address text: ${JSON.stringify(text)}`);
  };
  let body = text;
  const tailV4 = Buffer.alloc(IPV4_SIZE);
  let hasV4 = false;
  const lastColon = body.lastIndexOf(':');
  if (lastColon >= 0 && body.indexOf('.', lastColon) >= 0) {
    if (!parseIPv4Into(body.slice(lastColon + 1), tailV4, 0)) bad();
    hasV4 = true;
    // Keep the colon(s): "::1.2.3.4" -> "::", "a::b:1.2.3.4" -> "a::b"
    body = body.slice(0, lastColon + 1);
    if (body.endsWith('::')) {
      // fine: the "::" stays
    } else if (body.endsWith(':')) {
      body = body.slice(0, -1);
    }
  }
  const groupsNeeded = hasV4 ? IPV6_GROUPS - 2 : IPV6_GROUPS;
  const dbl = body.indexOf('::');
  let groups: number[];
  if (dbl >= 0) {
    if (body.indexOf('::', dbl + 1) >= 0) bad();
    const head = parseGroups(body.slice(0, dbl));
    const tail = parseGroups(body.slice(dbl + 2));
    if (head === null || tail === null) return bad();
    if (head.length + tail.length > groupsNeeded - 1) bad();
    groups = [...head, ...new Array<number>(groupsNeeded - head.length - tail.length).fill(0), ...tail];
  } else {
    const all = parseGroups(body);
    if (all === null || all.length !== groupsNeeded) return bad();
    groups = all;
  }
  const out = Buffer.alloc(IPV6_SIZE);
  for (let i = 0; i < groups.length; i++) out.writeUInt16BE(groups[i]!, 2 * i);
  if (hasV4) tailV4.copy(out, IPV6_SIZE - IPV4_SIZE);
  return out;
}
