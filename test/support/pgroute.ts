// Runs the built pgroute CLI (dist/) as the user would, for end-to-end tests.

import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { spawnLogged, stopAll, waitFor, waitForPort, type ProcessHandle } from './process.js';
import { startPostgresMany, type PgServer, type StartPostgresOptions } from './postgres.js';
import type { PortBlock } from './ports.js';
import { haproxyCli, showProc, statePaths } from '../../generator/src/index.js';
import { parseShowStat } from '../../generator/src/status/show-stat.js';

export const REPO_ROOT = resolve(import.meta.dirname, '..', '..');
export const CLI = join(REPO_ROOT, 'dist', 'cli', 'pgroute.js');

export interface TenantSpec {
  id: string;
  port: number;
  host?: string;
  enabled?: boolean;
  targets?: Record<string, { host: string; port: number }>;
  tls?: { verify: 'required' | 'none'; ca?: string; serverName?: string };
  maxClientConnections?: number;
  allow?: string[];
}

/** A tenants file in YAML (JSON is YAML) in a fresh temporary directory. */
export function writeTenantsFile(tenants: readonly TenantSpec[], extra: Record<string, unknown> = {}): { dir: string; file: string } {
  const dir = mkdtempSync(join(tmpdir(), 'pgroute-e2e-'));
  const file = join(dir, 'tenants.yaml');
  const doc = { ...extra, tenants: tenants.map((t) => ({ host: '127.0.0.1', ...t })) };
  writeFileSync(file, JSON.stringify(doc, null, 2));
  return { dir, file };
}

/** The flags that put a deployment on a test file's own port block. */
export function deploymentFlags(ports: PortBlock, stateDir: string, extra: readonly string[] = []): string[] {
  return [
    '--state-dir', stateDir,
    '--bind', '127.0.0.1',
    '--port', String(ports.haproxy),
    '--agent-port', String(ports.agent),
    '--agent-http-port', String(ports.agentHealth),
    '--stats-port', String(ports.stats),
    ...extra,
  ];
}

/**
 * Runs `node dist/cli/pgroute.js args...`; `opts.env` is merged over this process's environment.
 * Without a drain delay (PGROUTE_DRAIN_DELAY=0s) unless the test gives one (--drain-delay or the
 * variable): a test's teardown stops with SIGTERM, and only rolling-restart.test.ts tests the delay.
 */
export function runCli(name: string, args: readonly string[], opts: { env?: Record<string, string | undefined> } = {}): ProcessHandle {
  return spawnLogged(process.execPath, [CLI, ...args], { name, cwd: REPO_ROOT, env: { PGROUTE_DRAIN_DELAY: '0s', ...opts.env } });
}

/** `pgroute up` in the background; resolves once it runs (port listening, master CLI answering). */
export function startUp(ports: PortBlock, tenantsFile: string, stateDir: string, extra: readonly string[] = []): Promise<ProcessHandle> {
  return running(ports, runCli('pgroute-up', ['up', '--tenants', tenantsFile, ...deploymentFlags(ports, stateDir, extra)]), 20_000);
}

/** `pgroute watch --spawn-haproxy` in the background; resolves once it runs. */
export function startWatch(
  ports: PortBlock,
  stateDir: string,
  extra: readonly string[],
  opts: { name?: string; env?: Record<string, string | undefined> } = {},
): Promise<ProcessHandle> {
  const args = ['watch', ...deploymentFlags(ports, stateDir, ['--spawn-haproxy', ...extra])];
  return running(ports, runCli(opts.name ?? 'pgroute-watch', args, opts.env === undefined ? {} : { env: opts.env }), 30_000);
}

async function running(ports: PortBlock, proc: ProcessHandle, timeoutMs: number): Promise<ProcessHandle> {
  await waitForPort(ports.haproxy, '127.0.0.1', timeoutMs, { process: proc, what: `${proc.name} listening` });
  // Listening is not the end of start-up: pgroute says when HAProxy's master CLI answers too.
  await proc.waitForOutput(/pgroute is running/, timeoutMs);
  return proc;
}

/** HAProxy and the agent as separate processes, as an operator runs them by hand (startApart). */
export interface Apart {
  readonly routes: string;
  /** HAProxy's master CLI, for `pgroute reload` (`-S` in the state dir, where it looks). */
  readonly masterSocket: string;
  readonly haproxy: ProcessHandle;
  /** The agent now; after startAgent, the one it started. */
  agent: ProcessHandle;
  /** Starts `pgroute agent` again with the same arguments (after the test stopped it). */
  startAgent(): Promise<ProcessHandle>;
}

/**
 * `pgroute generate` (with `generate`, extra flags), `pgroute agent` on its routes.json (with `agent`,
 * extra flags, and `agentEnv`), and HAProxy (PGROUTE_HAPROXY, or haproxy) on its haproxy.cfg with a
 * master socket in the state dir; resolves once both listen.
 */
