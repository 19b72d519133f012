// Saving a generation's files before a change and putting them back after a failed one.

import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { restoreFiles, saveFiles } from '../src/files.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'pgroute-files-test-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('saveFiles / restoreFiles', () => {
  it('puts back what was there and removes what was not', async () => {
    const kept = join(dir, 'kept.cfg');
    const absent = join(dir, 'absent.map');
    await writeFile(kept, 'old\n');
    const saved = await saveFiles([kept, absent]);
    await writeFile(kept, 'new\n');
    await writeFile(absent, 'new\n');
    await restoreFiles(saved);
    expect(await readFile(kept, 'utf8')).toBe('old\n');
    expect(existsSync(absent)).toBe(false);
  });

  it('refuses to save a file it cannot read (never saved as absent, which a restore would delete)', async () => {
    const unreadable = join(dir, 'layout.json');
    await mkdir(unreadable);
    await expect(saveFiles([unreadable])).rejects.toThrow(/EISDIR/);
  });

  it('puts back every file it can, then names those it could not', async () => {
    const a = join(dir, 'a.cfg');
    const stuck = join(dir, 'stuck');
    const b = join(dir, 'b.map');
    await writeFile(a, 'a\n');
    await writeFile(b, 'b\n');
    const saved = new Map([[a, 'a0\n'], [stuck, undefined], [b, 'b0\n']]);
    await mkdir(stuck);
    await writeFile(join(stuck, 'x'), 'x');
    await expect(restoreFiles(saved)).rejects.toThrow(stuck);
    expect(await readFile(a, 'utf8')).toBe('a0\n');
    expect(await readFile(b, 'utf8')).toBe('b0\n');
  });
});
