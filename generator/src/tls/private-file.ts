// Writing secrets: atomically (temporary file, then rename) and with the final mode from the
// moment the file exists, so no reader ever sees a half-written file or a 0644 key.

import { randomBytes } from 'node:crypto';
import { chmod, mkdir, open, readFile, rename, unlink } from 'node:fs/promises';

/** Creates `dir` (and parents) and makes sure `dir` itself has `mode`, even when it existed. */
export async function ensurePrivateDir(dir: string, mode = 0o700): Promise<void> {
  await mkdir(dir, { recursive: true, mode });
  await chmod(dir, mode);
}

/** Returns true when the file was (re)written, false when it already held this content. */
export async function writePrivateFile(path: string, content: string, mode = 0o600): Promise<boolean> {
  try {
    if ((await readFile(path, 'utf8')) === content) {
      await chmod(path, mode);
      return false;
    }
  } catch {
    // missing or unreadable: write it
  }
  const tmp = `${path}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
  // 'wx': a fresh file, created with `mode` (the umask can only narrow it).
  const handle = await open(tmp, 'wx', mode);
  try {
    await handle.writeFile(content, 'utf8');
    await handle.sync();
  } catch (err) {
    await handle.close().catch(() => undefined);
    await unlink(tmp).catch(() => undefined);
    throw err;
  }
  await handle.close();
  try {
    await rename(tmp, path);
  } catch (err) {
    await unlink(tmp).catch(() => undefined);
    throw err;
  }
  return true;
}

/** The file's text, or undefined when it does not exist. */
export async function readIfExists(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}
