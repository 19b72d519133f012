/**
 * Local stand-ins for the public base images of pgroute's own images. No registry is reachable,
 * so `haproxy:2.6` and `node:20-bookworm-slim` cannot be pulled; these are made from the host's
 * (Debian bookworm) binaries and `docker import`ed, and passed to `docker build` / compose as the
 * build arguments HAPROXY_BASE and NODE_BASE.
 *
 * `pgroute-test/haproxy-base:2.6` mirrors the official haproxy:2.6 image where pgroute's
 *   Dockerfiles rely on it: the host's /usr/sbin/haproxy (Debian 2.6) at /usr/local/sbin/haproxy,
 *   its shared libraries (ldd), a user and group `haproxy` with uid/gid 99 and home
 *   /var/lib/haproxy, `USER haproxy`, `WORKDIR /var/lib/haproxy` (docker import cannot set STOPSIGNAL; haproxy/Dockerfile sets it).
 * `pgroute-test/node-base:20` mirrors node:20-bookworm-slim: the running Node (process.execPath)
 *   at /usr/local/bin/node, the host's npm at /usr/local/lib/node_modules/npm (npm and npx linked
 *   in /usr/local/bin), the libraries node needs, a user and group `node` with uid/gid 1000 and
 *   home /home/node, the host's CA bundle, `CMD ["node"]`.
 * Both have a static busybox as /bin/sh with its applets (env, id, sed, awk, ...) in /usr/bin,
 * and a merged /usr (/lib, /bin, ... link into /usr), like Debian.
 *
 * Each image carries a label with a hash of its inputs (file list with sizes and mtimes, the
 * layout version); ensure*() rebuilds only when the hash differs (a few seconds; then ~50 ms).
 */
import { createHash } from 'node:crypto';
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ensureDocker } from './docker.js';
import { ensureBusybox, IMAGE_HASH_LABEL, imageHash } from './docker-images.js';

export const HAPROXY_BASE_IMAGE = 'pgroute-test/haproxy-base:2.6';
export const NODE_BASE_IMAGE = 'pgroute-test/node-base:20';
/** uid/gid of `haproxy` in the official haproxy image (and so in the stand-in). */
export const HAPROXY_UID = 99;
export const NODE_UID = 1000;
/** Bump when the layout of an image changes without its inputs changing. */
const IMAGE_FORMAT = 1;
const BUSYBOX = '/bin/busybox';

interface RootfsSpec {
  readonly image: string;
  /** [host path, path inside the image]; shared libraries of the ELF files among them are added. */
  readonly files: ReadonlyArray<readonly [string, string]>;
  /** Whole host directories: [host dir, dir inside the image]. */
  readonly trees?: ReadonlyArray<readonly [string, string]>;
  /** Symlinks inside the image: [link, target]. */
  readonly links?: ReadonlyArray<readonly [string, string]>;
  /** The one non-root user: name, uid (= gid), home (created, owned by it). */
  readonly user: { readonly name: string; readonly uid: number; readonly home: string };
  /** `docker import --change` lines. */
  readonly changes: readonly string[];
}

function sharedLibraries(elves: readonly string[]): string[] {
  const libs = new Set<string>();
  const out = spawnSync('ldd', elves, { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 }).stdout ?? '';
  for (const line of out.split('\n')) {
    const m = /=>\s+(\/\S+)/.exec(line) ?? /^\s+(\/\S+)\s+\(0x/.exec(line);
    if (m?.[1] !== undefined) libs.add(m[1]);
  }
  return [...libs].sort();
}

function walk(dir: string): string[] {
  const out: string[] = [];
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name);
    if (entry.isDirectory()) out.push(...walk(p));
    else out.push(p);
  }
  return out;
}

function inputHash(spec: RootfsSpec, hostFiles: readonly string[]): string {
  const h = createHash('sha256');
  h.update(`format ${IMAGE_FORMAT}\n${JSON.stringify({ ...spec, files: undefined, trees: undefined })}\n`);
  for (const [from, to] of spec.files) h.update(`${from} -> ${to}\n`);
  for (const [from, to] of spec.trees ?? []) h.update(`${from}/ -> ${to}/\n`);
  for (const f of [...hostFiles, BUSYBOX]) {
    const st = fs.lstatSync(f);
    h.update(`${f} ${st.size} ${st.mtimeMs}\n`);
  }
  return h.digest('hex').slice(0, 16);
}

