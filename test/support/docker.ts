/**
 * The real Docker engine for tests (Debian's docker.io 20.10, API 1.41).
 *
 * ensureDocker()     installs docker.io when dockerd is missing, starts dockerd in the background
 *                    (log: /tmp/pgroute-dockerd.log, flag --live-restore so containers survive a
 *                    daemon restart) when /var/run/docker.sock does not answer, and waits until the
 *                    Engine API answers. Idempotent; cheap when dockerd already runs.
 * restartDockerd()   stops dockerd (SIGTERM, waits for it to exit), optionally runs a callback
 *                    while it is down, starts it again and waits until it answers.
 * Containers:        testPrefix() names a run; runContainer() creates and starts a labelled
 *                    container; removeContainers(prefix) / removeNetworks(prefix) clean up.
 *
 * Containers and networks made here are registered for cleanup at process exit too (best effort,
 * synchronous `docker rm -f`), so a crashed test run does not leave them behind.
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import Dockerode from 'dockerode';
import { registerCleanup, sleep } from './process.js';

export const DOCKER_SOCKET = '/var/run/docker.sock';
export const DOCKERD_LOG = '/tmp/pgroute-dockerd.log';
const DOCKERD_PIDFILE = '/var/run/docker.pid';
/** Flags dockerd is started with. --live-restore: containers keep running while dockerd restarts. */
export const DOCKERD_ARGS = ['--live-restore'];

/** One API client for the tests (the engine on /var/run/docker.sock or DOCKER_HOST). */
export const docker = new Dockerode();

function dockerdPath(): string | undefined {
  for (const p of ['/usr/sbin/dockerd', '/usr/bin/dockerd']) if (fs.existsSync(p)) return p;
  const r = spawnSync('sh', ['-c', 'command -v dockerd'], { encoding: 'utf8' });
  return r.status === 0 && r.stdout.trim() !== '' ? r.stdout.trim() : undefined;
}

/** True when the engine answers a ping within the timeout. */
export async function dockerAnswers(timeoutMs = 1000): Promise<boolean> {
  const client = new Dockerode({ timeout: timeoutMs });
  try {
    await client.ping();
    return true;
  } catch {
    return false;
  }
}

async function waitForEngine(timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await dockerAnswers())) {
    if (Date.now() > deadline) {
      const log = fs.existsSync(DOCKERD_LOG) ? fs.readFileSync(DOCKERD_LOG, 'utf8').split('\n').slice(-30).join('\n') : '(no log)';
      throw new Error(`dockerd did not answer on ${DOCKER_SOCKET} within ${timeoutMs} ms ${what}; last lines of ${DOCKERD_LOG}:\n${log}`);
    }
    await sleep(100);
  }
}

function startDockerd(): void {
  const bin = dockerdPath();
  if (bin === undefined) throw new Error('dockerd is not installed; run scripts/setup.sh (apt-get install docker.io)');
  const log = fs.openSync(DOCKERD_LOG, 'a');
  fs.writeSync(log, `\n--- pgroute tests: starting ${bin} ${DOCKERD_ARGS.join(' ')} at ${new Date().toISOString()}\n`);
  // Detached in its own session: dockerd outlives the test process, like a system service would.
  const child = spawn(bin, DOCKERD_ARGS, { detached: true, stdio: ['ignore', log, log] });
  child.unref();
  fs.closeSync(log);
}

let ensured: Promise<void> | undefined;

/** Makes sure the Docker engine is installed, running and answering. */
export function ensureDocker(): Promise<void> {
  ensured ??= (async () => {
    if (await dockerAnswers()) return;
    if (dockerdPath() === undefined) {
      execFileSync('sh', ['-c', 'apt-get update -qq && apt-get install -y -qq --no-install-recommends docker.io'], {
        stdio: 'inherit',
        env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
      });
    }
    if (await dockerAnswers()) return; // someone else started it meanwhile
    startDockerd();
    await waitForEngine(30_000, 'after starting it');
  })().catch((err: unknown) => {
    ensured = undefined;
    throw err;
  });
  return ensured;
}

function dockerdPid(): number | undefined {
  try {
    const pid = Number(fs.readFileSync(DOCKERD_PIDFILE, 'utf8').trim());
    if (!Number.isInteger(pid) || pid <= 0) return undefined;
    process.kill(pid, 0);
    return pid;
  } catch {
    return undefined;
  }
}

