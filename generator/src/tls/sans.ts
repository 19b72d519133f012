// Subject alternative names as operators type them: DNS names and IP addresses, told apart here.
// Pure.

import { isIP } from 'node:net';
import { ConfigError } from '../errors.js';
import { quote } from '../validate.js';

export type San = { readonly type: 'dns'; readonly value: string } | { readonly type: 'ip'; readonly value: string };

// A hostname label, or a leading "*." wildcard label (RFC 6125 style: only the whole left-most label).
const LABEL = /^(?!-)[a-z0-9-]{1,63}(?<!-)$/;

/**
 * Classifies and canonicalizes one SAN: IPs in their canonical text form (IPv6 compressed,
 * lower case), DNS names in lower case without a trailing dot. Throws a ConfigError naming the
 * value when it is neither an IP address nor a valid DNS name.
 */
export function parseSan(raw: string): San {
  const text = raw.trim();
  if (isIP(text) === 4) return { type: 'ip', value: text };
  const unbracketed = text.startsWith('[') && text.endsWith(']') ? text.slice(1, -1) : text;
  if (isIP(unbracketed) === 6) return { type: 'ip', value: canonicalIpv6(unbracketed) };
  const name = text.toLowerCase().replace(/\.$/, '');
  const labels = name.split('.');
  const valid =
    name.length > 0 &&
    name.length <= 253 &&
    labels.every((label, i) => LABEL.test(label) || (i === 0 && label === '*' && labels.length > 2)) &&
    // An all-digit last label is no DNS name but a mistyped IPv4 address (e.g. 10.0.0.256).
    !/^\d+$/.test(labels[labels.length - 1] ?? '');
  if (!valid) throw new ConfigError(`TLS name ${quote(raw)} is neither an IP address nor a valid DNS name`);
  return { type: 'dns', value: name };
}

/** Parses a list of SANs: at least one, duplicates removed, order kept. */
export function parseSans(raw: readonly string[]): San[] {
  if (raw.length === 0) throw new ConfigError('TLS needs at least one name (DNS name or IP address) for the server certificate');
  const seen = new Set<string>();
  const out: San[] = [];
  for (const r of raw) {
    const san = parseSan(r);
    const key = sanKey(san);
    if (seen.has(key)) continue;
    seen.add(key);
    out.push(san);
  }
  return out;
}

/** "dns:db.example.com" / "ip:127.0.0.1": a stable key for comparing SAN sets. */
export function sanKey(san: San): string {
  return `${san.type}:${san.value}`;
}

/** True when both lists name the same set of SANs, whatever the order, case or IPv6 spelling. */
export function sameSans(a: readonly string[], b: readonly string[]): boolean {
  const ka = new Set(a.map((s) => sanKey(parseSan(s))));
  const kb = new Set(b.map((s) => sanKey(parseSan(s))));
  return ka.size === kb.size && [...ka].every((k) => kb.has(k));
}

function canonicalIpv6(ip: string): string {
  // The WHATWG URL parser serializes IPv6 hosts canonically (RFC 5952: compressed, lower case).
  return new URL(`http://[${ip}]/`).hostname.slice(1, -1);
}
