/**
 * PostgreSQL clients for tests: the real `psql` binary (exactly what users run,
 * including its libpq SSL negotiation) and node-postgres.
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import pg from 'pg';
import { PG_BIN } from './postgres.js';

export const PSQL_BIN = process.env['PGROUTE_PSQL'] ?? path.join(PG_BIN, 'psql');

export interface PsqlOptions {
  /** Default 127.0.0.1. A path starting with '/' means a unix socket directory. */
  host?: string;
  port: number;
  /** Default 'postgres'. */
  user?: string;
  /** Default 'postgres'. */
  db?: string;
  /** libpq sslmode (disable, allow, prefer, require, verify-ca, verify-full); default: libpq's ("prefer"). */
  sslmode?: string;
  /** libpq `options` (PGOPTIONS), e.g. "-c search_path=foo" or "--tenant=acme". */
  options?: string;
  /** libpq application_name. */
  applicationName?: string;
  password?: string;
  /** SQL passed with -c; an array gives several -c in order. Omit to use `input`. */
  command?: string | readonly string[];
  /** Text fed to psql's stdin (a script), used when no command is given. */
  input?: string;
  /** Extra environment (e.g. PGSSLROOTCERT, PGSSLNEGOTIATION); value undefined removes. */
  env?: Record<string, string | undefined>;
  /** Extra psql arguments, appended after the defaults. */
  extraArgs?: readonly string[];
  /** Kill psql (SIGKILL) after this many ms; default 15000. */
  timeoutMs?: number;
  /** libpq connect_timeout in seconds; default 5. */
  connectTimeoutSec?: number;
}

export interface PsqlResult {
  /** Exit code; null if killed (see timedOut). */
  code: number | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
  /** The argv used, for failure messages. */
  argv: string[];
}

/**
 * Runs `psql -X -A -t -v ON_ERROR_STOP=1 ...` and resolves with its exit code
 * and output (never rejects for SQL/connection errors; check `code`).
 * The environment is the caller's minus all PG* variables, then `env`, then
 * the explicit options.
 */
export function psql(opts: PsqlOptions): Promise<PsqlResult> {
  const timeoutMs = opts.timeoutMs ?? 15_000;
  const args = ['-X', '-A', '-t', '-v', 'ON_ERROR_STOP=1', '-h', opts.host ?? '127.0.0.1', '-p', String(opts.port)];
  args.push('-U', opts.user ?? 'postgres', '-d', opts.db ?? 'postgres');
  const commands = opts.command === undefined ? [] : typeof opts.command === 'string' ? [opts.command] : opts.command;
  for (const c of commands) args.push('-c', c);
  if (commands.length === 0 && opts.input === undefined) {
    throw new Error('psql(): give `command` or `input`');
  }
  args.push(...(opts.extraArgs ?? []));

  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('PG')) env[k] = v;
  for (const [k, v] of Object.entries(opts.env ?? {})) {
    if (v === undefined) delete env[k];
    else env[k] = v;
  }
  env['PGCONNECT_TIMEOUT'] ??= String(opts.connectTimeoutSec ?? 5);
  if (opts.sslmode !== undefined) env['PGSSLMODE'] = opts.sslmode;
  if (opts.options !== undefined) env['PGOPTIONS'] = opts.options;
  if (opts.applicationName !== undefined) env['PGAPPNAME'] = opts.applicationName;
  if (opts.password !== undefined) env['PGPASSWORD'] = opts.password;

  return new Promise((resolve) => {
    const child = spawn(PSQL_BIN, args, { env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    let settled = false;
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.stdin.on('error', () => {});
    child.stdin.end(opts.input ?? '');
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    const finish = (code: number | null, extraErr = ''): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (timedOut) extraErr += `\npsql killed after ${timeoutMs} ms timeout`;
      resolve({ code, stdout, stderr: stderr + extraErr, timedOut, argv: [PSQL_BIN, ...args] });
    };
    child.once('error', (err) => finish(null, `\nspawn error: ${err.message}`));
    child.once('close', (code) => finish(code));
  });
}

/** Like psql() but throws (with stderr) unless the exit code is 0; resolves with trimmed stdout. */
export async function psqlOk(opts: PsqlOptions): Promise<string> {
  const r = await psql(opts);
  if (r.code !== 0) {
    throw new Error(`psql exited ${r.code ?? 'by signal'}${r.timedOut ? ' (timeout)' : ''}: ${r.stderr.trim()}\nargv: ${r.argv.join(' ')}`);
  }
  return r.stdout.trim();
}

export type PgClientConfig = string | pg.ClientConfig;

/**
 * Runs one query on a fresh node-postgres connection and resolves with the rows.
 * `config` is a connection string or a pg.ClientConfig; a 10 s connection
 * timeout and 30 s query timeout apply unless set.
 */
export async function pgQuery<R extends Record<string, unknown> = Record<string, unknown>>(
  config: PgClientConfig,
  sql: string,
  params?: unknown[],
): Promise<R[]> {
  const base: pg.ClientConfig = typeof config === 'string' ? { connectionString: config } : { ...config };
  base.connectionTimeoutMillis ??= 10_000;
  base.query_timeout ??= 30_000;
  const client = new pg.Client(base);
  // An error event after connect (e.g. server killed) must not crash the test process.
  client.on('error', () => {});
  await client.connect();
  try {
    const res = await client.query<R>(sql, params);
    return res.rows;
  } finally {
    await client.end().catch(() => {});
  }
}
