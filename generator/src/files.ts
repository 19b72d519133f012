// Writing rendered files: atomically (write a temporary file, then rename), and only when the
// content changed, so watchers and HAProxy never see a half-written file.

import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';

/** Returns true when the file was (re)written, false when it already held this content. */
export async function writeIfChanged(path: string, content: string, mode = 0o644): Promise<boolean> {
  try {
    if ((await readFile(path, 'utf8')) === content) return false;
  } catch {
    // missing: write it
  }
  await mkdir(dirname(path), { recursive: true, mode: 0o755 });
  const tmp = `${path}.${process.pid}.tmp`;
  await writeFile(tmp, content, { mode });
  await rename(tmp, path);
  return true;
}
