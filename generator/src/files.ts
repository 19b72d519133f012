// Writing rendered files: atomically (write a temporary file, then rename), and only when the
// content changed, so watchers and HAProxy never see a half-written file.

import { chmod, mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';

/**
 * Returns true when the file was (re)written, false when it already held this content. Rendered
 * files name every tenant's address: readable by pgroute's user and group (HAProxy's), not by all.
 */
export async function writeIfChanged(path: string, content: string, mode = 0o640): Promise<boolean> {
  try {
    if ((await readFile(path, 'utf8')) === content) {
      await chmod(path, mode); // a file an older pgroute left world-readable
      return false;
    }
  } catch {
    // missing: write it
  }
  await mkdir(dirname(path), { recursive: true, mode: 0o755 });
  const tmp = `${path}.${process.pid}.tmp`;
  await writeFile(tmp, content, { mode });
  await rename(tmp, path);
  return true;
}
