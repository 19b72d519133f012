// pgroute's own generator, loaded at run time from the snapshot run.sh took of dist/
// (BENCH_PGROUTE_ROOT), so the benchmark times exactly the code it starts as `pgroute up`. The
// snapshot is the build of the same generator/src/index.ts the benchmark is type-checked against
// (bench/tsconfig.json compiles bench/ with the sources it imports).

import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type * as Generator from '../../generator/src/index.js';

export type PgrouteModules = typeof Generator;
export type { Layout, ProcStatus, Settings } from '../../generator/src/index.js';

/** Imports the generator of the pgroute tree at `root` (a snapshot with dist/ and haproxy/) through its index. */
export async function loadPgroute(root: string): Promise<PgrouteModules> {
  const index = join(root, 'dist/generator/src/index.js');
  try {
    return (await import(pathToFileURL(index).href)) as PgrouteModules;
  } catch (err) {
    throw new Error(`cannot load pgroute's generator from ${index} (built from a tree without generator/src/index.ts?): ${(err as Error).message}`);
  }
}
