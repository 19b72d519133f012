import { describe, expect, it } from 'vitest';
import { compilePolicy, findTenantKey, type TenantKey } from '../../src/decision/tenant-key.js';
import { readTenantOption } from '../../src/decision/options-tenant.js';
import type { RoutingPolicy } from '../../src/decision/types.js';
import { policy } from './fixtures.js';

const ALL = policy(); // options, user (pattern), database
const DB_ONLY = policy({ keys: ['database'] });
const EXACT = policy({ keys: ['user', 'database'], user: { mode: 'exact' } });
const OPTIONS_ONLY = policy({ keys: ['options'] });
const DB_FIRST = policy({ keys: ['database', 'user'] });
const USER_ONLY = policy({ keys: ['user'] });
const NO_OPTIONS = policy({ keys: ['user', 'database'] });
const USER_NO_RULE = policy({ keys: ['user'], user: undefined });

type Expect =
  | { key: string; source: string; target?: string }
  | { conflict: [string, string, string, string] }
  | { none: RegExp }
  | { configError: RegExp };

const cases: Array<[string, RoutingPolicy, Record<string, string>, Expect]> = [
  // options always wins, and then nothing else is consulted
  ['options wins over disagreeing user and database', ALL, { options: '-c pgroute.tenant=acme', user: 'app.globex', database: 'globex' }, { key: 'acme', source: 'options' }],
  ['options wins; user pattern target is not consulted', ALL, { options: '-c pgroute.tenant=acme', user: 'app.globex.replica' }, { key: 'acme', source: 'options' }],
  ['options --name=value form', ALL, { options: '--pgroute.tenant=acme', user: 'bob' }, { key: 'acme', source: 'options' }],
  ['options -cNAME=value, name case-insensitive', ALL, { options: '-cPGROUTE.TENANT=acme', user: 'bob' }, { key: 'acme', source: 'options' }],
  ['options: last setting wins', ALL, { options: '-c pgroute.tenant=globex -c pgroute.tenant=acme', user: 'bob' }, { key: 'acme', source: 'options' }],
  ['options: backslash escapes inside the name', ALL, { options: '-c pgroute.ten\\ant=acme', user: 'bob' }, { key: 'acme', source: 'options' }],
  ['options value is case-sensitive', ALL, { options: '-c pgroute.tenant=ACME', user: 'bob' }, { key: 'ACME', source: 'options' }],
  ['options without the tenant setting falls through to user', ALL, { options: '-c search_path=app', user: 'app.acme' }, { key: 'acme', source: 'user' }],
  ['options pgroute-tenant (dash) is another setting', ALL, { options: '-c pgroute-tenant=globex', user: 'app.acme' }, { key: 'acme', source: 'user' }],
  ['options setting without value is ignored', ALL, { options: '-c pgroute.tenant', user: 'app.acme' }, { key: 'acme', source: 'user' }],
  ['empty options value: no key, no fallback', ALL, { options: '-c pgroute.tenant=', user: 'app.acme' }, { none: /empty value/ }],
  ['options not configured: ignored', DB_ONLY, { options: '-c pgroute.tenant=acme', user: 'bob', database: 'globex' }, { key: 'globex', source: 'database' }],
  ['options only, absent', OPTIONS_ONLY, { user: 'app.acme', database: 'acme' }, { none: /options=-c pgroute\.tenant=<tenant>/ }],
  ['options only, present', OPTIONS_ONLY, { user: 'x', options: '-c pgroute.tenant=acme' }, { key: 'acme', source: 'options' }],
  // user then database
  ['user and database agree', ALL, { user: 'app.acme', database: 'acme' }, { key: 'acme', source: 'user' }],
  ['user and database disagree: conflict', ALL, { user: 'app.acme', database: 'globex' }, { conflict: ['user', 'acme', 'database', 'globex'] }],
  ['database defaulted to user does not conflict', ALL, { user: 'app.acme' }, { key: 'acme', source: 'user' }],
  ['empty database is defaulted too', ALL, { user: 'app.acme', database: '' }, { key: 'acme', source: 'user' }],
  // libpq (psql -U app.acme with no dbname) sends database=<user name> itself.
  ['database equal to the user name is defaulted too', ALL, { user: 'app.acme', database: 'app.acme' }, { key: 'acme', source: 'user' }],
  ['database first, equal to the user name: user key wins', DB_FIRST, { user: 'app.acme', database: 'app.acme' }, { key: 'acme', source: 'user' }],
  ['user does not match, database equal to it: the user name', ALL, { user: 'bob', database: 'bob' }, { key: 'bob', source: 'database' }],
  ['user pattern target group', ALL, { user: 'app.acme.replica', database: 'acme' }, { key: 'acme', source: 'user', target: 'replica' }],
  ['user does not match: database gives the key', ALL, { user: 'bob', database: 'globex' }, { key: 'globex', source: 'database' }],
  ['user does not match, no database: PostgreSQL default (user name)', ALL, { user: 'bob' }, { key: 'bob', source: 'database' }],
  ['empty user, no database: no key', ALL, { user: '' }, { none: /no tenant is named/ }],
  ['database only', DB_ONLY, { user: 'app.acme', database: 'acme' }, { key: 'acme', source: 'database' }],
  ['database only, absent: the user name', DB_ONLY, { user: 'acme' }, { key: 'acme', source: 'database' }],
  ['database compared exactly', DB_ONLY, { user: 'x', database: 'ACME' }, { key: 'ACME', source: 'database' }],
  ['exact user and database agree', EXACT, { user: 'acme', database: 'acme' }, { key: 'acme', source: 'user' }],
  ['exact user and database disagree', EXACT, { user: 'acme', database: 'globex' }, { conflict: ['user', 'acme', 'database', 'globex'] }],
  ['exact user, no database', EXACT, { user: 'acme' }, { key: 'acme', source: 'user' }],
  ['no user rule means exact', USER_NO_RULE, { user: 'app.acme' }, { key: 'app.acme', source: 'user' }],
  ['database first: conflict names database first', DB_FIRST, { user: 'app.acme', database: 'globex' }, { conflict: ['database', 'globex', 'user', 'acme'] }],
  ['database first but defaulted: user key wins', DB_FIRST, { user: 'app.acme' }, { key: 'acme', source: 'user' }],
  ['database first, agree: source database, target from user', DB_FIRST, { user: 'app.acme.pool', database: 'acme' }, { key: 'acme', source: 'database', target: 'pool' }],
  ['user only, no match', USER_ONLY, { user: 'bob', database: 'acme' }, { none: /^the user name "bob" does not name a tenant; use a user name that includes your tenant id$/ }],
  ['options and user, neither: hint names options', policy({ keys: ['options', 'user'] }), { user: 'bob' }, { none: /^the user name "bob" does not name a tenant; name it with options=-c pgroute\.tenant=<tenant>$/ }],
  ['database only with empty user: hint names the database', DB_ONLY, { user: '' }, { none: /give your tenant id as the database name/ }],
  ['user and database without options: conflict', NO_OPTIONS, { user: 'app.acme', database: 'umbrella', options: '-c pgroute.tenant=acme' }, { conflict: ['user', 'acme', 'database', 'umbrella'] }],
  // configuration errors
  ['no sources', policy({ keys: [] }), { user: 'a' }, { configError: /empty/ }],
  ['unknown source', policy({ keys: ['host' as never] }), { user: 'a' }, { configError: /unknown source/ }],
  ['pattern does not compile', policy({ user: { mode: 'pattern', pattern: '(' } }), { user: 'a' }, { configError: /does not compile/ }],
  ['pattern without tenant group', policy({ user: { mode: 'pattern', pattern: '^(?<t>.*)$' } }), { user: 'a' }, { configError: /named group/ }],
  ['pattern mode without pattern', policy({ user: { mode: 'pattern' } }), { user: 'a' }, { configError: /no pattern/ }],
];

