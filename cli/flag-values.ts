// The values of flags and PGROUTE_* variables, checked before they reach haproxy.cfg or spoe.conf.
// haproxy.cfg is read word by word and line by line: a value with a space, a '#' or a line break
// would add words or rules, so each rule below admits only what its HAProxy keyword reads as one
// word. A refusal is one line naming the flag (and its variable), the value quoted, and the rule.

import { isIP } from 'node:net';
import { resolve } from 'node:path';
import { quoteValue } from '../agent/src/index.js';
import { ConfigError, durationMs, isHostName } from '../generator/src/index.js';

/** A flag as messages name it: `--bind (PGROUTE_BIND)`, or the flag alone when it has no variable. */
export function flagLabel(flag: string, env?: string): string {
  return env === undefined ? flag : `${flag} (${env})`;
}

/** Throws the one-line refusal: `<label> must be <rule>, got "<value>"`. */
export function refuse(label: string, rule: string, value: string): never {
  throw new ConfigError(`${label} must be ${rule}, got ${quoteValue(value, 80)}`);
}

export function parsePort(label: string, value: string, allowZero = false): number {
  const n = /^\d{1,5}$/.test(value) ? Number(value) : NaN;
  if (!Number.isInteger(n) || n < (allowZero ? 0 : 1) || n > 65535) refuse(label, `a port number from ${allowZero ? 0 : 1} to 65535`, value);
  return n;
}

/** A whole number from `min` (0 unless a count of 0 means nothing) to `max`. */
export function parseCount(label: string, value: string, max: number, min = 0): number {
  const n = /^\d{1,10}$/.test(value) ? Number(value) : NaN;
  if (!Number.isInteger(n) || n < min || n > max) refuse(label, `a whole number from ${min} to ${max}`, value);
  return n;
}

/** An IP address HAProxy can bind (no IPv6 zone id: HAProxy does not parse `%eth0`). */
export function parseIp(label: string, value: string): string {
  if (isIP(value) === 0 || value.includes('%')) refuse(label, 'an IP address such as 127.0.0.1, 0.0.0.0 or ::', value);
  return value;
}

/** An IP address or a host name: what a `bind` or `server` line reads as its address. */
export function parseHost(label: string, value: string): string {
  if ((isIP(value) === 0 || value.includes('%')) && !isHostName(value)) refuse(label, 'an IP address (127.0.0.1, 0.0.0.0, ::) or a host name', value);
  return value;
}

const LISTEN_RULE = 'host:port, such as 127.0.0.1:6711 (this machine only), 0.0.0.0:6711 (every interface) or [::]:6711';

/** An HTTP listen address `host:port` or `[ipv6]:port` (the metrics address). */
export function parseListenAddress(label: string, value: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]*)\]|([^:[\]]*)):(\d{1,5})$/.exec(value);
  const host = m?.[1] ?? m?.[2] ?? '';
  const ok = m !== null && (m[1] !== undefined ? isIP(host) === 6 : isIP(host) === 4 || isHostName(host));
  if (!ok) refuse(label, LISTEN_RULE, value);
  return { host, port: parsePort(label, m[3] as string) };
}

/** A duration in milliseconds (HAProxy's syntax; no unit means milliseconds), at least `minMs`. */
export function parseDurationMs(label: string, value: string, minMs = 1): number {
  const ms = durationMs(value);
  if (!Number.isFinite(ms) || ms < minMs) refuse(label, `a duration${minMs > 0 ? ` of at least ${minMs}ms` : ''} like 500ms, 5s or 1m`, value);
  return ms;
}

/** HAProxy keeps timeouts in a signed 32-bit count of milliseconds: about 24.8 days. */
const MAX_HAPROXY_TIMEOUT_MS = 2 ** 31 - 1;

/**
 * A timeout HAProxy can hold, as given (HAProxy reads the same syntax): from minMs (0 is never
 * one: HAProxy reads a zero timeout as none at all, or warns and drops it) up to about 24 days.
 */
export function parseDuration(label: string, value: string, minMs = 1): string {
  const ms = parseDurationMs(label, value, Math.max(1, minMs));
  if (ms > MAX_HAPROXY_TIMEOUT_MS) refuse(label, "a duration of at most 24d (HAProxy's longest timeout)", value);
  return value;
}

/** Characters of a path haproxy.cfg reads as one word (no quoting needed). */
const PATH_WORD = /^\/[A-Za-z0-9._\/+~-]*$/;
const PATH_RULE = "an absolute or relative path of letters, digits, '.', '_', '-', '+', '~' and '/'";
/** sun_path holds 108 bytes with the terminating NUL. */
const MAX_SOCKET_PATH = 107;
/** The longest socket the state dir holds (haproxy-master.sock), after a '/'. */
const LONGEST_STATE_SOCKET = '/haproxy-master.sock'.length;

/** A unix socket path HAProxy is given as `unix@<path>`: one word, short enough for sun_path. */
export function parseSocketPath(label: string, value: string): string {
  const path = resolve(value);
  if (value === '' || !PATH_WORD.test(path) || Buffer.byteLength(path) > MAX_SOCKET_PATH) refuse(label, `a socket path (${PATH_RULE.slice(3)}) of at most ${MAX_SOCKET_PATH} bytes`, value);
  return path;
}

/** A file haproxy.cfg names (a certificate, a CA): one word once absolute. */
export function parseConfigFilePath(label: string, value: string): string {
  const path = resolve(value);
  if (value === '' || !PATH_WORD.test(path)) refuse(label, PATH_RULE, value);
  return path;
}

/** The state dir: its paths and sockets are written into haproxy.cfg. */
export function parseStateDir(label: string, value: string): string {
  const path = resolve(value);
  const max = MAX_SOCKET_PATH - LONGEST_STATE_SOCKET;
  if (value === '' || !PATH_WORD.test(path) || Buffer.byteLength(path) > max) refuse(label, `${PATH_RULE} of at most ${max} bytes once absolute (its sockets must fit a unix socket path)`, value);
  return path;
}