function copyInto(root: string, from: string, to: string, keepLinks = false): void {
  const dest = path.join(root, to);
  fs.mkdirSync(path.dirname(dest), { recursive: true });
  if (keepLinks && fs.lstatSync(from).isSymbolicLink()) {
    // Inside copied trees keep relative links (npm's node_modules/.bin); files and libraries are copied as files.
    const target = fs.readlinkSync(from);
    if (!path.isAbsolute(target)) {
      fs.symlinkSync(target, dest);
      return;
    }
  }
  fs.copyFileSync(fs.realpathSync(from), dest);
  fs.chmodSync(dest, fs.statSync(from).mode & 0o7777);
}

/** Builds `spec.image` unless an image with the same input hash exists. Returns its name. */
async function ensureRootfsImage(spec: RootfsSpec): Promise<string> {
  await ensureDocker();
  ensureBusybox();
  for (const [from] of spec.files) if (!fs.existsSync(from)) throw new Error(`${from} is missing on this host (needed for ${spec.image}); run scripts/setup.sh`);
  const treeFiles = (spec.trees ?? []).flatMap(([from, to]) => walk(from).map((f) => [f, path.join(to, path.relative(from, f))] as const));
  const elves = spec.files.map(([from]) => from).filter((f) => (fs.statSync(f).mode & 0o111) !== 0 || f.endsWith('.so'));
  const libs = sharedLibraries(elves).map((l) => [l, l] as const);
  const all = [...spec.files, ...treeFiles, ...libs];
  const hash = inputHash(spec, all.map(([from]) => from));
  if (imageHash(spec.image) === hash) return spec.image;

  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'pgroute-base-'));
  const tarball = `${root}.tar`;
  try {
    for (const d of ['usr/lib', 'usr/lib64', 'usr/bin', 'usr/sbin', 'usr/local/bin', 'usr/local/sbin', 'etc', 'tmp', 'var/tmp', 'run']) {
      fs.mkdirSync(path.join(root, d), { recursive: true });
    }
    for (const d of ['lib', 'lib64', 'bin', 'sbin']) fs.symlinkSync(`usr/${d}`, path.join(root, d));
    const inTrees = new Set(treeFiles.map(([f]) => f));
    for (const [from, to] of all) copyInto(root, from, to, inTrees.has(from));
    fs.copyFileSync(BUSYBOX, path.join(root, 'usr/bin/busybox'));
    fs.chmodSync(path.join(root, 'usr/bin/busybox'), 0o755);
    const applets = execFileSync(BUSYBOX, ['--list'], { encoding: 'utf8' }).split('\n').filter((a) => /^[a-z0-9_.[-]+$/.test(a) && a !== 'busybox');
    for (const a of applets) {
      const link = path.join(root, 'usr/bin', a);
      if (!fs.existsSync(link)) fs.symlinkSync('busybox', link);
    }
    for (const [link, target] of spec.links ?? []) {
      const p = path.join(root, link);
      fs.mkdirSync(path.dirname(p), { recursive: true });
      fs.rmSync(p, { force: true });
      fs.symlinkSync(target, p);
    }
    const u = spec.user;
    fs.writeFileSync(path.join(root, 'etc/passwd'), `root:x:0:0:root:/root:/bin/sh\n${u.name}:x:${u.uid}:${u.uid}:${u.name}:${u.home}:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n`);
    fs.writeFileSync(path.join(root, 'etc/group'), `root:x:0:\n${u.name}:x:${u.uid}:\nnogroup:x:65534:\n`);
    fs.writeFileSync(path.join(root, 'etc/nsswitch.conf'), 'passwd: files\ngroup: files\nhosts: files dns\n');
    fs.mkdirSync(path.join(root, 'root'), { recursive: true });
    if (fs.existsSync('/etc/ssl/certs/ca-certificates.crt')) copyInto(root, '/etc/ssl/certs/ca-certificates.crt', '/etc/ssl/certs/ca-certificates.crt');
    fs.chmodSync(path.join(root, 'tmp'), 0o1777);
    fs.chmodSync(path.join(root, 'var/tmp'), 0o1777);
    const home = `.${u.home}`;
    fs.mkdirSync(path.join(root, home), { recursive: true });
    // Everything root-owned, except the user's home.
    execFileSync('tar', ['-C', root, '--numeric-owner', '--owner=0', '--group=0', '-cf', tarball, `--exclude=${home}`, '.']);
    execFileSync('tar', ['-C', root, '--numeric-owner', `--owner=${u.uid}`, `--group=${u.uid}`, '-rf', tarball, home]);
    const args = ['import', ...spec.changes.flatMap((c) => ['--change', c]), '--change', `LABEL ${IMAGE_HASH_LABEL}=${hash}`, tarball, spec.image];
    const r = spawnSync('docker', args, { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`docker import of ${spec.image} failed: ${(r.stderr ?? '').trim()}`);
  } finally {
    fs.rmSync(tarball, { force: true });
    fs.rmSync(root, { recursive: true, force: true });
  }
  if (imageHash(spec.image) !== hash) throw new Error(`docker import of ${spec.image} did not produce an image labelled ${IMAGE_HASH_LABEL}=${hash}`);
  return spec.image;
}

const PATH_ENV = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** Builds (or finds) the stand-in for haproxy:2.6 from the host's HAProxy. */
export function ensureHaproxyBaseImage(): Promise<string> {
  const haproxy = '/usr/sbin/haproxy';
  const version = spawnSync(haproxy, ['-v'], { encoding: 'utf8' }).stdout ?? '';
  if (!/version 2\.6\./.test(version)) throw new Error(`${haproxy} is not HAProxy 2.6 (${version.split('\n')[0] ?? 'missing'}); run scripts/setup.sh`);
  return ensureRootfsImage({
    image: HAPROXY_BASE_IMAGE,
    files: [[haproxy, '/usr/local/sbin/haproxy']],
    user: { name: 'haproxy', uid: HAPROXY_UID, home: '/var/lib/haproxy' },
    changes: [`ENV ${PATH_ENV}`, 'USER haproxy', 'WORKDIR /var/lib/haproxy', 'CMD ["haproxy", "-f", "/usr/local/etc/haproxy/haproxy.cfg"]'],
  });
}

/** Builds (or finds) the stand-in for node:20-bookworm-slim from the running Node and the host's npm. */
export function ensureNodeBaseImage(): Promise<string> {
  const node = process.execPath;
  const npmDir = ['/usr/lib/node_modules/npm', '/usr/local/lib/node_modules/npm', path.join(path.dirname(node), '../lib/node_modules/npm')].find((d) =>
    fs.existsSync(path.join(d, 'bin/npm-cli.js')),
  );
  if (npmDir === undefined) throw new Error(`npm is not installed beside ${node}`);
  return ensureRootfsImage({
    image: NODE_BASE_IMAGE,
    files: [[node, '/usr/local/bin/node']],
    trees: [[fs.realpathSync(npmDir), '/usr/local/lib/node_modules/npm']],
    links: [
      ['/usr/local/bin/npm', '../lib/node_modules/npm/bin/npm-cli.js'],
      ['/usr/local/bin/npx', '../lib/node_modules/npm/bin/npx-cli.js'],
    ],
    user: { name: 'node', uid: NODE_UID, home: '/home/node' },
    changes: [`ENV ${PATH_ENV} NODE_VERSION=${process.versions.node}`, 'CMD ["node"]'],
  });
}

/** Both stand-ins, as the build arguments of pgroute's Dockerfiles. */
export async function ensureBaseImages(): Promise<{ HAPROXY_BASE: string; NODE_BASE: string }> {
  const HAPROXY_BASE = await ensureHaproxyBaseImage();
  const NODE_BASE = await ensureNodeBaseImage();
  return { HAPROXY_BASE, NODE_BASE };
}
