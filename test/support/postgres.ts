/**
 * Throw-away PostgreSQL servers for tests.
 *
 * Each server lives in /tmp/pgroute-test/<name>-<port> (override the root with
 * PGROUTE_TEST_DIR), listens only on 127.0.0.1:<port>, keeps its unix socket in
 * its own data dir (never /var/run/postgresql), trusts every local/127.0.0.1
 * connection and runs with fsync/synchronous_commit/full_page_writes off.
 *
 * PostgreSQL refuses to run as root, so when the tests run as root every
 * PostgreSQL binary is run as the `postgres` OS user via `runuser -u postgres --`.
 *
 * initdb costs ~1 s, so a template cluster is initdb'ed once into
 * /tmp/pgroute-test/template-<version> (shared by all test processes; created
 * atomically via rename) and copied with `cp -a` (~0.15 s) for every server.
 * Set PGROUTE_PG_NO_TEMPLATE=1 (or `useTemplate: false`) to initdb every time.
 *
 * When /dev/shm is a big tmpfs, /tmp/pgroute-test is created as a symlink to
 * /dev/shm/pgroute-test (see ensureRoot; PGROUTE_TEST_TMPFS=0 disables).
 *
 * Binaries come from PGROUTE_PG_BIN (default /usr/lib/postgresql/15/bin).
 */
import { execFile, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import pg from 'pg';
import { assertPortFree } from './ports.js';
import { registerCleanup } from './process.js';

export const PG_BIN = process.env['PGROUTE_PG_BIN'] ?? '/usr/lib/postgresql/15/bin';
export const PG_TEST_ROOT = process.env['PGROUTE_TEST_DIR'] ?? '/tmp/pgroute-test';
/** OS user that owns and runs the servers when the tests run as root. */
export const PG_OS_USER = 'postgres';
/** Login role created in every server (trust auth, so any password works; its password is 'app'). */
export const APP_ROLE = 'app';
export const APP_PASSWORD = 'app';
/** The bootstrap superuser of every server. */
export const SUPERUSER = 'postgres';

const HOST = '127.0.0.1';
const OWNER_FILE = 'pgroute-owner.json';
const TEMPLATE_MARKER = 'pgroute-template.json';
const INITDB_ARGS = ['--auth=trust', `--username=${SUPERUSER}`, '-E', 'UTF8', '--locale=C', '--no-sync', '--no-instructions'];
/** Bump when the template's content changes, so stale caches are rebuilt. */
const TEMPLATE_FORMAT = 1;

export type PgSettingValue = string | number | boolean;

export interface StartPostgresOptions {
  /** Server name: data dir prefix, default cluster_name and default database name. [A-Za-z0-9_.-], max 40 chars. */
  name: string;
  port: number;
  /** cluster_name setting (SHOW cluster_name); default: name. */
  clusterName?: string;
  /** Extra postgresql.conf settings; they override the harness defaults. */
  settings?: Record<string, PgSettingValue>;
  /** Create database `database` owned by role app (default true). */
  createDatabase?: boolean;
  /** Name of the database to create; default: name. */
  database?: string;
  /** If given, replaces pg_hba.conf with these lines (default: initdb --auth=trust). */
  hba?: string[];
  /** Files written into the data dir before start, owned by postgres, mode 0600 (e.g. server.crt/server.key). */
  files?: Record<string, string | Buffer>;
  /** Copy the cached initdb template instead of running initdb (default true unless PGROUTE_PG_NO_TEMPLATE=1). */
  useTemplate?: boolean;
  /** pg_ctl start timeout in seconds (default 60). */
  startTimeoutSec?: number;
}

export interface PgConnectionConfig {
  host: string;
  port: number;
  user: string;
  database: string;
}

export interface PgServer {
  readonly name: string;
  readonly clusterName: string;
  readonly host: string;
  readonly port: number;
  readonly dataDir: string;
  /** unix_socket_directories (= dataDir). */
  readonly socketDir: string;
  readonly logFile: string;
  /** The created database, or 'postgres' if none was created. */
  readonly database: string;
  /** Milliseconds startPostgres took for this server. */
  readonly startMs: number;
  /** Where startPostgres spent its time (ms): datadir (copy/initdb), pgctl (pg_ctl start -w), sql (role + database). */
  readonly startPhases: { datadir: number; pgctl: number; sql: number };
  /** postgresql://<user>@127.0.0.1:<port>/<db>; defaults: db = database, user = app. */
  connectionString(db?: string, user?: string): string;
  /** node-postgres style config; defaults as for connectionString. */
  connectionConfig(db?: string, user?: string): PgConnectionConfig;
  /** Last n lines of the server log (for failure messages). */
  logTail(n?: number): string;
  /** pg_ctl stop -m immediate, then removes the data dir. Idempotent. */
  stop(): Promise<void>;
}

// ---------------------------------------------------------------------------
// helpers
// ---------------------------------------------------------------------------

const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;

/** cmd/args wrapped in `runuser -u postgres --` when running as root. */
export function asPgUser(cmd: string, args: readonly string[]): [string, string[]] {
  return isRoot ? ['runuser', ['-u', PG_OS_USER, '--', cmd, ...args]] : [cmd, [...args]];
}

function cleanEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (!k.startsWith('PG')) env[k] = v;
  }
  return env;
}

