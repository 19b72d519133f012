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
// No Docker calls here (cli/tenant.ts does them): the owner lookup and the archive itself (tar.ts writes
// it, through tar-stream).

import { writeTar } from './tar.js';

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

// ---- the password archive ---------------------------------------------------------------------

/**
 * The archive to upload at "/" of the created container: run/pgroute/ (0700) and
 * run/pgroute/postgres-password (0400, the password without a newline), both owned by `owner`.
 * Docker creates a missing /run (root, 0755) and keeps the owners and modes of the entries.
 */
export async function passwordArchive(password: string, owner: Owner, mtimeSec: number): Promise<Buffer> {
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
