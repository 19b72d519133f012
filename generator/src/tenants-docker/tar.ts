// The tar archives Docker's archive endpoints speak (PUT/GET /containers/{id}/archive), through
// tar-stream: pgroute only adds what tar-stream leaves to its callers (names that cannot escape the
// extraction root, ids a ustar header cannot hold) and a plain entry type. In memory, no file system.

import type { Pack } from 'tar-stream';

/** tar-stream, loaded at the first archive: the CLI's other commands reach this module's callers' constants only. */
const tarStream = () => import('tar-stream');

/** What tar-stream's pack takes for one entry (its type for it is not exported). */
type EntryHeader = Parameters<Pack['entry']>[0];

export interface TarEntry {
  /** Relative path, "/"-separated, no leading "/"; directories without the trailing "/". */
  readonly name: string;
  readonly type: 'file' | 'dir';
  /** Permission bits (e.g. 0o400). */
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
  /** Seconds since the epoch. */
  readonly mtime: number;
  /** Files only. */
  readonly content?: Uint8Array;
}

/** The largest id a ustar header holds as tar-stream writes it (6 octal digits); larger ones go in a PAX header. */
const USTAR_MAX_ID = 0o777777;
/** uid/gid are 32-bit on Linux. */
const MAX_ID = 2 ** 32 - 1;

function checkEntry(e: TarEntry): void {
  if (e.name === '' || e.name.startsWith('/') || e.name.split('/').some((p) => p === '' || p === '.' || p === '..')) {
    throw new Error(`tar: bad entry name "${e.name}" (a relative path without empty, "." or ".." parts)`);
  }
  for (const [what, id] of [['uid', e.uid], ['gid', e.gid]] as const) {
    if (!Number.isInteger(id) || id < 0 || id > MAX_ID) throw new Error(`tar: ${what} ${id} of "${e.name}" is not an id between 0 and ${MAX_ID}`);
  }
  if (!Number.isInteger(e.mtime) || e.mtime < 0) throw new Error(`tar: mtime ${e.mtime} of "${e.name}" is not a non-negative whole number of seconds`);
}

/** Ids over 6 octal digits: tar-stream would clamp them in the ustar header, so they go in PAX records too. */
function paxIds(e: TarEntry): Record<string, string> | undefined {
  const pax: Record<string, string> = {};
  if (e.uid > USTAR_MAX_ID) pax.uid = String(e.uid);
  if (e.gid > USTAR_MAX_ID) pax.gid = String(e.gid);
  return Object.keys(pax).length === 0 ? undefined : pax;
}

/** An uncompressed tar archive of the entries, in order (ustar; PAX only where ustar cannot say it). */
export async function writeTar(entries: readonly TarEntry[]): Promise<Buffer> {
  entries.forEach(checkEntry);
  const { pack } = await tarStream();
  const archive = pack();
  const chunks: Buffer[] = [];
  const collected = (async () => {
    for await (const chunk of archive) chunks.push(Buffer.from(chunk as Uint8Array));
  })();
  for (const e of entries) {
    const pax = paxIds(e);
    const header: EntryHeader = {
      name: e.type === 'dir' ? `${e.name}/` : e.name, // tar's convention, which tar-stream leaves to us
      type: e.type === 'dir' ? 'directory' : 'file',
      mode: e.mode & 0o7777,
      uid: e.uid,
      gid: e.gid,
      mtime: new Date(e.mtime * 1000),
      ...(pax === undefined ? {} : { pax }),
    };
    await new Promise<void>((resolve, reject) => {
      const done = (err?: Error | null): void => (err ? reject(err) : resolve());
      if (e.type === 'file') archive.entry(header, Buffer.from(e.content ?? new Uint8Array()), done);
      else archive.entry(header, done);
    });
  }
  archive.finalize();
  await collected;
  return Buffer.concat(chunks);
}

function id(pax: unknown, key: 'uid' | 'gid', fallback: number): number {
  const value = (pax as Record<string, string> | null | undefined)?.[key];
  return value !== undefined && /^\d+$/.test(value) ? Number(value) : fallback;
}

/**
 * The regular files and directories of an uncompressed tar archive (ustar, PAX or GNU long names, as
 * Docker's GET /containers/{id}/archive sends), in order; other entries (links, devices) are skipped.
 */
export async function readTar(archive: Uint8Array): Promise<TarEntry[]> {
  const { extract } = await tarStream();
  const reader = extract();
  const entries: TarEntry[] = [];
  reader.end(archive);
  try {
    for await (const entry of reader) {
      const h = entry.header;
      const chunks: Buffer[] = [];
      for await (const chunk of entry) chunks.push(Buffer.from(chunk as Uint8Array));
      const common = {
        name: h.name.replace(/^(\.?\/)+/, '').replace(/\/+$/, ''),
        mode: h.mode & 0o7777,
        uid: id(h.pax, 'uid', h.uid),
        gid: id(h.pax, 'gid', h.gid),
        mtime: Math.floor(h.mtime.getTime() / 1000),
      };
      if (h.type === 'file' || h.type === 'contiguous-file') entries.push({ ...common, type: 'file', content: new Uint8Array(Buffer.concat(chunks)) });
      else if (h.type === 'directory') entries.push({ ...common, type: 'dir' });
    }
  } catch (err) {
    throw err instanceof Error ? new Error(`tar: ${err.message}`, { cause: err }) : err;
  }
  return entries;
}
