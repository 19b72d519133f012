/**
 * Local Docker images for tests. No registry is reachable, so nothing is pulled: images are made
 * from the host's own files and `docker import`ed.
 *
 * `pgroute-test/postgres:15` holds the host's PostgreSQL 15 (/usr/lib/postgresql/15 without the
 * LLVM JIT, /usr/share/postgresql/15), every shared library those binaries need (found with ldd), a
 * static busybox as /bin/sh, a passwd/group with the user postgres, and an entrypoint that runs
 * initdb (trust auth, listen on *) and then `postgres` as the user postgres. Environment:
 *   CLUSTER_NAME       cluster_name of the server (SHOW cluster_name), default "postgres"
 *   PGPORT             port inside the container, default 5432
 *   POSTGRES_PASSWORD  like the official image: at the first start (initdb) the user postgres gets
 *                      this password and connections over the network need it (scram-sha-256);
 *                      local (unix socket) connections stay trust. Unset: trust everywhere.
 *   POSTGRES_PASSWORD_FILE  like the official image's *_FILE variant: the password is the content of
 *                      this file (trailing newlines dropped); read at every start, an error when
 *                      unreadable or when POSTGRES_PASSWORD is set too. `pgroute tenant create` uses
 *                      it (the file is uploaded into the container, owned by postgres, mode 0400).
 * PGDATA (/var/lib/postgresql/data) exists in the image, owned by postgres, so a named volume
 * mounted there starts with the right owner (Docker copies it into an empty volume).
 * A container is ready for connections in about 1-2 s.
 *
 * The image carries a label with a hash of its inputs (file list with sizes and mtimes, the
 * entrypoint, the format version); ensurePostgresImage() rebuilds only when the hash differs.
 */
import { createHash } from 'node:crypto';
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ensureDocker } from './docker.js';

export const POSTGRES_IMAGE = 'pgroute-test/postgres:15';
/** Image label holding the input hash. Deliberately not under `pgroute.`: containers inherit it. */
export const IMAGE_HASH_LABEL = 'org.pgroute.test.image-hash';
/** Bump when the layout of the image changes without its inputs changing. */
const IMAGE_FORMAT = 2;

const PG_MAJOR = 15;
const PG_LIB = `/usr/lib/postgresql/${PG_MAJOR}`;
const PG_SHARE = `/usr/share/postgresql/${PG_MAJOR}`;
const BUSYBOX = '/bin/busybox';
const POSTGRES_UID = 70;

const ENTRYPOINT = `#!/bin/sh
# pgroute test image: initdb on first start, then postgres in the foreground as PID 1.
set -e
PGDATA=\${PGDATA:-/var/lib/postgresql/data}
BIN=${PG_LIB}/bin
# POSTGRES_PASSWORD_FILE, as the official image's file_env: the file's content ($(...) drops trailing newlines).
if [ -n "\${POSTGRES_PASSWORD_FILE:-}" ]; then
  if [ -n "\${POSTGRES_PASSWORD:-}" ]; then
    echo "error: both POSTGRES_PASSWORD and POSTGRES_PASSWORD_FILE are set (but are exclusive)" >&2
    exit 1
  fi
  POSTGRES_PASSWORD=$(cat "$POSTGRES_PASSWORD_FILE") || { echo "error: cannot read POSTGRES_PASSWORD_FILE $POSTGRES_PASSWORD_FILE" >&2; exit 1; }
fi
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  AUTH=trust
  PWOPT=
  if [ -n "\${POSTGRES_PASSWORD:-}" ]; then
    AUTH=scram-sha-256
    (umask 077; printf '%s\n' "$POSTGRES_PASSWORD" > /tmp/pwfile)
    PWOPT=--pwfile=/tmp/pwfile
  fi
  "$BIN/initdb" -D "$PGDATA" --auth-local=trust --auth-host=$AUTH $PWOPT --username=postgres -E UTF8 --locale=C --no-sync --no-instructions >/tmp/initdb.log 2>&1 || { rm -f /tmp/pwfile; cat /tmp/initdb.log >&2; exit 1; }
  rm -f /tmp/pwfile
  echo "host all all 0.0.0.0/0 $AUTH" >> "$PGDATA/pg_hba.conf"
  echo "host all all ::/0 $AUTH" >> "$PGDATA/pg_hba.conf"
fi
unset POSTGRES_PASSWORD POSTGRES_PASSWORD_FILE
exec "$BIN/postgres" -D "$PGDATA" -c listen_addresses='*' -c port="\${PGPORT:-5432}" \\
  -c cluster_name="\${CLUSTER_NAME:-postgres}" -c fsync=off -c synchronous_commit=off -c full_page_writes=off \\
  -c unix_socket_directories=/tmp -c jit=off -c logging_collector=off
`;

