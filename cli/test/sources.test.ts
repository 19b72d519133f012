// --source: one or several sources, repeatable or comma-separated (PGROUTE_SOURCE=file,docker).

import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../generator/src/index.js';
import { sourceNames } from '../sources.js';

describe('--source', () => {
  it('takes one, several, repeated or comma-separated', () => {
    expect(sourceNames(['file'])).toEqual(['file']);
    expect(sourceNames('file,kubernetes')).toEqual(['file', 'kubernetes']);
    expect(sourceNames(['docker', 'file, kubernetes'])).toEqual(['docker', 'file', 'kubernetes']);
  });

  it('refuses an unknown source, one named twice, or none, naming the flag', () => {
    expect(() => sourceNames(['file', 'consul'])).toThrow(new ConfigError('--source (PGROUTE_SOURCE): unknown source "consul" (known: file, docker, kubernetes)'));
    expect(() => sourceNames('file,file')).toThrow('--source (PGROUTE_SOURCE): file is named twice');
    expect(() => sourceNames(' , ')).toThrow('--source (PGROUTE_SOURCE): name at least one of file, docker, kubernetes');
  });
});
