// compose/docker-compose.yml against the real dockerd with docker-compose v1: both images are built
// on local stand-ins of haproxy:2.6 and node:20-bookworm-slim (no registry is reachable), the stack
// comes up with the locally built PostgreSQL image as the sample tenants, psql reaches acme and
// globex through the one published port, and `down -v --rmi local` leaves nothing of the project
// behind (containers, networks, volumes, built images).
//
// The project name, the tenants' network and the tenant ids are unique to the run, so other test
// files (and their `pgroute watch`es following every labelled container) are not disturbed.

import { execFile, execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureDocker } from '../support/docker.js';
import { ensurePostgresImage } from '../support/docker-images.js';
import { ensureBaseImages, HAPROXY_UID } from '../support/images.js';
import { portBlock } from '../support/ports.js';
import { registerCleanup, sleep } from '../support/process.js';
import { psql } from '../support/psql.js';

const ports = portBlock(9);
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const COMPOSE_FILE = path.join(ROOT, 'compose/docker-compose.yml');
const TAG = `${(process.pid % 1296).toString(36)}${Date.now().toString(36).slice(-5)}`;
const PROJECT = `pgrtcompose${TAG}`;
const NETWORK = `${PROJECT}-tenants`;
const PREFIX = `c${TAG}-`;
const PASSWORD = 'compose-test';
/** A CA bundle npm uses inside the image build (a TLS-intercepting proxy may sit in front of the registry). */
const CAFILE = '/etc/ssl/certs/ca-certificates.crt';
const BUILD_MS = 15 * 60_000;

const timings: Record<string, number> = {};
let env: NodeJS.ProcessEnv = {};
let cleanedUp = false;

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a command with a bound; never rejects (the result carries the exit code, null when killed). */
function run(cmd: string, args: readonly string[], timeoutMs: number, extraEnv: NodeJS.ProcessEnv = env): Promise<Run> {
  return new Promise((resolve) => {
    execFile(cmd, args, { env: { ...process.env, ...extraEnv }, timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: 64 * 1024 * 1024, cwd: ROOT }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof (err as { code?: unknown }).code === 'number' ? ((err as { code: number }).code) : null;
      resolve({ code, stdout: String(stdout), stderr: String(stderr) + (code === null && err ? `\n(${cmd} killed or failed to start: ${err.message})` : '') });
    });
  });
}

const compose = (args: readonly string[], timeoutMs: number): Promise<Run> => run('docker-compose', ['-p', PROJECT, '-f', COMPOSE_FILE, ...args], timeoutMs);

function tail(r: Run, lines = 40): string {
  return `${r.stdout}\n${r.stderr}`.trim().split('\n').slice(-lines).join('\n');
}

async function timed<T>(what: string, f: () => Promise<T>): Promise<T> {
  const t0 = Date.now();
  try {
    return await f();
  } finally {
    timings[what] = Date.now() - t0;
  }
}

function ensureCompose(): void {
  if (spawnSync('docker-compose', ['version'], { stdio: 'ignore' }).status === 0) return;
  execFileSync('sh', ['-c', 'apt-get install -y -qq --no-install-recommends docker-compose || (apt-get update -qq && apt-get install -y -qq --no-install-recommends docker-compose)'], {
    stdio: 'inherit',
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
  });
}

/** Labels of what compose made for the project, by kind (empty when all is gone). */
async function leftovers(): Promise<Record<string, string[]>> {
  const label = `label=com.docker.compose.project=${PROJECT}`;
  const list = async (args: string[]): Promise<string[]> => {
    const r = await run('docker', args, 30_000);
    if (r.code !== 0) throw new Error(`docker ${args.join(' ')} failed: ${tail(r)}`);
    return r.stdout.split('\n').map((s) => s.trim()).filter(Boolean);
  };
  return {
    containers: await list(['ps', '-a', '--filter', label, '--format', '{{.Names}}']),
    networks: [...new Set([...(await list(['network', 'ls', '--filter', label, '--format', '{{.Name}}'])), ...(await list(['network', 'ls', '--filter', `name=^${NETWORK}$`, '--format', '{{.Name}}']))])],
    volumes: await list(['volume', 'ls', '--filter', label, '--format', '{{.Name}}']),
    images: (await list(['images', '--format', '{{.Repository}}:{{.Tag}}'])).filter((i) => i.startsWith(`${PROJECT}_`)),
  };
}

