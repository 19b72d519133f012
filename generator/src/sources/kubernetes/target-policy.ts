// Where a Kubernetes Service may send pgroute's public port (--kube-allow-external-names,
// --kube-allowed-ports). Pure: no DNS, no API calls. Rules in docs/kubernetes-targets.md.
//
// Without these limits a Service is a TCP relay: an ExternalName Service (spec.externalName) and the
// pgroute.port label accept any host and port, so anyone who may create a Service in a watched
// namespace could route the public port to 169.254.169.254:80 (cloud metadata), a kubelet (10250)
// or the API server (6443). So:
// - ExternalName Services are refused unless their name matches an operator's pattern;
// - every tenant's port must be in an allowed list (default: PostgreSQL's and the poolers' ports).
//
// Patterns: an exact name (`db.example.com`), an exact IP address (`10.1.2.3`, `fd00::5`), or `*.`
// followed by a name of at least two labels (`*.db.example.com`: exactly one more label in front,
// as in TLS certificates). Compared without case and without one trailing dot. A wildcard never
// matches an IP address (nor a name that HAProxy's resolver would read as one, such as
// `2852039166`), `localhost`, or a cloud metadata name. Link-local and cloud metadata addresses
// and names are never allowed, not even listed exactly.

import { isIP } from 'node:net';
import { ConfigError } from '../../errors.js';
import { quote } from '../../validate.js';

export const EXTERNAL_NAMES_FLAG = '--kube-allow-external-names';
export const EXTERNAL_NAMES_ENV = 'PGROUTE_KUBE_ALLOW_EXTERNAL_NAMES';
export const PORTS_FLAG = '--kube-allowed-ports';
export const PORTS_ENV = 'PGROUTE_KUBE_ALLOWED_PORTS';
/** How a refused value names where it came from: the flag and its variable. */
const EXTERNAL_NAMES_LABEL = `${EXTERNAL_NAMES_FLAG} (${EXTERNAL_NAMES_ENV})`;
const PORTS_LABEL = `${PORTS_FLAG} (${PORTS_ENV})`;

/**
 * PostgreSQL's port, the next seven (a second or third cluster on one host: Debian's
 * pg_createcluster counts up from 5432) and PgBouncer's/Odyssey's 6432. Nothing a kubelet
 * (10250), an API server (443, 6443), etcd (2379) or a metadata service (80) listens on.
 */
export const DEFAULT_ALLOWED_PORTS = '5432-5439,6432';

/** Most characters and entries read from a flag's values (a longer value is refused). */
const MAX_CHARS = 65_536;
const MAX_ENTRIES = 1_024;

const LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

/** Names of cloud metadata services: never allowed. */
const METADATA_NAMES: ReadonlySet<string> = new Set(['metadata', 'metadata.google.internal', 'metadata.goog', 'instance-data', 'instance-data.ec2.internal']);
/** Metadata addresses outside the link-local ranges: Alibaba Cloud, AWS over IPv6. */
const METADATA_ADDRESSES: ReadonlySet<string> = new Set(['100.100.100.200', 'fd00:ec2::254']);

export interface ExternalNamePatterns {
  /** Exact names and canonical IP addresses, lower case, no trailing dot. */
  readonly exact: ReadonlySet<string>;
  /** The suffixes of `*.` patterns, with their leading dot (`.db.example.com`). */
  readonly wildcards: readonly string[];
}

/** Closed ranges [from, to], sorted, not overlapping nor touching. */
export type PortRanges = readonly (readonly [number, number])[];

export interface TargetPolicy {
  readonly externalNames: ExternalNamePatterns;
  readonly ports: PortRanges;
}

export const NO_EXTERNAL_NAMES: ExternalNamePatterns = { exact: new Set(), wildcards: [] };

/** What pgroute allows with neither flag set: no ExternalName Service, ports 5432-5439 and 6432. */
export const DEFAULT_TARGET_POLICY: TargetPolicy = { externalNames: NO_EXTERNAL_NAMES, ports: parseAllowedPorts(undefined) };

/** Flag values (repeated, and/or each a list separated by commas or white space) as entries. */
function entriesOf(flag: string, values: string | readonly string[] | undefined): string[] {
  const list = values === undefined ? [] : typeof values === 'string' ? [values] : values;
  const chars = list.reduce((n, v) => n + v.length, 0);
  if (chars > MAX_CHARS) throw new ConfigError(`${flag} is ${chars} characters long, more than the ${MAX_CHARS} read; give fewer entries`);
  const entries = list.flatMap((v) => v.split(/[\s,]+/)).filter((e) => e !== '');
  if (entries.length > MAX_ENTRIES) throw new ConfigError(`${flag} has ${entries.length} entries, more than the ${MAX_ENTRIES} read; use wildcards or ranges`);
  return entries;
}

