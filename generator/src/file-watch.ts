// Watching one file for changes: the directory is watched (editors write a new file and rename it
// over the old one), with a stat poll behind the watcher for file systems where events never come.

import { watch, type FSWatcher } from 'node:fs';
import { stat } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import type { Logger } from 'pino';

export interface FileWatch {
  stop(): void;
}

/** Calls `onChange` (debounced) whenever the file at `path` may have changed, appeared or gone. */
export async function watchFile(path: string, onChange: () => void, log: Logger, pollMs = 1_000): Promise<FileWatch> {
  let stamp = await statStamp(path);
  let debounce: NodeJS.Timeout | undefined;
  let stopped = false;
  const changed = (): void => {
    clearTimeout(debounce);
    debounce = setTimeout(() => {
      if (stopped) return;
      void statStamp(path).then((s) => {
        stamp = s;
        onChange();
      });
    }, 25);
  };
  let watcher: FSWatcher | undefined;
  try {
    watcher = watch(dirname(path), (_event, name) => {
      if (name === null || name === basename(path)) changed();
    });
    watcher.on('error', (err) => log.warn({ err: err.message, path }, 'file watch failed; polling only'));
  } catch (err) {
    log.warn({ err: (err as Error).message, path }, 'cannot watch the file; polling only');
  }
  const poll = setInterval(() => {
    void statStamp(path).then((s) => {
      if (s !== stamp) changed();
    });
  }, pollMs);
  poll.unref();
  return {
    stop() {
      stopped = true;
      watcher?.close();
      clearInterval(poll);
      clearTimeout(debounce);
    },
  };
}

async function statStamp(path: string): Promise<string> {
  try {
    const s = await stat(path);
    return `${s.mtimeMs}:${s.size}:${s.ino}`;
  } catch {
    return 'missing';
  }
}
