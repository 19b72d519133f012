/**
 * A throw-away PgBouncer (Debian's pgbouncer, installed by scripts/setup.sh with its own service
 * off) in front of test PostgreSQL servers: its config in a temp dir of its own, listening on
 * 127.0.0.1:<port> only (no unix socket), in the foreground, logging to stderr. Shared by
 * test/e2e/tenant-policy-storm.test.ts and bench/storm.sh (bench/src/storm-main.ts).
 *
 * PgBouncer refuses to run as root: as root it is started with `-u postgres` (it drops to that user
 * after reading its config), as one process whose pid is the one returned, so that an emulated
 * host (bench/src/cpu-host.ts add(pid)) takes all of it.
 */
import { spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { registerCleanup } from './process.js';

export const PGBOUNCER_BIN = process.env['PGROUTE_PGBOUNCER'] ?? '/usr/sbin/pgbouncer';

export interface PgBouncerDatabase {
  readonly host: string;
  readonly port: number;
  /** The server's database (default: the name clients use). */
  readonly dbname?: string;
  /** The role PgBouncer logs in as on the server, whatever the client says (auth_type any). */
  readonly user: string;
}

export interface PgBouncerOptions {
  readonly port: number;
  /** Databases clients may name, each one pool. */
  readonly databases: Readonly<Record<string, PgBouncerDatabase>>;
  /** session or transaction (default transaction: a server connection per transaction). */
  readonly poolMode?: 'session' | 'transaction';
  /** Server connections per database (default_pool_size). */
  readonly poolSize: number;
  /** Client connections at once (max_client_conn, default 200). */
  readonly maxClientConn?: number;
}

export interface PgBouncer {
  readonly port: number;
  readonly pid: number;
  /** Recent output (its log), for failure messages. */
  output(): string;
  /** SIGINT (PgBouncer's safe shutdown: it waits for clients), SIGKILL after 5 s; removes its dir. Idempotent. */
  stop(): Promise<void>;
}

/** pgbouncer.ini for `opts`: pure. Clients are not authenticated (auth_type any: loopback tests only). */
export function pgbouncerConfig(opts: PgBouncerOptions): string {
  const dbs = Object.entries(opts.databases).map(([name, d]) => `${name} = host=${d.host} port=${d.port} dbname=${d.dbname ?? name} user=${d.user}`);
  return [
    '[databases]',
    ...dbs,
    '',
    '[pgbouncer]',
    'listen_addr = 127.0.0.1',
    `listen_port = ${opts.port}`,
    'unix_socket_dir =',
    'auth_type = any',
    `pool_mode = ${opts.poolMode ?? 'transaction'}`,
    `default_pool_size = ${opts.poolSize}`,
    `max_client_conn = ${opts.maxClientConn ?? 200}`,
    // A line per connection would cost the storm's pooler more than its pooling.
    'log_connections = 0',
    'log_disconnections = 0',
    'stats_period = 3600',
    '',
  ].join('\n');
}

const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;

function connects(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port }, () => {
      s.destroy();
      resolve(true);
    });
    s.on('error', () => resolve(false));
  });
}

/** Starts PgBouncer and resolves once it accepts connections (registered for stopAll()). */
export async function startPgBouncer(opts: PgBouncerOptions): Promise<PgBouncer> {
  // Readable by the user it drops to (it reads the file again on SIGHUP).
  const dir = mkdtempSync(join(tmpdir(), 'pgroute-pgbouncer-'));
  chmodSync(dir, 0o755);
  const ini = join(dir, 'pgbouncer.ini');
  writeFileSync(ini, pgbouncerConfig(opts), { mode: 0o644 });
  const child = spawn(PGBOUNCER_BIN, [...(isRoot ? ['-u', 'postgres'] : []), ini], { detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: string[] = [];
  const keep = (d: Buffer): void => {
    lines.push(...d.toString('utf8').split('\n').filter((l) => l !== ''));
    lines.splice(0, Math.max(0, lines.length - 50));
  };
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  let exited = false;
  const exit = new Promise<void>((resolve) => {
    child.on('exit', () => {
      exited = true;
      resolve();
    });
    child.on('error', (err) => {
      lines.push(`spawn failed: ${err.message}`);
      exited = true;
      resolve();
    });
  });
  const kill = (sig: NodeJS.Signals): void => {
    try {
      if (child.pid !== undefined) process.kill(child.pid, sig);
    } catch {
      /* gone */
    }
  };
  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      unregister();
      if (!exited) kill('SIGINT');
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([exit, new Promise<void>((r) => (timer = setTimeout(r, 5_000)))]);
      clearTimeout(timer);
      if (!exited) {
        kill('SIGKILL');
        await exit;
      }
      rmSync(dir, { recursive: true, force: true });
    })();
    return stopping;
  };
  const unregister = registerCleanup({ name: `pgbouncer :${opts.port}`, stop, stopSync: () => {
    kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  } });
  for (const end = Date.now() + 10_000; !(await connects(opts.port)); await new Promise((r) => setTimeout(r, 50))) {
    if (exited || Date.now() > end) {
      await stop();
      throw new Error(`PgBouncer (${PGBOUNCER_BIN} ${ini}) did not listen on 127.0.0.1:${opts.port}${exited ? ' and exited' : ' within 10 s'}; its output:\n${lines.join('\n')}\n(install it with scripts/setup.sh)`);
    }
  }
  return { port: opts.port, pid: child.pid as number, output: () => lines.join('\n'), stop };
}