interface RunResult {
  stdout: string;
  stderr: string;
}

function run(cmd: string, args: readonly string[], timeoutMs = 120_000): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    // cwd /tmp: the postgres user cannot chdir into e.g. /root.
    execFile(cmd, [...args], { cwd: '/tmp', env: cleanEnv(), timeout: timeoutMs, maxBuffer: 16 << 20, encoding: 'utf8' }, (err, stdout, stderr) => {
      if (err) {
        const e = new Error(
          `${cmd} ${args.join(' ')} failed: ${err.message.split('\n')[0]}\n${stderr.trim()}\n${stdout.trim()}`.trim(),
          { cause: err },
        );
        reject(e);
      } else resolve({ stdout, stderr });
    });
  });
}

function runAsPg(cmd: string, args: readonly string[], timeoutMs?: number): Promise<RunResult> {
  const [c, a] = asPgUser(cmd, args);
  return run(c, a, timeoutMs);
}

async function chownToPg(p: string): Promise<void> {
  if (!isRoot) return;
  const { uid, gid } = pgOsIds();
  await fsp.chown(p, uid, gid);
}

let pgIds: { uid: number; gid: number } | undefined;
function pgOsIds(): { uid: number; gid: number } {
  if (pgIds) return pgIds;
  const line = fs
    .readFileSync('/etc/passwd', 'utf8')
    .split('\n')
    .find((l) => l.startsWith(`${PG_OS_USER}:`));
  const parts = line?.split(':');
  if (!parts || parts.length < 4) {
    throw new Error(`OS user '${PG_OS_USER}' does not exist (run scripts/setup.sh to install PostgreSQL)`);
  }
  pgIds = { uid: Number(parts[2]), gid: Number(parts[3]) };
  return pgIds;
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

let versionCache: string | undefined;
/** Full server version, e.g. "15.18". */
export function postgresVersion(): string {
  if (versionCache) return versionCache;
  const out = execFileSync(path.join(PG_BIN, 'postgres'), ['--version'], { encoding: 'utf8' });
  const m = /\)\s*(\d+(?:\.\d+)*)/.exec(out) ?? /(\d+(?:\.\d+)+)/.exec(out);
  if (!m?.[1]) throw new Error(`cannot parse postgres --version output: ${out}`);
  versionCache = m[1];
  return versionCache;
}

function confValue(v: PgSettingValue): string {
  if (typeof v === 'boolean') return v ? 'on' : 'off';
  if (typeof v === 'number') return String(v);
  return `'${v.replace(/\\/g, '\\\\').replace(/'/g, "''")}'`;
}

function quoteIdent(s: string): string {
  return `"${s.replace(/"/g, '""')}"`;
}

function readTail(file: string, n: number): string {
  try {
    return fs.readFileSync(file, 'utf8').trimEnd().split('\n').slice(-n).join('\n');
  } catch {
    return '(no log)';
  }
}

// ---------------------------------------------------------------------------
// template cache
// ---------------------------------------------------------------------------

const TMPFS_MAGIC = 0x01021994;
const SHM_DIR = '/dev/shm/pgroute-test';
let rootReady: Promise<void> | undefined;

/**
 * Creates PG_TEST_ROOT. Unless PGROUTE_TEST_DIR is set or PGROUTE_TEST_TMPFS=0,
 * a fresh /tmp/pgroute-test is made a symlink to /dev/shm/pgroute-test when
 * /dev/shm is a tmpfs with >= 2 GiB free: copying/starting clusters there is
 * ~10x faster than on this machine's disk. Paths stay /tmp/pgroute-test/...
 */