/** Running, i.e. neither gone nor a zombie waiting to be reaped. */
function alive(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

export interface RestartTimings {
  /** SIGTERM until the dockerd process was gone. */
  stopMs: number;
  /** Start until the API answered again. */
  startMs: number;
}

/**
 * Stops the running dockerd (the one in /var/run/docker.pid) and starts it again. `whileDown` runs
 * after the old process has exited and before the new one starts.
 */
export async function restartDockerd(whileDown?: () => Promise<void>): Promise<RestartTimings> {
  await ensureDocker();
  const pid = dockerdPid();
  if (pid === undefined) throw new Error(`no running dockerd found via ${DOCKERD_PIDFILE}`);
  const t0 = Date.now();
  process.kill(pid, 'SIGTERM');
  const deadline = Date.now() + 30_000;
  while (alive(pid)) {
    if (Date.now() > deadline) throw new Error(`dockerd (pid ${pid}) did not exit within 30 s of SIGTERM; see ${DOCKERD_LOG}`);
    await sleep(50);
  }
  const stopMs = Date.now() - t0;
  if (whileDown) await whileDown();
  const t1 = Date.now();
  startDockerd();
  await waitForEngine(30_000, 'after restarting it');
  return { stopMs, startMs: Date.now() - t1 };
}

/** Whether the running dockerd keeps containers running across its own restart. */
export async function liveRestoreEnabled(): Promise<boolean> {
  const info = (await docker.info()) as { LiveRestoreEnabled?: boolean };
  return info.LiveRestoreEnabled === true;
}

// ---------------------------------------------------------------------------
// Containers and networks
// ---------------------------------------------------------------------------

/** A per-run name prefix, e.g. "pgrt-docker-source-1234-": every container/network of the run starts with it. */
export function testPrefix(what: string): string {
  return `pgrt-${what}-${process.pid}-${Date.now().toString(36)}-`;
}

const cleanupPrefixes = new Set<string>();

function registerPrefixCleanup(prefix: string): void {
  if (cleanupPrefixes.has(prefix)) return;
  cleanupPrefixes.add(prefix);
  registerCleanup({
    name: `docker objects ${prefix}*`,
    stop: async () => {
      await removeContainers(prefix);
      await removeNetworks(prefix);
    },
    stopSync: () => {
      const ids = spawnSync('docker', ['ps', '-aq', '--filter', `name=^/${prefix}`], { encoding: 'utf8' }).stdout?.trim();
      if (ids) spawnSync('docker', ['rm', '-f', ...ids.split(/\s+/)], { stdio: 'ignore' });
      const nets = spawnSync('docker', ['network', 'ls', '-q', '--filter', `name=^${prefix}`], { encoding: 'utf8' }).stdout?.trim();
      if (nets) spawnSync('docker', ['network', 'rm', ...nets.split(/\s+/)], { stdio: 'ignore' });
    },
  });
}

export interface RunContainerOptions {
  name: string;
  image: string;
  labels?: Record<string, string>;
  env?: Record<string, string>;
  /** Networks to attach, first one at create time; default: the default bridge. */
  networks?: readonly string[];
  /** Replaces the image's entrypoint, e.g. ['/bin/sleep', '3600'] for a container that only carries labels. */
  entrypoint?: string[];
  /** Create only, do not start. */
  noStart?: boolean;
}

/** Creates (and starts) a container; its name must start with a registered test prefix. */
export async function runContainer(opts: RunContainerOptions): Promise<Dockerode.Container> {
  const [first, ...rest] = opts.networks ?? [];
  const container = await docker.createContainer({
    name: opts.name,
    Image: opts.image,
    Labels: opts.labels ?? {},
    StopSignal: 'SIGINT', // PostgreSQL's fast shutdown (SIGTERM would wait for clients)
    Env: Object.entries(opts.env ?? {}).map(([k, v]) => `${k}=${v}`),
    ...(opts.entrypoint === undefined ? {} : { Entrypoint: opts.entrypoint }),
    HostConfig: { ...(first === undefined ? {} : { NetworkMode: first }), AutoRemove: false },
  });
  for (const net of rest) await docker.getNetwork(net).connect({ Container: container.id });
  if (!opts.noStart) await container.start();
  return container;
}

/** Creates a bridge network named `name` (which must start with a test prefix). */
export async function createNetwork(name: string): Promise<Dockerode.Network> {
  return docker.createNetwork({ Name: name, Driver: 'bridge', CheckDuplicate: true });
}

/** Registers a prefix so that its containers/networks are removed at process exit even if afterAll never runs. */
export function cleanupOnExit(prefix: string): void {
  registerPrefixCleanup(prefix);
}

/** Removes (force) every container whose name starts with prefix. */
export async function removeContainers(prefix: string): Promise<void> {
  const list = await docker.listContainers({ all: true, filters: { name: [`^/${prefix}`] } });
  await Promise.all(list.map((c) => docker.getContainer(c.Id).remove({ force: true, v: true }).catch(() => undefined)));
}

/** Removes every network whose name starts with prefix. */
export async function removeNetworks(prefix: string): Promise<void> {
  const list = await docker.listNetworks({ filters: { name: [`^${prefix}`] } });
  await Promise.all(list.filter((n) => n.Name.startsWith(prefix)).map((n) => docker.getNetwork(n.Id).remove().catch(() => undefined)));
}

/** The container's IP on a network (inspect). */
export async function containerIp(id: string, network: string): Promise<string | undefined> {
  const info = await docker.getContainer(id).inspect();
  const ip = info.NetworkSettings.Networks[network]?.IPAddress;
  return ip === undefined || ip === '' ? undefined : ip;
}