export async function startApart(
  ports: PortBlock,
  tenantsFile: string,
  stateDir: string,
  o: { generate?: readonly string[]; agent?: readonly string[]; agentEnv?: Record<string, string> } = {},
): Promise<Apart> {
  const gen = runCli('pgroute-generate', ['generate', '--tenants', tenantsFile, ...deploymentFlags(ports, stateDir, o.generate)]);
  const exit = await gen.exited;
  if (exit.code !== 0) throw new Error(`pgroute generate failed (${exit.code}):\n${gen.output()}`);
  const routes = join(stateDir, 'routes.json');
  const masterSocket = statePaths(stateDir).masterSocket;
  const spawnAgent = async (): Promise<ProcessHandle> => {
    const args = ['agent', '--routes', routes, '--port', String(ports.agent), '--http-port', String(ports.agentHealth), ...(o.agent ?? [])];
    const p = runCli('pgroute-agent', args, o.agentEnv === undefined ? {} : { env: o.agentEnv });
    await waitForPort(ports.agent, '127.0.0.1', 10_000, { process: p, what: 'the agent' });
    return p;
  };
  const agent = await spawnAgent();
  const haproxy = spawnLogged(process.env['PGROUTE_HAPROXY'] ?? 'haproxy', ['-W', '-db', '-S', `${masterSocket},mode,600`, '-f', join(stateDir, 'haproxy.cfg')], { name: 'haproxy' });
  await waitForPort(ports.haproxy, '127.0.0.1', 10_000, { process: haproxy, what: 'HAProxy' });
  // Controllable too, as `up` waits for: the master re-executes itself once its worker runs, and its
  // CLI refuses connections until then, while the worker already routes.
  await waitFor(async () => (await showProc(masterSocket).then((p) => p.workers.length > 0, () => false)), { timeoutMs: 10_000, what: "HAProxy's master CLI" });
  const apart: Apart = { routes, masterSocket, haproxy, agent, startAgent: async () => (apart.agent = await spawnAgent()) };
  return apart;
}

export interface CliRun {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
  readonly ms: number;
}

/** `pgroute <args>` to completion: exit code, output and how long it took. */
export function runCliOnce(args: readonly string[], timeoutMs = 60_000, env: Record<string, string | undefined> = {}): Promise<CliRun> {
  const t = Date.now();
  const merged = { ...process.env, ...env };
  for (const [k, v] of Object.entries(env)) if (v === undefined) delete merged[k];
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { cwd: REPO_ROOT, timeout: timeoutMs, env: merged }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1;
      resolve({ code, stdout, stderr, ms: Date.now() - t });
    });
  });
}

/** How many times the HAProxy behind this master socket has reloaded (`show proc` of the master CLI). */
export async function reloadCount(masterSocket: string): Promise<number> {
  return (await showProc(masterSocket)).reloads;
}

/** `pgroute <args> --state-dir <stateDir>`, which must succeed: its stdout. */
export async function cliOk(stateDir: string, ...args: string[]): Promise<string> {
  const r = await runCliOnce([...args, '--state-dir', stateDir]);
  if (r.code !== 0) throw new Error(`pgroute ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
  return r.stdout;
}

/** One series of the agent's /metrics on `httpPort` (the first with that name, any labels); NaN when absent. */
export async function agentMetric(httpPort: number, name: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${httpPort}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name} `) || l.startsWith(`${name}{`));
  return line === undefined ? NaN : Number(line.split(' ').pop());
}

/** A server's address and status as the running HAProxy worker of `stateDir` has them (`show stat`); '' when absent. */
export async function serverStat(stateDir: string, backend: string, server: string): Promise<{ addr: string; status: string }> {
  const row = parseShowStat(await haproxyCli(statePaths(stateDir).adminSocket, 'show stat')).find((r) => r.pxname === backend && r.svname === server);
  return { addr: row?.addr ?? '', status: row?.status ?? '' };
}

/** PostgreSQL servers and `pgroute up` on a tenants file of its own (startUpOn); stop() ends them all. */
export interface UpOnServers {
  readonly servers: PgServer[];
  readonly up: ProcessHandle;
  readonly tenantsFile: string;
  readonly stateDir: string;
  stop(): Promise<void>;
}

/** Starts `servers`, writes `tenants` (JSON is YAML) and runs `pgroute up` on them with `flags`. */
export async function startUpOn(ports: PortBlock, servers: readonly StartPostgresOptions[], tenants: readonly TenantSpec[], flags: readonly string[] = []): Promise<UpOnServers> {
  const pgs = await startPostgresMany(servers);
  const { dir, file } = writeTenantsFile(tenants);
  const stateDir = join(dir, 'state');
  const up = await startUp(ports, file, stateDir, flags);
  return {
    servers: pgs,
    up,
    tenantsFile: file,
    stateDir,
    async stop() {
      await up.stop('SIGINT', 10_000);
      await stopAll();
      for (const s of pgs) await s.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
