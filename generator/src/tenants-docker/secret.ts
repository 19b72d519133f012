// How `pgroute tenant create` hands the password of the user postgres to the tenant container without
// putting it in the container's configuration (Env, labels, command: all readable with `docker
// inspect`, and kept for the container's lifetime) and without a host bind mount (pgroute may run in
// a container itself, so its paths are not the daemon's):
//
//   1. the container is created, not started, with POSTGRES_PASSWORD_FILE=/run/pgroute/postgres-password;
//   2. the password goes into the container's filesystem as a tar archive uploaded over the Docker API
//      (PUT /containers/{id}/archive, dockerode's container.putArchive): /run/pgroute (0700) and
//      /run/pgroute/postgres-password (0400), both owned by the image's postgres user;
//   3. the container starts; the entrypoint (the official image's, or pgroute's test image's) reads the
//      file for initdb.
//
// The owner is found in the created container's own /etc/passwd (GET /containers/{id}/archive):
// the official Debian image's postgres is 999, its Alpine variant's and pgroute's test image's 70.
//
// Pure: a tiny ustar writer and reader (what Docker's archive endpoints speak), the owner lookup and
// the archive itself. No Docker calls here (cli/tenant.ts does them).

/** Directory of pgroute's secrets inside a tenant container. */
export const SECRET_DIR = '/run/pgroute';
/** The password file inside a tenant container (POSTGRES_PASSWORD_FILE). */
export const PASSWORD_FILE = `${SECRET_DIR}/postgres-password`;
/** The official postgres image's (Debian) user postgres: the owner when the image names none. */
export const DEFAULT_POSTGRES_OWNER: Owner = { uid: 999, gid: 999 };
/** /etc/passwd larger than this is not read (it is not a passwd file). */
export const MAX_PASSWD_BYTES = 1024 * 1024;

export interface Owner {
  readonly uid: number;
  readonly gid: number;
}

/** Throws unless the password is usable: at least 16 characters, no blank, no NUL. */
export function checkPassword(password: string): string {
  if (password.length < 16 || /[\s\0]/.test(password)) throw new Error('refusing a short or blank-containing password');
  return password;
}

// ---- tar --------------------------------------------------------------------------------------

const BLOCK = 512;

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

/** One numeric header field: octal digits, zero-padded, NUL-terminated (width includes the NUL). */
function octal(value: number, width: number): string {
  if (!Number.isInteger(value) || value < 0) throw new Error(`tar: ${value} is not a non-negative integer`);
  const s = value.toString(8);
  if (s.length > width - 1) throw new Error(`tar: ${value} does not fit in ${width - 1} octal digits`);
  return `${s.padStart(width - 1, '0')}\0`;
}

function put(header: Buffer, offset: number, width: number, text: string): void {
  const bytes = Buffer.from(text, 'utf8');
  if (bytes.length > width) throw new Error(`tar: "${text}" is longer than ${width} bytes`);
  bytes.copy(header, offset);
}

function checksum(header: Buffer): number {
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : (header[i] as number);
  return sum;
}

function header(e: TarEntry, size: number): Buffer {
  if (e.name === '' || e.name.startsWith('/') || e.name.split('/').some((p) => p === '' || p === '.' || p === '..')) throw new Error(`tar: bad entry name "${e.name}"`);
  const name = e.type === 'dir' ? `${e.name}/` : e.name;
  const h = Buffer.alloc(BLOCK);
  put(h, 0, 100, name); // names up to 100 bytes: no prefix field, no PAX
  put(h, 100, 8, octal(e.mode & 0o7777, 8));
  put(h, 108, 8, octal(e.uid, 8));
  put(h, 116, 8, octal(e.gid, 8));
  put(h, 124, 12, octal(size, 12));
  put(h, 136, 12, octal(Math.floor(e.mtime), 12));
  h[156] = (e.type === 'dir' ? '5' : '0').charCodeAt(0);
  put(h, 257, 6, 'ustar\0');
  put(h, 263, 2, '00');
  put(h, 148, 8, `${checksum(h).toString(8).padStart(6, '0')}\0 `);
  return h;
}

/** An uncompressed ustar archive of the entries, in order, with the two zero blocks at the end. */
export function writeTar(entries: readonly TarEntry[]): Buffer {
  const parts: Buffer[] = [];
  for (const e of entries) {
    const content = e.type === 'file' ? Buffer.from(e.content ?? new Uint8Array()) : Buffer.alloc(0);
    parts.push(header(e, content.length), content, Buffer.alloc((BLOCK - (content.length % BLOCK)) % BLOCK));
  }
  parts.push(Buffer.alloc(2 * BLOCK));
  return Buffer.concat(parts);
}

function field(h: Buffer, offset: number, width: number): string {
  const raw = h.subarray(offset, offset + width);
  const end = raw.indexOf(0);
  return raw.subarray(0, end === -1 ? width : end).toString('utf8');
}

function numeric(h: Buffer, offset: number, width: number): number {
  if (((h[offset] as number) & 0x80) !== 0) throw new Error('tar: base-256 numeric fields are not supported');
  const text = field(h, offset, width).trim();
  if (text === '') return 0;
  if (!/^[0-7]+$/.test(text)) throw new Error(`tar: bad numeric field "${text}"`);
  return parseInt(text, 8);
}