/** Files of the image: [path inside the image (= path on the host)], directories walked. */
function imageFiles(): string[] {
  const files: string[] = [];
  const walk = (dir: string): void => {
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, entry.name);
      if (entry.name.startsWith('llvmjit') || p === `${PG_LIB}/lib/bitcode`) continue; // 120 MB of JIT nobody needs here
      if (entry.isDirectory()) walk(p);
      else files.push(p);
    }
  };
  walk(PG_LIB);
  walk(PG_SHARE);
  const libs = new Set<string>();
  const elves = files.filter((f) => f.startsWith(PG_LIB) && (f.endsWith('.so') || (fs.statSync(f).mode & 0o111) !== 0));
  // ldd takes many files at once; unknown/non-ELF files only print a complaint.
  const out = spawnSync('ldd', elves, { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 }).stdout;
  for (const line of out.split('\n')) {
    const m = /=>\s+(\/\S+)/.exec(line) ?? /^\s+(\/\S+)\s+\(0x/.exec(line);
    if (m?.[1] !== undefined) libs.add(m[1]);
  }
  // Time zone data: postgres uses the system's (Debian builds --with-system-tzdata).
  for (const tz of ['UTC', 'Etc/UTC', 'GMT', 'Etc/GMT']) {
    const p = `/usr/share/zoneinfo/${tz}`;
    if (fs.existsSync(p)) libs.add(p);
  }
  return [...files, ...[...libs].sort()];
}

function inputHash(files: readonly string[]): string {
  const h = createHash('sha256');
  h.update(`format ${IMAGE_FORMAT}\n${ENTRYPOINT}\n`);
  for (const f of [...files, BUSYBOX]) {
    const st = fs.statSync(f);
    h.update(`${f} ${st.size} ${st.mtimeMs}\n`);
  }
  return h.digest('hex').slice(0, 16);
}

/** The input-hash label of a local image, or undefined when there is no such image. */
export function imageHash(image: string): string | undefined {
  const r = spawnSync('docker', ['image', 'inspect', '--format', `{{ index .Config.Labels "${IMAGE_HASH_LABEL}" }}`, image], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : undefined;
}

/** Static busybox, the shell of every locally built test image. */
export function ensureBusybox(): void {
  if (fs.existsSync(BUSYBOX) && /static/.test(spawnSync('file', ['-L', BUSYBOX], { encoding: 'utf8' }).stdout ?? 'static')) return;
  if (!fs.existsSync(BUSYBOX)) {
    execFileSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', 'busybox-static'], {
      stdio: 'inherit',
      env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
    });
  }
  if (!fs.existsSync(BUSYBOX)) throw new Error(`${BUSYBOX} is missing after apt-get install busybox-static; run scripts/setup.sh`);
}