/** --kube-allow-external-names: the patterns, or a ConfigError (one line) naming the bad entry. */
export function parseExternalNamePatterns(values: string | readonly string[] | undefined): ExternalNamePatterns {
  const exact = new Set<string>();
  const wildcards = new Set<string>();
  for (const raw of entriesOf(EXTERNAL_NAMES_LABEL, values)) {
    const refuse = (why: string): never => {
      throw new ConfigError(`${EXTERNAL_NAMES_LABEL}: ${quote(raw)} ${why}`);
    };
    const entry = normalize(raw);
    if (entry === '*') refuse('would allow every name; give patterns such as *.db.example.com');
    if (entry.startsWith('*.')) {
      const suffix = entry.slice(2);
      if (!isDnsName(suffix)) refuse('is not *. followed by a DNS name (such as *.db.example.com)');
      if (!suffix.includes('.')) refuse('would allow a whole top-level domain; give at least two labels after *. (such as *.db.example.com)');
      if (numericLast(suffix)) refuse('ends in a number, so it would match IP addresses; list IP addresses exactly');
      wildcards.add(`.${suffix}`);
      continue;
    }
    if (entry.includes('*')) refuse('has a * elsewhere than as its whole first label; write *.db.example.com, or list names exactly');
    const ip = canonicalIp(entry);
    if (ip !== undefined) {
      if (forbiddenAddress(ip)) refuse('is a link-local or cloud metadata address, which pgroute never relays to');
      exact.add(ip);
      continue;
    }
    if (!isDnsName(entry)) refuse('is not a DNS name, an IP address, or *. followed by a DNS name');
    if (numericLast(entry)) refuse('looks like an IP address but is not one written plainly; write IPv4 addresses as four decimal numbers (10.1.2.3)');
    if (METADATA_NAMES.has(entry)) refuse('is a cloud metadata service name, which pgroute never relays to');
    exact.add(entry);
  }
  return { exact, wildcards: [...wildcards].sort() };
}

/** --kube-allowed-ports: ports and ranges (5432-5439,6432), merged; undefined: the default. */
export function parseAllowedPorts(values: string | readonly string[] | undefined): PortRanges {
  const entries = entriesOf(PORTS_LABEL, values ?? DEFAULT_ALLOWED_PORTS);
  if (entries.length === 0) throw new ConfigError(`${PORTS_LABEL} lists no port; give ports and ranges such as ${DEFAULT_ALLOWED_PORTS} (1-65535 allows every port)`);
  const ranges: [number, number][] = [];
  for (const entry of entries) {
    const m = /^(\d{1,5})(?:-(\d{1,5}))?$/.exec(entry);
    const from = Number(m?.[1]);
    const to = m?.[2] === undefined ? from : Number(m[2]);
    if (m === null || from < 1 || to > 65535 || from > to) {
      throw new ConfigError(`${PORTS_LABEL}: ${quote(entry)} is not a port (1 to 65535) or a range of ports (low-high, such as 5432-5439)`);
    }
    ranges.push([from, to]);
  }
  ranges.sort((a, b) => a[0] - b[0]);
  const merged: [number, number][] = [];
  for (const r of ranges) {
    const last = merged[merged.length - 1];
    if (last !== undefined && r[0] <= last[1] + 1) last[1] = Math.max(last[1], r[1]);
    else merged.push([r[0], r[1]]);
  }
  return merged;
}

/** The ranges as the flag takes them: `5432-5439,6432`. */
export function describePorts(ports: PortRanges): string {
  return ports.map(([a, b]) => (a === b ? String(a) : `${a}-${b}`)).join(',');
}

/** The patterns as the flag takes them (exact entries first). */
export function describePatterns(patterns: ExternalNamePatterns): string {
  return [...[...patterns.exact].sort(), ...patterns.wildcards.map((s) => `*${s}`)].join(',');
}

export function portAllowed(ports: PortRanges, port: number): boolean {
  return ports.some(([a, b]) => port >= a && port <= b);
}

/**
 * Why an ExternalName Service (`service`: namespace/name) may not point at `externalName`, or
 * undefined when a pattern allows it.
 */