function ensureRoot(): Promise<void> {
  rootReady ??= (async () => {
    const wantTmpfs = process.env['PGROUTE_TEST_DIR'] === undefined && process.env['PGROUTE_TEST_TMPFS'] !== '0';
    if (wantTmpfs && !fs.existsSync(PG_TEST_ROOT) && shmUsable()) {
      await fsp.mkdir(SHM_DIR, { recursive: true, mode: 0o755 });
      await fsp.symlink(SHM_DIR, PG_TEST_ROOT).catch((err: NodeJS.ErrnoException) => {
        if (err.code !== 'EEXIST') throw err;
      });
    }
    await fsp.mkdir(PG_TEST_ROOT, { recursive: true, mode: 0o755 });
    // PG_TEST_ROOT must be traversable by the postgres user.
    const st = await fsp.stat(PG_TEST_ROOT);
    if ((st.mode & 0o005) !== 0o005 && isRoot) await fsp.chmod(PG_TEST_ROOT, 0o755);
  })();
  rootReady.catch(() => {
    rootReady = undefined;
  });
  return rootReady;
}

function shmUsable(): boolean {
  try {
    const st = fs.statfsSync('/dev/shm');
    return st.type === TMPFS_MAGIC && st.bavail * st.bsize >= 2 * 1024 ** 3;
  } catch {
    return false;
  }
}

async function initdb(dir: string): Promise<void> {
  await fsp.rm(dir, { recursive: true, force: true });
  await fsp.mkdir(dir, { mode: 0o700 });
  await chownToPg(dir);
  await runAsPg(path.join(PG_BIN, 'initdb'), ['-D', dir, ...INITDB_ARGS]);
}

function templateKey(): string {
  return JSON.stringify({ format: TEMPLATE_FORMAT, version: postgresVersion(), args: INITDB_ARGS });
}

function templateValid(dir: string): boolean {
  try {
    return (
      fs.existsSync(path.join(dir, 'PG_VERSION')) &&
      fs.readFileSync(path.join(dir, TEMPLATE_MARKER), 'utf8') === templateKey()
    );
  } catch {
    return false;
  }
}

let templatePromise: Promise<string> | undefined;

/** Path of the shared initdb template, creating it if needed (safe across processes). */
export function ensureTemplate(): Promise<string> {
  templatePromise ??= (async () => {
    await ensureRoot();
    const final = path.join(PG_TEST_ROOT, `template-${postgresVersion()}`);
    if (templateValid(final)) return final;
    if (fs.existsSync(final)) {
      // Outdated or broken: move aside (atomic) and delete.
      const trash = `${final}.stale-${process.pid}-${Date.now()}`;
      await fsp.rename(final, trash).catch(() => {});
      await fsp.rm(trash, { recursive: true, force: true });
    }
    // Remove staging dirs of dead processes.
    for (const e of await fsp.readdir(PG_TEST_ROOT)) {
      const m = /^template-.*\.tmp-(\d+)$/.exec(e);
      if (m?.[1] && !pidAlive(Number(m[1]))) await fsp.rm(path.join(PG_TEST_ROOT, e), { recursive: true, force: true });
    }
    const staging = `${final}.tmp-${process.pid}`;
    await initdb(staging);
    await fsp.writeFile(path.join(staging, TEMPLATE_MARKER), templateKey());
    try {
      await fsp.rename(staging, final);
    } catch (err) {
      // Another process won the race; use its template.
      await fsp.rm(staging, { recursive: true, force: true });
      if (!templateValid(final)) throw err;
    }
    return final;
  })();
  templatePromise.catch(() => {
    templatePromise = undefined;
  });
  return templatePromise;
}

// ---------------------------------------------------------------------------
// stale servers
// ---------------------------------------------------------------------------

interface OwnerInfo {
  pid: number;
  name: string;
  port: number;
}

function readOwner(dir: string): OwnerInfo | undefined {
  try {
    return JSON.parse(fs.readFileSync(path.join(dir, OWNER_FILE), 'utf8')) as OwnerInfo;
  } catch {
    return undefined;
  }
}

/** Stops a postmaster running in dir (if any) and removes dir. Synchronous. */
function killAndRemoveSync(dir: string): void {
  if (fs.existsSync(path.join(dir, 'postmaster.pid'))) {
    try {
      const [c, a] = asPgUser(path.join(PG_BIN, 'pg_ctl'), ['stop', '-D', dir, '-m', 'immediate', '-w', '-t', '20', '-s']);
      execFileSync(c, a, { cwd: '/tmp', env: cleanEnv(), stdio: 'ignore', timeout: 30_000 });
    } catch {
      killPostmasterFromPidFile(dir);
    }
  }
  fs.rmSync(dir, { recursive: true, force: true });
}

