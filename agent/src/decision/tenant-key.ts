// Finding the tenant key of a startup packet under a RoutingPolicy. Pure.
//
// Sources (only those listed in policy.keys are consulted):
//  - 'options':  `-c pgroute.tenant=<id>` in the `options` startup parameter. When it is present it
//                ALWAYS wins, wherever it stands in policy.keys, and no other source is consulted:
//                the user and database names are then the real ones inside the tenant (so a user
//                pattern's `target` group does not apply either).
//  - 'user':     policy.user.mode 'exact' (also when policy.user is absent): the whole user name is
//                the tenant id; 'pattern': a JS regex with a named group `tenant` (and optionally
//                `target`); a user name that does not match (or leaves `tenant` empty) gives no key.
//  - 'database': the `database` parameter. PostgreSQL uses the user name when it is absent or
//                empty; so do we, but such a DEFAULTED database is not something the client said:
//                it is used only when no other source gave a key, and never makes a conflict
//                (otherwise `psql -U app.acme` under a `<role>.<tenant>` pattern could never connect).
//                A database equal to the user name counts as defaulted too: libpq (psql), pgx and
//                others fill in the user name themselves and send it, so the packet cannot tell it
//                from one the client typed (which names the same database either way).
// Precedence: options; else the first key of the other sources in policy.keys order. When two of
// them give keys that differ, the result is a conflict naming both; nothing is picked silently.
// Tenant ids are compared exactly (case-sensitive).
//
// Patterns are compiled once per policy object (WeakMap cache), not per connection. An operator's
// pattern runs on user names of up to ~10 kB: a pattern with catastrophic backtracking is a
// configuration error the config validator should catch.

import type { KeySource, RoutingPolicy } from './types.js';
import { readTenantOption, type TenantOptionReader } from './options-tenant.js';
import { quoteValue } from '../quote.js';
import { compileRoutingPattern } from './patterns.js';

export interface KeyClaim {
  readonly source: KeySource;
  readonly tenant: string;
}

export type TenantKey =
  | {
      readonly kind: 'key';
      readonly tenant: string;
      readonly source: KeySource;
      /** The user pattern's `target` group, when it matched one. */
      readonly target: string | undefined;
    }
  /** No source gave a key. `message` is for the client, `logDetail` for the operator. */
  | { readonly kind: 'none'; readonly message: string; readonly logDetail: string }
  | { readonly kind: 'conflict'; readonly first: KeyClaim; readonly second: KeyClaim }
  /** The policy itself is unusable (bad pattern, unknown source): not the client's fault. */
  | { readonly kind: 'config-error'; readonly logDetail: string };

type ImplicitSource = 'user' | 'database';

export interface CompiledPolicy {
  readonly useOptions: boolean;
  /** 'user' / 'database' in policy.keys order, without duplicates. */
  readonly implicit: readonly ImplicitSource[];
  /** Set in pattern mode. Never global/sticky, so exec() keeps no state between calls. */
  readonly userPattern: RegExp | undefined;
  readonly error: string | undefined;
}

const compiled = new WeakMap<RoutingPolicy, CompiledPolicy>();

