// The PROXY protocol v2 header (haproxy.org/download/2.6/doc/proxy-protocol.txt) the agent puts in
// front of a cancel copy: the original client's address, and the HAProxy backend to use as the
// AUTHORITY TLV, which the internal frontend reads with fc_pp_authority. Pure: values in, bytes out.

import { isIPv4, isIPv6 } from 'node:net';
import { parseIPv4, parseIPv6 } from '../spop/ip.js';

/** The 12-byte signature every v2 header starts with. */
const SIGNATURE = Buffer.from('0d0a0d0a000d0a515549540a', 'hex');
/** Version 2, command PROXY (HAProxy reads TLVs only with PROXY, not with LOCAL). */
const VERSION_PROXY = 0x21;
/** Address family and transport: TCP over IPv4 / IPv6. */
const TCP4 = 0x11;
const TCP6 = 0x21;
/** PP2_TYPE_AUTHORITY: the host name the client asked for; here the backend's name. */
export const PP2_TYPE_AUTHORITY = 0x02;
/** Longest authority taken: backend names are short ([a-z0-9.-], below 100 bytes). */
const AUTHORITY_MAX = 255;

/** IPv4 text, or IPv6 text (an IPv4-mapped one is sent as IPv4, as HAProxy itself shows it). */
function addressBytes(address: string): { family: number; bytes: Buffer } | undefined {
  const a = address.toLowerCase().startsWith('::ffff:') && isIPv4(address.slice(7)) ? address.slice(7) : address;
  if (isIPv4(a)) return { family: TCP4, bytes: parseIPv4(a) };
  if (isIPv6(a)) return { family: TCP6, bytes: parseIPv6(a) };
  return undefined;
}

/**
 * A v2 header saying the connection comes from `source` (port 0) and asks for `authority`; throws
 * a RangeError for an address that is not IP text or an authority that does not fit.
 */
export function encodeProxyV2(source: string, authority: string): Buffer {
  const src = addressBytes(source);
  if (src === undefined) throw new RangeError(`PROXY v2: ${JSON.stringify(source)} is not an IP address`);
  const auth = Buffer.from(authority, 'latin1');
  if (auth.length === 0 || auth.length > AUTHORITY_MAX) throw new RangeError(`PROXY v2: authority must be 1..${AUTHORITY_MAX} bytes, got ${auth.length}`);
  const dst = Buffer.alloc(src.bytes.length); // the destination is HAProxy's own socket: unspecified
  const addresses = Buffer.concat([src.bytes, dst, Buffer.alloc(4)]); // + source and destination ports, 0
  const tlv = Buffer.alloc(3 + auth.length);
  tlv[0] = PP2_TYPE_AUTHORITY;
  tlv.writeUInt16BE(auth.length, 1);
  auth.copy(tlv, 3);
  const head = Buffer.alloc(4);
  head[0] = VERSION_PROXY;
  head[1] = src.family;
  head.writeUInt16BE(addresses.length + tlv.length, 2);
  return Buffer.concat([SIGNATURE, head, addresses, tlv]);
}
