// Writing rendered files: atomically (write a temporary file, then rename), and only when the
// content changed, so watchers and HAProxy never see a half-written file; and putting a set of
// files back as they were before a change that did not take.

import { chmod, mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
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

/** Each file's content, or undefined where there was none. */
export type SavedFiles = ReadonlyMap<string, string | undefined>;

/**
 * Reads the files; one that does not exist is saved as none. Any other failure to read one throws:
 * saved as none, restoreFiles would delete it (the failure that spoils the save, too many open
 * files say, is likely to fail the change it guards as well).
 */
export async function saveFiles(files: readonly string[]): Promise<SavedFiles> {
  const saved = new Map<string, string | undefined>();
  for (const path of files) {
    saved.set(path, await readFile(path, 'utf8').catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return undefined;
      throw err;
    }));
  }
  return saved;
}

/**
 * Writes every saved file back (only where it differs), and removes those that did not exist. One
 * that cannot be put back does not stop the others; then it throws, naming each.
 */
export async function restoreFiles(saved: SavedFiles): Promise<void> {
  const failed: string[] = [];
  for (const [path, content] of saved) {
    try {
      if (content === undefined) await rm(path, { force: true });
      else await writeIfChanged(path, content);
    } catch (err) {
      failed.push(`${path}: ${(err as Error).message}`);
    }
  }
  if (failed.length > 0) throw new Error(failed.join('; '));
}