function compileUncached(policy: RoutingPolicy): CompiledPolicy {
  let useOptions = false;
  const implicit: ImplicitSource[] = [];
  let userPattern: RegExp | undefined;
  const fail = (error: string): CompiledPolicy => ({ useOptions: false, implicit: [], userPattern: undefined, error });
  const keys: readonly unknown[] = Array.isArray(policy.keys) ? policy.keys : [];
  for (const k of keys) {
    if (k === 'options') useOptions = true;
    else if (k === 'user' || k === 'database') {
      if (!implicit.includes(k)) implicit.push(k);
    } else return fail(`policy.keys names an unknown source ${quoteValue(String(k))}`);
  }
  if (!useOptions && implicit.length === 0) return fail('policy.keys is empty: no connection could name a tenant');
  if (implicit.includes('user') && policy.user !== undefined && policy.user.mode !== 'exact') {
    if (policy.user.mode !== 'pattern') return fail(`policy.user.mode ${quoteValue(String(policy.user.mode))} is unknown`);
    const source = policy.user.pattern;
    if (typeof source !== 'string' || source === '') return fail('policy.user.mode is pattern but no pattern is set');
    try {
      userPattern = compileRoutingPattern('user', source);
    } catch (err) {
      return fail(`policy.user.pattern does not compile: ${err instanceof Error ? err.message : String(err)}`);
    }
    if (!/\(\?<tenant>/.test(source)) return fail('policy.user.pattern has no named group (?<tenant>...)');
  }
  return { useOptions, implicit, userPattern, error: undefined };
}

/** The compiled form of a policy; compiled on first use and cached for the policy object's life. */
export function compilePolicy(policy: RoutingPolicy): CompiledPolicy {
  let c = compiled.get(policy);
  if (c === undefined) {
    c = compileUncached(policy);
    compiled.set(policy, c);
  }
  return c;
}

function noKey(c: CompiledPolicy, user: string, emptyOption: boolean): TenantKey {
  if (emptyOption) {
    return {
      kind: 'none',
      message: 'options sets pgroute.tenant to an empty value; set it to your tenant id (options=-c pgroute.tenant=<tenant>)',
      logDetail: 'pgroute.tenant in options is empty',
    };
  }
  const userTried = c.implicit.includes('user');
  let message = 'no tenant is named in the connection';
  if (userTried && user !== '' && c.userPattern !== undefined) {
    message = `the user name ${quoteValue(user)} does not name a tenant`;
  }
  if (c.useOptions) message += '; name it with options=-c pgroute.tenant=<tenant>';
  else if (userTried) message += '; use a user name that includes your tenant id';
  else message += '; give your tenant id as the database name';
  const tried = (c.useOptions ? ['options'] : []).concat(c.implicit).join(', ');
  return { kind: 'none', message, logDetail: `no key from the configured sources (${tried})` };
}

/**
 * The tenant key of a startup packet's parameters under `policy`. `readOption` extracts
 * `pgroute.tenant` from the `options` parameter (PostgreSQL rules); replaceable for tests or to
 * share the protocol package's parser.
 */
export function findTenantKey(
  policy: RoutingPolicy,
  params: ReadonlyMap<string, string>,
  readOption: TenantOptionReader = readTenantOption,
): TenantKey {
  const c = compilePolicy(policy);
  if (c.error !== undefined) return { kind: 'config-error', logDetail: c.error };
  const user = params.get('user') ?? '';

  if (c.useOptions) {
    const options = params.get('options');
    if (options !== undefined && options !== '') {
      const fromOption = readOption(options);
      if (fromOption !== undefined) {
        if (fromOption === '') return noKey(c, user, true);
        return { kind: 'key', tenant: fromOption, source: 'options', target: undefined };
      }
    }
  }

  let firstSource: ImplicitSource | undefined;
  let firstTenant = '';
  let target: string | undefined;
  let defaulted: string | undefined;
  for (let i = 0; i < c.implicit.length; i++) {
    const source = c.implicit[i] as ImplicitSource;
    let tenant: string;
    let userTarget: string | undefined;
    if (source === 'user') {
      if (user === '') continue;
      if (c.userPattern !== undefined) {
        const m = c.userPattern.exec(user);
        const t = m?.groups?.['tenant'];
        if (t === undefined || t === '') continue;
        tenant = t;
        const tg = m?.groups?.['target'];
        if (tg !== undefined && tg !== '') userTarget = tg;
      } else {
        tenant = user;
      }
    } else {
      const db = params.get('database');
      if (db === undefined || db === '' || db === user) {
        if (user !== '') defaulted = user;
        continue;
      }
      tenant = db;
    }
    if (firstSource === undefined) {
      firstSource = source;
      firstTenant = tenant;
    } else if (tenant !== firstTenant) {
      return {
        kind: 'conflict',
        first: { source: firstSource, tenant: firstTenant },
        second: { source, tenant },
      };
    }
    if (userTarget !== undefined) target = userTarget;
  }
  if (firstSource !== undefined) return { kind: 'key', tenant: firstTenant, source: firstSource, target };
  if (defaulted !== undefined) return { kind: 'key', tenant: defaulted, source: 'database', target: undefined };
  return noKey(c, user, false);
}