function killPostmasterFromPidFile(dir: string): void {
  try {
    const pid = Number(fs.readFileSync(path.join(dir, 'postmaster.pid'), 'utf8').split('\n')[0]);
    if (!(pid > 0)) return;
    // Only if that pid still is the postmaster of this dir (pids get reused).
    const cmdline = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    if (cmdline.some((a) => a.endsWith('postgres')) && cmdline.includes(dir)) process.kill(pid, 'SIGKILL');
  } catch {
    // not running
  }
}

async function killAndRemove(dir: string): Promise<void> {
  if (fs.existsSync(path.join(dir, 'postmaster.pid'))) {
    try {
      await runAsPg(path.join(PG_BIN, 'pg_ctl'), ['stop', '-D', dir, '-m', 'immediate', '-w', '-t', '20', '-s'], 30_000);
    } catch {
      killPostmasterFromPidFile(dir);
    }
  }
  await fsp.rm(dir, { recursive: true, force: true });
}

const liveDirs = new Set<string>();

/**
 * Removes leftovers of earlier runs for this port: any <something>-<port> dir
 * whose owning test process is gone (its postmaster is stopped first).
 * Throws if a live test process other than this one owns a server on the port.
 */
async function reapStaleForPort(port: number): Promise<void> {
  let entries: string[];
  try {
    entries = await fsp.readdir(PG_TEST_ROOT);
  } catch {
    return;
  }
  for (const e of entries) {
    if (e.startsWith('template-') || !e.endsWith(`-${port}`)) continue;
    const dir = path.join(PG_TEST_ROOT, e);
    const owner = readOwner(dir);
    if (liveDirs.has(dir) || (owner && owner.pid !== process.pid && pidAlive(owner.pid))) {
      throw new Error(
        `port ${port} is already used by test PostgreSQL ${dir} of live process ${owner?.pid ?? process.pid} ` +
          `(two test files sharing a port block, or a server started twice?)`,
      );
    }
    await killAndRemove(dir);
  }
}

/** Removes every server dir under PG_TEST_ROOT whose owning test process is dead. */
export async function reapStalePostgres(): Promise<string[]> {
  const removed: string[] = [];
  let entries: string[];
  try {
    entries = await fsp.readdir(PG_TEST_ROOT);
  } catch {
    return removed;
  }
  for (const e of entries) {
    if (e.startsWith('template-')) continue;
    const dir = path.join(PG_TEST_ROOT, e);
    const owner = readOwner(dir);
    if (owner && !pidAlive(owner.pid)) {
      await killAndRemove(dir);
      removed.push(dir);
    }
  }
  return removed;
}

// ---------------------------------------------------------------------------
// start / stop
// ---------------------------------------------------------------------------

const NAME_RE = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,39}$/;