/** PAX extended header records ("<len> <key>=<value>\n"...). */
function paxRecords(data: Buffer): Map<string, string> {
  const records = new Map<string, string>();
  let pos = 0;
  while (pos < data.length) {
    const space = data.indexOf(0x20, pos);
    if (space === -1) break;
    const len = parseInt(data.subarray(pos, space).toString('ascii'), 10);
    if (!Number.isInteger(len) || len <= 0 || pos + len > data.length) throw new Error('tar: bad PAX record');
    const record = data.subarray(space + 1, pos + len - 1).toString('utf8');
    const eq = record.indexOf('=');
    if (eq > 0) records.set(record.slice(0, eq), record.slice(eq + 1));
    pos += len;
  }
  return records;
}

/**
 * The regular files and directories of an uncompressed tar archive (ustar, PAX or GNU long names, as
 * Docker's GET /containers/{id}/archive sends), in order; other entries (links, devices) are skipped.
 */
export function readTar(archive: Uint8Array): TarEntry[] {
  const buf = Buffer.from(archive.buffer, archive.byteOffset, archive.byteLength);
  const entries: TarEntry[] = [];
  let pos = 0;
  let pax = new Map<string, string>();
  let longName: string | undefined;
  for (;;) {
    if (pos + BLOCK > buf.length) throw new Error('tar: the archive is truncated (no end-of-archive block)');
    const h = buf.subarray(pos, pos + BLOCK);
    if (h.every((b) => b === 0)) break;
    if (numeric(h, 148, 8) !== checksum(h)) throw new Error(`tar: bad header checksum at offset ${pos}`);
    const type = String.fromCharCode(h[156] as number);
    const sizeText = pax.get('size');
    const size = sizeText !== undefined && type !== 'x' && type !== 'g' && type !== 'L' ? Number(sizeText) : numeric(h, 124, 12);
    const start = pos + BLOCK;
    if (!Number.isSafeInteger(size) || start + size > buf.length) throw new Error(`tar: entry at offset ${pos} runs past the end of the archive`);
    const data = buf.subarray(start, start + size);
    pos = start + Math.ceil(size / BLOCK) * BLOCK;
    if (type === 'x') {
      pax = paxRecords(data);
      continue;
    }
    if (type === 'g') continue;
    if (type === 'L') {
      longName = field(data, 0, data.length);
      continue;
    }
    const prefix = field(h, 257, 6) === 'ustar' ? field(h, 345, 155) : '';
    const name = (pax.get('path') ?? longName ?? (prefix === '' ? field(h, 0, 100) : `${prefix}/${field(h, 0, 100)}`)).replace(/^(\.?\/)+/, '').replace(/\/+$/, '');
    const common = { name, mode: numeric(h, 100, 8) & 0o7777, uid: numeric(h, 108, 8), gid: numeric(h, 116, 8), mtime: numeric(h, 136, 12) };
    if (type === '0' || type === '\0' || type === '7') entries.push({ ...common, type: 'file', content: new Uint8Array(data) });
    else if (type === '5') entries.push({ ...common, type: 'dir' });
    pax = new Map();
    longName = undefined;
  }
  return entries;
}

// ---- the password archive ---------------------------------------------------------------------

/**
 * The archive to upload at "/" of the created container: run/pgroute/ (0700) and
 * run/pgroute/postgres-password (0400, the password without a newline), both owned by `owner`.
 * Docker creates a missing /run (root, 0755) and keeps the owners and modes of the entries.
 */
export function passwordArchive(password: string, owner: Owner, mtimeSec: number): Buffer {
  checkPassword(password);
  const dir = SECRET_DIR.replace(/^\//, '');
  const file = PASSWORD_FILE.replace(/^\//, '');
  return writeTar([
    { name: dir, type: 'dir', mode: 0o700, uid: owner.uid, gid: owner.gid, mtime: mtimeSec },
    { name: file, type: 'file', mode: 0o400, uid: owner.uid, gid: owner.gid, mtime: mtimeSec, content: Buffer.from(password, 'utf8') },
  ]);
}

/** uid and gid of a user in an /etc/passwd text; undefined when it is not there. */
export function passwdEntry(passwd: string, user: string): Owner | undefined {
  for (const line of passwd.split('\n')) {
    const f = line.trim().split(':');
    if (f.length >= 4 && f[0] === user && /^\d+$/.test(f[2] ?? '') && /^\d+$/.test(f[3] ?? '')) return { uid: Number(f[2]), gid: Number(f[3]) };
  }
  return undefined;
}

/**
 * Who must own the password file: the user the image runs as (Config.User) when that is not root,
 * else the image's user postgres (the official entrypoint starts as root, reads the file and then
 * drops to postgres), else 999:999 (the official Debian image). `passwd` is the container's
 * /etc/passwd, when readable.
 */
export function secretOwner(configUser: string | undefined, passwd: string | undefined): Owner {
  const [user = '', group] = (configUser ?? '').split(':');
  const byName = (name: string): Owner | undefined => (passwd === undefined ? undefined : passwdEntry(passwd, name));
  if (user !== '' && user !== 'root' && user !== '0') {
    const u = /^\d+$/.test(user) ? { uid: Number(user), gid: passwdGid(passwd, Number(user)) ?? Number(user) } : byName(user);
    if (u !== undefined) return group !== undefined && /^\d+$/.test(group) ? { uid: u.uid, gid: Number(group) } : u;
  }
  return byName('postgres') ?? DEFAULT_POSTGRES_OWNER;
}

function passwdGid(passwd: string | undefined, uid: number): number | undefined {
  for (const line of (passwd ?? '').split('\n')) {
    const f = line.trim().split(':');
    if (f.length >= 4 && f[2] === String(uid) && /^\d+$/.test(f[3] ?? '')) return Number(f[3]);
  }
  return undefined;
}