function check(actual: TenantKey, expected: Expect): void {
  if ('key' in expected) {
    expect(actual).toEqual({ kind: 'key', tenant: expected.key, source: expected.source, target: expected.target });
  } else if ('conflict' in expected) {
    const [s1, t1, s2, t2] = expected.conflict;
    expect(actual).toEqual({ kind: 'conflict', first: { source: s1, tenant: t1 }, second: { source: s2, tenant: t2 } });
  } else if ('none' in expected) {
    expect(actual.kind).toBe('none');
    if (actual.kind === 'none') expect(actual.message).toMatch(expected.none);
  } else {
    expect(actual.kind).toBe('config-error');
    if (actual.kind === 'config-error') expect(actual.logDetail).toMatch(expected.configError);
  }
}

describe('findTenantKey', () => {
  it.each(cases)('%s', (_name, p, params, expected) => {
    check(findTenantKey(p, new Map(Object.entries(params))), expected);
  });

  it('optional tenant group that does not participate gives no key from the user', () => {
    const p = policy({ keys: ['user', 'database'], user: { mode: 'pattern', pattern: '^(?:(?<tenant>[a-z]+)-)?x$' } });
    check(findTenantKey(p, new Map([['user', 'x'], ['database', 'acme']])), { key: 'acme', source: 'database' });
    check(findTenantKey(p, new Map([['user', 'globex-x'], ['database', 'globex']])), { key: 'globex', source: 'user' });
  });

  it('the user pattern means what the generator checked: compiled with the u flag ("." is one code point, \\p{L} a letter)', () => {
    const dot = policy({ keys: ['user'], user: { mode: 'pattern', pattern: '^(?<tenant>[a-z]+)-.$' } });
    check(findTenantKey(dot, new Map([['user', 'acme-\u{1F600}']])), { key: 'acme', source: 'user' });
    const letters = policy({ keys: ['user'], user: { mode: 'pattern', pattern: '^\\p{L}+\\.(?<tenant>[a-z]+)$' } });
    check(findTenantKey(letters, new Map([['user', 'jürgen.acme']])), { key: 'acme', source: 'user' });
  });

  it('uses an injected options reader', () => {
    const reader = (o: string): string | undefined => (o === 'T' ? 'umbrella' : undefined);
    check(findTenantKey(ALL, new Map([['user', 'app.acme'], ['options', 'T']]), reader), { key: 'umbrella', source: 'options' });
  });
});

describe('compilePolicy', () => {
  it('compiles once per policy object', () => {
    const p = policy();
    const a = compilePolicy(p);
    const b = compilePolicy(p);
    expect(a).toBe(b);
    expect(a.userPattern).toBeInstanceOf(RegExp);
    expect(compilePolicy(policy())).not.toBe(a);
  });

  it('the compiled pattern keeps no state between connections', () => {
    const p = policy();
    for (let i = 0; i < 3; i++) {
      check(findTenantKey(p, new Map([['user', 'app.acme']])), { key: 'acme', source: 'user' });
    }
    expect(compilePolicy(p).userPattern?.lastIndex).toBe(0);
  });
});

describe('readTenantOption', () => {
  it.each([
    ['-c pgroute.tenant=acme', 'acme'],
    ['-c search_path=a,b', undefined],
    ['-c  pgroute.tenant=a\\ b', 'a b'],
    ['-c statement_timeout=5s --pgroute.tenant=globex', 'globex'],
    ['', undefined],
    ['tenant', undefined],
  ])('%j -> %j', (options, expected) => {
    expect(readTenantOption(options)).toBe(expected);
  });
});