async function down(): Promise<Run> {
  const r = await compose(['down', '-v', '--rmi', 'local', '--timeout', '10'], 120_000);
  cleanedUp = r.code === 0;
  return r;
}

/** psql through the published port until the tenant's server answers (a new container needs a moment). */
async function clusterName(tenant: string, timeoutMs: number): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    const r = await psql({ port: ports.haproxy, user: 'postgres', db: 'postgres', password: PASSWORD, options: `-c pgroute.tenant=${tenant}`, command: 'SHOW cluster_name', timeoutMs: 10_000 });
    if (r.code === 0) return r.stdout.trim();
    last = r.stderr.trim();
    await sleep(250);
  }
  throw new Error(`psql to tenant ${tenant} through 127.0.0.1:${ports.haproxy} did not succeed within ${timeoutMs} ms; last error: ${last}`);
}

describe('compose/docker-compose.yml (docker-compose v1, real dockerd)', () => {
  beforeAll(async () => {
    await ensureDocker();
    ensureCompose();
    const postgres = await timed('postgres image', () => ensurePostgresImage());
    const bases = await timed('base images', () => ensureBaseImages());
    // No DOCKER_GID: `docker-compose up` must work as documented, with nothing set first.
    env = {
      PGROUTE_PORT: String(ports.haproxy),
      PGROUTE_STATS_PORT: String(ports.stats),
      PGROUTE_NETWORK: NETWORK,
      PGROUTE_SAMPLE_IMAGE: postgres,
      PGROUTE_SAMPLE_PASSWORD: PASSWORD,
      PGROUTE_SAMPLE_PREFIX: PREFIX,
      PGROUTE_LOG_LEVEL: 'info',
      HAPROXY_BASE: bases.HAPROXY_BASE,
      NODE_BASE: bases.NODE_BASE,
      NPM_CAFILE: fs.existsSync(CAFILE) ? CAFILE : '',
      COMPOSE_HTTP_TIMEOUT: '300',
    };
    registerCleanup({
      name: `compose project ${PROJECT}`,
      stop: async () => {
        if (!cleanedUp) await down();
      },
      stopSync: () => {
        if (cleanedUp) return;
        spawnSync('docker-compose', ['-p', PROJECT, '-f', COMPOSE_FILE, 'down', '-v', '--rmi', 'local', '--timeout', '5'], { env: { ...process.env, ...env }, stdio: 'ignore', timeout: 60_000 });
      },
    });
    // Build both images under fixed tags first: the project's own images (removed by `down --rmi
    // local`) then come from the layer cache, which survives for the next run.
    const args = ['--build-arg', `HAPROXY_BASE=${bases.HAPROXY_BASE}`];
    const h = await timed('docker build haproxy/', () => run('docker', ['build', '-q', ...args, '-t', 'pgroute-test/pgroute-haproxy:compose', 'haproxy'], BUILD_MS));
    if (h.code !== 0) throw new Error(`docker build haproxy/ failed:\n${tail(h)}`);
    const p = await timed('docker build .', () =>
      run('docker', ['build', '-q', ...args, '--build-arg', `NODE_BASE=${bases.NODE_BASE}`, '--build-arg', `NPM_CAFILE=${env.NPM_CAFILE ?? ''}`, '-t', 'pgroute-test/pgroute:compose', '.'], BUILD_MS),
    );
    if (p.code !== 0) throw new Error(`docker build . failed:\n${tail(p)}`);
  }, BUILD_MS * 2 + 120_000);

  afterAll(async () => {
    try {
      if (!cleanedUp) {
        const r = await down();
        if (r.code !== 0) console.error(`docker-compose down failed:\n${tail(r)}`);
      }
    } finally {
      console.log(`compose timings (ms): ${JSON.stringify(timings)}`);
    }
  }, 180_000);

  it('comes up and routes psql through the one published port to acme and globex', async () => {
    const up = await timed('up -d --build', () => compose(['up', '-d', '--build'], BUILD_MS));
    expect(up.code, tail(up)).toBe(0);

    const t0 = Date.now();
    try {
      expect(await clusterName(`${PREFIX}acme`, 90_000)).toBe('acme');
      timings['up to first routed psql'] = Date.now() - t0;
      expect(await clusterName(`${PREFIX}globex`, 30_000)).toBe('globex');
    } catch (err) {
      const logs = await compose(['logs', '--no-color', '--tail', '40'], 30_000);
      throw new Error(`${(err as Error).message}\n--- docker-compose logs:\n${tail(logs, 120)}`);
    }

    // A tenant nobody runs is refused by pgroute, not sent anywhere.
    const unknown = await psql({ port: ports.haproxy, password: PASSWORD, options: `-c pgroute.tenant=${PREFIX}initech`, command: 'SELECT 1', timeoutMs: 10_000 });
    expect(unknown.code).not.toBe(0);
    expect(unknown.stderr).toMatch(new RegExp(`no tenant "${PREFIX}initech" is served here`));
  }, BUILD_MS + 180_000);

  it('reports haproxy and pgroute healthy (the compose healthchecks)', async () => {
    const deadline = Date.now() + 60_000;
    let states: Record<string, string> = {};
    while (Date.now() < deadline) {
      states = {};
      for (const service of ['haproxy', 'pgroute']) {
        const id = (await compose(['ps', '-q', service], 30_000)).stdout.trim();
        const r = await run('docker', ['inspect', '-f', '{{.State.Health.Status}}', id], 30_000);
        states[service] = r.stdout.trim() || tail(r, 3);
      }
      if (Object.values(states).every((s) => s === 'healthy')) break;
      await sleep(1_000);
    }
    expect(states).toEqual({ haproxy: 'healthy', pgroute: 'healthy' });
  }, 90_000);

  it('publishes the stats port on 127.0.0.1 only and runs both containers as uid 99', async () => {
    const port = await compose(['port', 'haproxy', '8404'], 30_000);
    expect(port.code, tail(port)).toBe(0);
    expect(port.stdout.trim()).toBe(`127.0.0.1:${ports.stats}`);
    const metrics = await fetch(`http://127.0.0.1:${ports.stats}/metrics`, { signal: AbortSignal.timeout(5_000) });
    expect(metrics.status).toBe(200);
    expect(await metrics.text()).toMatch(/haproxy_backend_status\{proxy="pg\./);

    // A tenant container on the same network may not read them (only the host, through the gateway).
    // A throwaway container on the tenants' network (with node, from pgroute's image) asks for them.
    const probe = "const t = setTimeout(() => console.log('no answer'), 8000); fetch('http://haproxy:8404/metrics', { signal: AbortSignal.timeout(5000) }).then((r) => console.log('status', r.status), (e) => console.log('refused', e.cause?.code ?? e.name)).finally(() => clearTimeout(t))";
    const fromTenant = await run('docker', ['run', '--rm', '--network', NETWORK, '--entrypoint', 'node', 'pgroute-test/pgroute:compose', '-e', probe], 60_000);
    expect(fromTenant.code, tail(fromTenant)).toBe(0);
    // Refused: the connection is closed unanswered (no HTTP status, whatever the client makes of it).
    expect(fromTenant.stdout.trim()).toMatch(/^(refused \S+|no answer)$/);

    // The containers' main processes (pgroute starts as root only to join the Docker socket's group).
    for (const service of ['haproxy', 'pgroute']) {
      const status = await compose(['exec', '-T', service, 'cat', '/proc/1/status'], 30_000);
      expect(status.code, tail(status)).toBe(0);
      expect(/^Uid:\s+(\d+)\s+(\d+)\s+(\d+)/m.exec(status.stdout)?.slice(1)).toEqual([String(HAPROXY_UID), String(HAPROXY_UID), String(HAPROXY_UID)]);
    }
  }, 60_000);

  it('down -v --rmi local leaves no container, network, volume or built image of the project', async () => {
    const r = await timed('down -v --rmi local', () => down());
    expect(r.code, tail(r)).toBe(0);
    expect(await leftovers()).toEqual({ containers: [], networks: [], volumes: [], images: [] });
  }, 180_000);
});