/** Starts one PostgreSQL server; see the module comment. Registered for stopAll(). */
export async function startPostgres(opts: StartPostgresOptions): Promise<PgServer> {
  const t0 = Date.now();
  const { name, port } = opts;
  if (!NAME_RE.test(name) || name.startsWith('template-')) throw new Error(`invalid PostgreSQL test server name '${name}' (want ${NAME_RE})`);
  if (!Number.isInteger(port) || port <= 0 || port > 65535) throw new Error(`invalid port ${port}`);
  const clusterName = opts.clusterName ?? name;
  const createDatabase = opts.createDatabase ?? true;
  const database = createDatabase ? (opts.database ?? name) : 'postgres';
  const useTemplate = opts.useTemplate ?? process.env['PGROUTE_PG_NO_TEMPLATE'] !== '1';

  await ensureRoot();
  const dataDir = path.join(PG_TEST_ROOT, `${name}-${port}`);
  const logFile = path.join(dataDir, 'server.log');
  await reapStaleForPort(port);
  await fsp.rm(dataDir, { recursive: true, force: true });
  await assertPortFree(port, HOST);
  liveDirs.add(dataDir);

  const fail = async (err: unknown): Promise<never> => {
    const tail = readTail(logFile, 30);
    await killAndRemove(dataDir).catch(() => {});
    liveDirs.delete(dataDir);
    const msg = err instanceof Error ? err.message : String(err);
    throw new Error(`startPostgres(${name}:${port}) failed: ${msg}\n--- server.log (tail) ---\n${tail}`, { cause: err });
  };

  const phases = { datadir: 0, pgctl: 0, sql: 0 };
  let tp = Date.now();
  const lap = (k: keyof typeof phases): void => {
    const now = Date.now();
    phases[k] = now - tp;
    tp = now;
  };
  try {
    if (useTemplate) {
      const template = await ensureTemplate();
      await run('cp', ['-a', template, dataDir]);
      await fsp.rm(path.join(dataDir, TEMPLATE_MARKER), { force: true });
      await chownToPg(dataDir);
    } else {
      await initdb(dataDir);
    }
    await fsp.writeFile(path.join(dataDir, OWNER_FILE), JSON.stringify({ pid: process.pid, name, port } satisfies OwnerInfo));

    const settings: Record<string, PgSettingValue> = {
      listen_addresses: HOST,
      port,
      unix_socket_directories: dataDir,
      cluster_name: clusterName,
      fsync: false,
      synchronous_commit: false,
      full_page_writes: false,
      shared_buffers: '16MB',
      max_connections: 200,
      ...opts.settings,
    };
    const conf = ['', '# --- pgroute test harness ---', ...Object.entries(settings).map(([k, v]) => `${k} = ${confValue(v)}`), ''];
    await fsp.appendFile(path.join(dataDir, 'postgresql.conf'), conf.join('\n'));
    if (opts.hba) {
      await fsp.writeFile(path.join(dataDir, 'pg_hba.conf'), opts.hba.join('\n') + '\n');
    }
    for (const [file, content] of Object.entries(opts.files ?? {})) {
      const p = path.join(dataDir, file);
      await fsp.mkdir(path.dirname(p), { recursive: true });
      await fsp.writeFile(p, content, { mode: 0o600 });
      await fsp.chmod(p, 0o600);
      await chownToPg(p);
    }

    lap('datadir');
    await runAsPg(
      path.join(PG_BIN, 'pg_ctl'),
      ['start', '-D', dataDir, '-l', logFile, '-w', '-t', String(opts.startTimeoutSec ?? 60), '-s'],
      ((opts.startTimeoutSec ?? 60) + 10) * 1000,
    );
    lap('pgctl');

    const client = new pg.Client({ host: HOST, port, user: SUPERUSER, database: 'postgres', connectionTimeoutMillis: 10_000 });
    await client.connect();
    try {
      await client.query(`CREATE ROLE ${APP_ROLE} LOGIN CREATEDB PASSWORD '${APP_PASSWORD}'`);
      if (createDatabase) await client.query(`CREATE DATABASE ${quoteIdent(database)} OWNER ${APP_ROLE}`);
    } finally {
      await client.end().catch(() => {});
    }
    lap('sql');
  } catch (err) {
    return fail(err);
  }

  let stopping: Promise<void> | undefined;
  const server: PgServer = {
    name,
    clusterName,
    host: HOST,
    port,
    dataDir,
    socketDir: dataDir,
    logFile,
    database,
    startMs: Date.now() - t0,
    startPhases: phases,
    connectionString: (db = database, user = APP_ROLE) =>
      `postgresql://${encodeURIComponent(user)}@${HOST}:${port}/${encodeURIComponent(db)}`,
    connectionConfig: (db = database, user = APP_ROLE) => ({ host: HOST, port, user, database: db }),
    logTail: (n = 30) => readTail(logFile, n),
    stop() {
      stopping ??= (async () => {
        unregister();
        await killAndRemove(dataDir);
        liveDirs.delete(dataDir);
      })();
      return stopping;
    },
  };
  const unregister = registerCleanup({
    name: `postgres ${name}:${port}`,
    stop: () => server.stop(),
    stopSync: () => {
      killAndRemoveSync(dataDir);
      liveDirs.delete(dataDir);
    },
  });
  return server;
}

/**
 * Starts several servers in parallel. If any fails, the ones that did start
 * are stopped and the first error is rethrown.
 */
export async function startPostgresMany(list: readonly StartPostgresOptions[]): Promise<PgServer[]> {
  const ports = new Set<number>();
  for (const o of list) {
    if (ports.has(o.port)) throw new Error(`startPostgresMany: port ${o.port} used twice`);
    ports.add(o.port);
  }
  // Build the template once up front instead of racing for it.
  if (list.some((o) => (o.useTemplate ?? process.env['PGROUTE_PG_NO_TEMPLATE'] !== '1'))) await ensureTemplate();
  const results = await Promise.allSettled(list.map((o) => startPostgres(o)));
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) {
    await Promise.allSettled(results.map((r) => (r.status === 'fulfilled' ? r.value.stop() : undefined)));
    throw failed.reason;
  }
  return results.map((r) => (r as PromiseFulfilledResult<PgServer>).value);
}
