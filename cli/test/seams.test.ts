// The package seams (README "Layout"): the CLI and the benchmarks import pgroute's packages only
// through their index files, and the generator imports the agent only through the agent's index.
// Reads the import specifiers of the sources, static and dynamic.

import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = resolve(import.meta.dirname, '..', '..');
const INDEXES = new Set(['agent/src/index.ts', 'generator/src/index.ts']);
/** The agent's surface for tests and benchmarks (the SPOP directions only a peer playing HAProxy needs). */
const TESTING_INDEX = 'agent/src/spop/testing/index.ts';
/** The test support the benchmarks share (bench/storm.sh's PgBouncer). */
const SHARED_TEST_SUPPORT = 'test/support/pgbouncer.ts';

function sources(dir: string): string[] {
  return readdirSync(join(ROOT, dir), { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && e.name.endsWith('.ts') && !e.name.endsWith('.test.ts'))
    .map((e) => relative(ROOT, join(e.parentPath, e.name)))
    .filter((f) => !f.split('/').includes('test'));
}

/** Repository-relative .ts paths of the relative imports of `file`. */
function importsOf(file: string): string[] {
  const text = readFileSync(join(ROOT, file), 'utf8');
  const specs = [...text.matchAll(/(?:from\s+|import\s*\(\s*)'(\.{1,2}\/[^']+)'/g)].map((m) => m[1] as string);
  return specs.map((s) => relative(ROOT, resolve(ROOT, dirname(file), s)).replace(/\.js$/, '.ts'));
}

/** Imports of files under `dirs` that leave their own package (`home`) for something other than an index. */
function crossings(dirs: readonly string[], home: (file: string) => string, allowed: ReadonlySet<string> = INDEXES): string[] {
  const bad: string[] = [];
  for (const file of dirs.flatMap(sources)) {
    for (const target of importsOf(file)) {
      if (target.startsWith(home(file)) || allowed.has(target)) continue;
      bad.push(`${file} -> ${target}`);
    }
  }
  return bad;
}

describe('package seams', () => {
  it('the CLI imports agent and generator only through their index files', () => {
    expect(crossings(['cli'], () => 'cli/')).toEqual([]);
  });

  it('the benchmarks import pgroute only through the index files', () => {
    expect(crossings(['bench/src'], () => 'bench/', new Set([...INDEXES, TESTING_INDEX, SHARED_TEST_SUPPORT]))).toEqual([]);
  });

  it('the generator imports the agent only through its index', () => {
    expect(crossings(['generator/src'], () => 'generator/src/')).toEqual([]);
  });

  it('the agent imports nothing of the generator or the CLI', () => {
    expect(crossings(['agent/src'], () => 'agent/src/')).toEqual([]);
  });

  it('finds the imports it checks (a broken scan would pass everything)', () => {
    expect(importsOf('cli/pgroute.ts')).toContain('generator/src/index.ts');
    expect(importsOf('generator/src/apply.ts')).toContain('agent/src/index.ts');
  });
});