export function externalNameProblem(service: string, externalName: string, patterns: ExternalNamePatterns): string | undefined {
  const name = normalize(externalName);
  const ip = canonicalIp(name);
  const shown = quote(externalName);
  const fix = `add it (or a pattern such as *.db.example.com) to ${EXTERNAL_NAMES_FLAG} (${EXTERNAL_NAMES_ENV}), or serve the tenant from a Service with a cluster IP`;
  if ((ip !== undefined && forbiddenAddress(ip)) || METADATA_NAMES.has(name)) {
    return `the ExternalName Service ${service} points at ${shown}, a link-local or cloud metadata address, which pgroute never relays to`;
  }
  if (ip !== undefined) {
    if (patterns.exact.has(ip)) return undefined;
    return `the ExternalName Service ${service} points at the IP address ${shown}, which ${EXTERNAL_NAMES_FLAG} does not list (an IP address is allowed only when listed exactly); ${fix}`;
  }
  if (patterns.exact.has(name)) return undefined;
  if (!isDnsName(name) || numericLast(name)) {
    return `the ExternalName Service ${service} points at ${shown}, which is not a plain DNS name and is never matched by a pattern`;
  }
  if (matchesWildcard(name, patterns.wildcards)) return undefined;
  const allowed = describePatterns(patterns);
  return `the ExternalName Service ${service} points at ${shown}, which ${EXTERNAL_NAMES_FLAG} does not allow (${allowed === '' ? 'no ExternalName is allowed by default' : `allowed: ${quote(allowed)}`}); ${fix}`;
}

/** Why `port` (from the Service's ports, or its port label: `from`) is not allowed, or undefined. */
export function portProblem(service: string, port: number, from: string, ports: PortRanges): string | undefined {
  if (portAllowed(ports, port)) return undefined;
  return `the Service ${service} targets port ${port} (${from}), which ${PORTS_FLAG} does not allow (allowed: ${describePorts(ports)}); if it really serves PostgreSQL, add it to ${PORTS_FLAG} (${PORTS_ENV})`;
}

function matchesWildcard(name: string, suffixes: readonly string[]): boolean {
  if (name === 'localhost' || name.endsWith('.localhost')) return false;
  for (const suffix of suffixes) {
    if (!name.endsWith(suffix)) continue;
    const first = name.slice(0, name.length - suffix.length);
    if (first !== '' && !first.includes('.')) return true;
  }
  return false;
}

function normalize(value: string): string {
  return value.toLowerCase().replace(/\.$/, '');
}

function isDnsName(name: string): boolean {
  return name.length > 0 && name.length <= 253 && name.split('.').every((l) => LABEL.test(l));
}

/**
 * A name whose last label is a number (decimal, or hex/octal-looking) is read as an IPv4 address
 * by libc's resolver (inet_aton takes 2852039166 and 169.254.43518): never a DNS name to match.
 */
function numericLast(name: string): boolean {
  const last = name.slice(name.lastIndexOf('.') + 1);
  return /^(0x[0-9a-f]*|[0-9]+)$/.test(last);
}

/** The address in canonical form when `value` is an IP literal (IPv6 optionally in brackets). */
function canonicalIp(value: string): string | undefined {
  const bare = value.startsWith('[') && value.endsWith(']') ? value.slice(1, -1) : value;
  const kind = isIP(bare);
  if (kind === 4) return bare.split('.').map((n) => String(Number(n))).join('.');
  if (kind !== 6) return undefined;
  try {
    return new URL(`http://[${bare}]/`).hostname.slice(1, -1);
  } catch {
    // A zone index (fe80::1%eth0) is link-local by definition; URL refuses it.
    return bare;
  }
}

/** Link-local (169.254.0.0/16, fe80::/10, IPv4-mapped link-local), unspecified, or metadata. */
function forbiddenAddress(ip: string): boolean {
  if (METADATA_ADDRESSES.has(ip)) return true;
  if (ip.includes('%')) return true;
  const mapped = /^::ffff:(.+)$/.exec(ip)?.[1];
  if (mapped !== undefined) return forbiddenAddress(mapped.includes('.') ? mapped : v4FromHex(mapped));
  if (ip.includes('.')) return ip.startsWith('169.254.') || ip === '0.0.0.0';
  return /^fe[89ab][0-9a-f]:/.test(ip) || ip === '::';
}

/** `a9fe:a9fe` (how URL writes ::ffff:169.254.169.254) as 169.254.169.254. */
function v4FromHex(hex: string): string {
  const [hi = '0', lo = '0'] = hex.split(':');
  const a = parseInt(hi, 16);
  const b = parseInt(lo, 16);
  return [a >> 8, a & 255, b >> 8, b & 255].join('.');
}

/** The policy from the two flags' values (each a string from the environment, or the flag's list). */
export function targetPolicyFromFlags(externalNames: string | readonly string[] | undefined, ports: string | readonly string[] | undefined): TargetPolicy {
  return { externalNames: parseExternalNamePatterns(externalNames), ports: parseAllowedPorts(ports) };
}