/** Builds pgroute-test/postgres:15 unless an image with the same input hash exists. Returns its name. */
export async function ensurePostgresImage(): Promise<string> {
  await ensureDocker();
  if (!fs.existsSync(`${PG_LIB}/bin/postgres`)) throw new Error(`${PG_LIB}/bin/postgres is missing; run scripts/setup.sh (PostgreSQL ${PG_MAJOR})`);
  ensureBusybox();
  const files = imageFiles();
  const hash = inputHash(files);
  if (imageHash(POSTGRES_IMAGE) === hash) return POSTGRES_IMAGE;

  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'pgroute-image-'));
  try {
    // Debian's merged /usr: /lib, /lib64, /bin, /sbin are links into /usr, so every path ldd names resolves.
    for (const d of ['usr/lib', 'usr/lib64', 'usr/bin', 'usr/sbin', 'etc', 'tmp', 'var/lib/postgresql/data', 'var/run/postgresql']) {
      fs.mkdirSync(path.join(root, d), { recursive: true });
    }
    for (const d of ['lib', 'lib64', 'bin', 'sbin']) fs.symlinkSync(`usr/${d}`, path.join(root, d));
    for (const f of files) {
      const dest = path.join(root, f);
      fs.mkdirSync(path.dirname(dest), { recursive: true });
      fs.copyFileSync(fs.realpathSync(f), dest); // the soname path ldd printed, with the real file's content
      fs.chmodSync(dest, fs.statSync(f).mode & 0o7777);
    }
    fs.copyFileSync(BUSYBOX, path.join(root, 'usr/bin/busybox'));
    fs.chmodSync(path.join(root, 'usr/bin/busybox'), 0o755);
    const applets = execFileSync(BUSYBOX, ['--list'], { encoding: 'utf8' }).split('\n').filter((a) => /^[a-z0-9_.[-]+$/.test(a) && a !== 'busybox');
    for (const a of applets) {
      const link = path.join(root, 'usr/bin', a);
      if (!fs.existsSync(link)) fs.symlinkSync('busybox', link);
    }
    fs.writeFileSync(path.join(root, 'etc/passwd'), `root:x:0:0:root:/root:/bin/sh\npostgres:x:${POSTGRES_UID}:${POSTGRES_UID}:PostgreSQL:/var/lib/postgresql:/bin/sh\n`);
    fs.writeFileSync(path.join(root, 'etc/group'), `root:x:0:\npostgres:x:${POSTGRES_UID}:\n`);
    fs.writeFileSync(path.join(root, 'etc/nsswitch.conf'), 'passwd: files\ngroup: files\nhosts: files\n');
    fs.writeFileSync(path.join(root, 'entrypoint.sh'), ENTRYPOINT, { mode: 0o755 });
    fs.chmodSync(path.join(root, 'tmp'), 0o1777);
    const tarball = `${root}.tar`;
    // Owner postgres for its directories; everything else root.
    execFileSync('tar', ['-C', root, '--numeric-owner', '--owner=0', '--group=0', '-cf', tarball, '--exclude=./var/lib/postgresql', '--exclude=./var/run/postgresql', '.']);
    execFileSync('tar', ['-C', root, '--numeric-owner', `--owner=${POSTGRES_UID}`, `--group=${POSTGRES_UID}`, '-rf', tarball, './var/lib/postgresql', './var/run/postgresql']);
    try {
      execFileSync(
        'docker',
        [
          'import',
          '--change', 'ENTRYPOINT ["/entrypoint.sh"]',
          '--change', 'USER postgres',
          '--change', 'ENV PGDATA=/var/lib/postgresql/data TZ=UTC PATH=/usr/lib/postgresql/15/bin:/usr/bin:/bin',
          '--change', 'EXPOSE 5432',
          '--change', `LABEL ${IMAGE_HASH_LABEL}=${hash}`,
          tarball,
          POSTGRES_IMAGE,
        ],
        { stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8' },
      );
    } catch (err) {
      throw new Error(`docker import of ${POSTGRES_IMAGE} failed: ${String((err as { stderr?: unknown }).stderr ?? err).trim()}`);
    } finally {
      fs.rmSync(tarball, { force: true });
    }
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
  if (imageHash(POSTGRES_IMAGE) !== hash) throw new Error(`docker import of ${POSTGRES_IMAGE} did not produce an image labelled ${IMAGE_HASH_LABEL}=${hash}`);
  return POSTGRES_IMAGE;
}
