// Validation of tenant definitions, whatever their source. Anything that reaches haproxy.cfg passes
// through here first; the rules are strict enough that no value can inject configuration.

import { isIP } from 'node:net';
import { describeValue, quoteValue } from '../../agent/src/index.js';

/** DNS-label-like: lower-case letters, digits and '-', 1..63 chars, no leading/trailing '-'. */
export const TENANT_ID = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;
/** Target names are short identifiers: primary, pool, replica, ... */
export const TARGET_NAME = /^[a-z][a-z0-9-]{0,30}$/;
/** RFC 1123 host names (labels of letters, digits and '-', dot-separated). */
const HOST_NAME = /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;

export const TENANT_ID_RULE = 'lower-case letters, digits and "-", 1 to 63 characters, starting and ending with a letter or digit';

/** Returns why a value is not a usable tenant id, or undefined when it is. */
export function tenantIdProblem(id: unknown): string | undefined {
  if (typeof id !== 'string') return `tenant id must be a string, got ${describe(id)}`;
  if (!TENANT_ID.test(id)) return `tenant id ${quote(id)} is invalid: use ${TENANT_ID_RULE}`;
  return undefined;
}

export function targetNameProblem(name: unknown): string | undefined {
  if (typeof name !== 'string' || !TARGET_NAME.test(name)) {
    return `target name ${describe(name)} is invalid: use a lower-case letter then letters, digits or "-" (at most 31)`;
  }
  return undefined;
}

export function hostProblem(host: unknown): string | undefined {
  if (typeof host !== 'string' || host === '') return `host must be a non-empty string, got ${describe(host)}`;
  if (isIP(host) !== 0) {
    // Node accepts IPv6 zone ids (fe80::1%eth0); HAProxy cannot parse them in a server or bind line,
    // so one such tenant would make `haproxy -c` reject the whole configuration.
    return host.includes('%') ? `host ${quote(host)} has an IPv6 zone id, which HAProxy does not accept` : undefined;
  }
  if (!isHostName(host)) return `host ${quote(host)} is neither an IP address nor a valid host name`;
  return undefined;
}

/**
 * An RFC 1123 host name whose last label is not a number (RFC 3696: no top-level domain is): "1.2.3",
 * "127.1", "2852039166" or "127.0x1" are not names but shorthand IPv4 addresses, which HAProxy
 * (through getaddrinfo) reads as 1.2.0.3, 127.0.0.1, 170.0.0.254 and 127.0.0.1, not what the
 * operator may have meant.
 */
export function isHostName(value: string): boolean {
  return HOST_NAME.test(value) && !/(?:^|\.)(?:0x[0-9a-f]*|[0-9]+)$/i.test(value);
}

export function portProblem(port: unknown): string | undefined {
  if (typeof port !== 'number' || !Number.isInteger(port) || port < 1 || port > 65535) {
    return `port must be an integer from 1 to 65535, got ${describe(port)}`;
  }
  return undefined;
}

export function positiveIntProblem(name: string, value: unknown, max: number): string | undefined {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > max) {
    return `${name} must be an integer from 1 to ${max}, got ${describe(value)}`;
  }
  return undefined;
}

/** A whole number from 0 to max (0 meaning "none" where the caller says so). */
export function countProblem(name: string, value: unknown, max: number): string | undefined {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > max) {
    return `${name} must be a whole number from 0 to ${max}, got ${describe(value)}`;
  }
  return undefined;
}

/** Quotes a user-supplied value for an error message (pgroute's one quoting, quoteValue): escaped, and cut at 80 characters. */
export function quote(value: string): string {
  return quoteValue(value, 80);
}

/** A value for an error message (describeValue: a string quoted, anything else as JSON), cut at 80 characters. */
function describe(value: unknown): string {
  return describeValue(value, 80);
}

/** Host as HAProxy wants it in a server line: IPv6 addresses in brackets. */
export function haproxyAddress(host: string, port: number): string {
  return isIP(host) === 6 ? `[${host}]:${port}` : `${host}:${port}`;
}
