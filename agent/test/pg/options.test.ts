import { describe, expect, it } from 'vitest';

import {
  analyzeStartupOptions,
  parseStartupOptions,
  splitStartupOptions,
  TENANT_OPTION,
} from '../../src/pg/options.js';

const settings = (options: string): Array<[string, string]> => [...parseStartupOptions(options)];
const problemKinds = (options: string): string[] => analyzeStartupOptions(options).problems.map((p) => p.kind);

describe('splitStartupOptions (pg_split_opts)', () => {
  it.each<[string, string[]]>([
    ['', []],
    ['   ', []],
    ['-c a=b', ['-c', 'a=b']],
    ['  -c\ta=b \n --x=y  ', ['-c', 'a=b', '--x=y']],
    ['\v-ca=b\f\r', ['-ca=b']],
    ['-c a=two\\ words', ['-c', 'a=two words']],
    ['-c a=back\\\\slash', ['-c', 'a=back\\slash']],
    ['-c a=\\x\\y', ['-c', 'a=xy']], // any escaped character is itself
    ['-c a=end\\', ['-c', 'a=end']], // a lone trailing backslash vanishes
    ['-c a=\\\\ b', ['-c', 'a=\\', 'b']], // an escaped backslash does not escape the space
    ['-c a=x\\\t', ['-c', 'a=x\t']],
    ['-c a=ünï\\ cødé', ['-c', 'a=ünï cødé']],
    ['-c a=\u00a0b', ['-c', 'a=\u00a0b']], // only ASCII whitespace separates (C isspace)
  ])('%j -> %j', (input, words) => {
    expect(splitStartupOptions(input)).toEqual(words);
  });
});

describe('parseStartupOptions', () => {
  it('reads what psql sends for options=\'-c pgroute.tenant=acme\'', () => {
    expect(parseStartupOptions('-c pgroute.tenant=acme').get(TENANT_OPTION)).toBe('acme');
  });

  it('accepts -c name=value, -cname=value and --name=value', () => {
    expect(settings('-c a=1 -cb=2 --c=3')).toEqual([
      ['a', '1'],
      ['b', '2'],
      ['c', '3'],
    ]);
  });

  it('lower-cases names (ASCII only, like guc_name_compare) and keeps values as sent', () => {
    expect(settings('-c PgRoute.Tenant=AcMe')).toEqual([['pgroute.tenant', 'AcMe']]);
    expect(settings('-c Ä=1')).toEqual([['Ä', '1']]);
  });

  it('turns - into _ in names only (ParseLongOption)', () => {
    expect(settings('--statement-timeout=5-min -c search-path=a-b')).toEqual([
      ['statement_timeout', '5-min'],
      ['search_path', 'a-b'],
    ]);
  });

  it('splits at the first = only', () => {
    expect(settings('-c a=b=c --x==')).toEqual([
      ['a', 'b=c'],
      ['x', '='],
    ]);
  });

  it('allows an empty value', () => {
    expect(settings('-c search_path=')).toEqual([['search_path', '']]);
  });

  it('reads escaped spaces and backslashes inside values', () => {
    expect(parseStartupOptions('-c application_name=my\\ app -c x=C:\\\\dir').get('application_name')).toBe(
      'my app',
    );
    expect(parseStartupOptions('-c x=C:\\\\dir').get('x')).toBe('C:\\dir');
  });

  it('takes the word after -c whatever it looks like, as getopt does', () => {
    expect(settings('-c --a=b')).toEqual([['__a', 'b']]);
  });

  it('lets the last of a repeated setting win, and says so', () => {
    const result = analyzeStartupOptions('-c pgroute.tenant=a -c PGROUTE.TENANT=b');
    expect([...result.settings]).toEqual([['pgroute.tenant', 'b']]);
    expect(result.problems).toEqual([
      {
        kind: 'duplicate-setting',
        argument: '-c PGROUTE.TENANT=b',
        message: 'options: pgroute.tenant is set more than once; the last value is used',
      },
    ]);
  });

  it('reports no problems for a well-formed string', () => {
    expect(analyzeStartupOptions('  -c a=1  --b=2 -cc=3 ').problems).toEqual([]);
  });
});

describe('analyzeStartupOptions: malformations as values', () => {
  it('missing-argument: -c at the end', () => {
    const result = analyzeStartupOptions('-c a=1 -c');
    expect([...result.settings]).toEqual([['a', '1']]);
    expect(result.problems).toMatchObject([{ kind: 'missing-argument', argument: '-c' }]);
  });

  it('missing-value: no = (PostgreSQL: "-c x requires a value")', () => {
    const result = analyzeStartupOptions('-c pgroute.tenant --flag -cname');
    expect(result.settings.size).toBe(0);
    expect(result.problems.map((p) => [p.kind, p.argument])).toEqual([
      ['missing-value', '-c pgroute.tenant'],
      ['missing-value', '--flag'],
      ['missing-value', '-cname'],
    ]);
    expect(result.problems[0]?.message).toBe(
      'options: -c pgroute.tenant requires a value; write -c pgroute.tenant=<value>',
    );
  });

  it('empty-name', () => {
    expect(problemKinds('-c =x --=y')).toEqual(['empty-name', 'empty-name']);
  });

  it('unsupported-switch: other backend switches are not read as settings', () => {
    const result = analyzeStartupOptions('-B 64 -e -c a=1');
    expect(result.problems.map((p) => [p.kind, p.argument])).toEqual([
      ['unsupported-switch', '-B'],
      ['unexpected-argument', '64'],
      ['unsupported-switch', '-e'],
    ]);
    expect([...result.settings]).toEqual([['a', '1']]);
  });

  it('unexpected-argument: bare words, a lone -, and anything after --', () => {
    expect(problemKinds('acme - -- -c a=1')).toEqual([
      'unexpected-argument',
      'unexpected-argument',
      'unexpected-argument',
      'unexpected-argument',
    ]);
    expect(parseStartupOptions('-- -c a=1').size).toBe(0);
  });

  it('an escaped space does not start a new word, so "-c\\ a=b" is one switch', () => {
    expect(settings('-c\\ a=b')).toEqual([[' a', 'b']]);
  });

  it('never throws on odd input', () => {
    for (const odd of ['\\', '\\\\\\', '-', '--', '-c', '-c -c', '=', '\0', '-c \0=\0', '\uD800']) {
      expect(() => analyzeStartupOptions(odd)).not.toThrow();
    }
  });
});
