// `pgroute tenant create|enable|disable|delete|list|show` against the real dockerd, with
// `pgroute watch --source docker --spawn-haproxy` routing (HAProxy on the host reaches the tenant
// network's container addresses directly):
// create -> container running, password file 0600, access disabled (refused) -> enable -> routable
// with the password within a second, no reload -> disable --kill-sessions -> the open session ends and
// new connections are refused within a second -> delete (volume kept) -> create again over the kept
// volume (same password) -> delete --purge (volume gone).
// The generated password never appears in anything pgroute printed or logged, nor in the container's
// configuration (`docker inspect`): the container reads it from /run/pgroute/postgres-password
// (POSTGRES_PASSWORD_FILE), uploaded into it before it started.
//
// Until cli/pgroute.ts registers the tenant and status commands, the one-shot commands run through
// an equivalent entry point built from dist/cli/tenant.js and dist/cli/status.js (see pgrouteOnce).

import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readTar, type TarEntry } from '../../generator/src/tenants-docker/tar.js';
import { statePaths } from '../../generator/src/index.js';
import { cleanupOnExit, containerIp, docker, ensureDocker, removeContainers, removeNetworks, testPrefix } from '../support/docker.js';
import { ensurePostgresImage } from '../support/docker-images.js';
import { reloadCount, runCliOnce, startWatch, type CliRun } from '../support/pgroute.js';
import { portBlock } from '../support/ports.js';
import { sleep, waitFor, type ProcessHandle } from '../support/process.js';
import { psql } from '../support/psql.js';

const ports = portBlock(10);
const P = testPrefix('tenant-lifecycle');
const TAG = `${(process.pid % 1296).toString(36)}${Date.now().toString(36).slice(-4)}`;
/** Tenant ids unique to this run: container names (pgroute-tenant-<id>) are global to the engine. */
const ACME = `tl${TAG}-acme`;
const BETA = `tl${TAG}-beta`;
const NETWORK = `${P}net`;
const WITHIN_MS = 1_000;

let image = '';
let dir = '';
let state = '';
let watch: ProcessHandle | undefined;
let password = '';
/** Everything pgroute printed or logged, for the "password never shown" check. */
const transcript: string[] = [];
const timings: Record<string, number> = {};

// ---- the pgroute command, one shot --------------------------------------------------------------




/** `pgroute <args>` to completion; what it printed and logged goes to the transcript. */
async function pgrouteOnce(args: readonly string[]): Promise<CliRun> {
  const r = await runCliOnce(args, 60_000);
  transcript.push(`$ pgroute ${args.join(' ')}\n${r.stdout}${r.stderr}`);
  return r;
}

async function pgrouteOk(args: readonly string[]): Promise<CliRun> {
  const r = await pgrouteOnce(args);
  if (r.code !== 0) throw new Error(`pgroute ${args.join(' ')} exited ${r.code}:\n${r.stdout}\n${r.stderr}`);
  return r;
}

const tenantCmd = (...args: string[]): string[] => ['tenant', ...args, '--state-dir', state];

// ---- clients ------------------------------------------------------------------------------------

function client(cfg: pg.ClientConfig): pg.Client {
  const c = new pg.Client({ user: 'postgres', database: 'postgres', connectionTimeoutMillis: 2_000, ...cfg });
  c.on('error', () => {});
  return c;
}

/** SHOW cluster_name through pgroute with the password, on a fresh connection; throws with the server's error. */
async function routed(tenant: string): Promise<string> {
  const c = client({ host: '127.0.0.1', port: ports.haproxy, options: `-c pgroute.tenant=${tenant}`, password });
  try {
    await c.connect();
    return (await c.query<{ cluster_name: string }>('SHOW cluster_name')).rows[0]?.cluster_name ?? '';
  } finally {
    await c.end().catch(() => undefined);
  }
}

async function direct(ip: string, pw: string): Promise<string> {
  const c = client({ host: ip, port: 5432, password: pw });
  try {
    await c.connect();
    return (await c.query<{ cluster_name: string }>('SHOW cluster_name')).rows[0]?.cluster_name ?? '';
  } finally {
    await c.end().catch(() => undefined);
  }
}

const refusal = (tenant: string): RegExp => new RegExp(`no tenant "${tenant}" is served here`);

async function psqlRouted(tenant: string, pw: string | undefined): Promise<{ ok: boolean; text: string }> {
  const r = await psql({ port: ports.haproxy, db: 'postgres', options: `-c pgroute.tenant=${tenant}`, command: 'SHOW cluster_name', timeoutMs: 5_000, ...(pw === undefined ? {} : { password: pw }) });
  return r.code === 0 ? { ok: true, text: r.stdout.trim() } : { ok: false, text: r.stderr.trim() };
}

function routesEntry(tenant: string): { enabled: boolean } | undefined {
  try {
    const doc = JSON.parse(readFileSync(join(state, 'routes.json'), 'utf8')) as { tenants: { id: string; enabled: boolean }[] };
    return doc.tenants.find((t) => t.id === tenant);
  } catch {
    return undefined;
  }
}

/** What the container holds at a path (Docker's archive endpoint; the container need not run). */
async function containerEntries(container: string, path: string): Promise<TarEntry[]> {
  const stream = await docker.getContainer(container).getArchive({ path });
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.from(chunk as Buffer));
  return readTar(Buffer.concat(chunks));
}

/** The password must be nowhere in the container's configuration or state as Docker reports it. */
async function expectNoPasswordInInspect(container: string, pw: string): Promise<void> {
  const info = await docker.getContainer(container).inspect();
  expect(JSON.stringify(info)).not.toContain(pw);
  expect(info.Config.Env.filter((e) => e.startsWith('POSTGRES_'))).toEqual(['POSTGRES_PASSWORD_FILE=/run/pgroute/postgres-password']);
  expect(info.HostConfig.Binds ?? []).toEqual([]);
  expect(info.Mounts.map((m) => m.Type)).toEqual(['volume']);
}

async function psqlDirect(host: string, pw: string | undefined): Promise<{ ok: boolean; text: string }> {
  const r = await psql({ host, port: 5432, db: 'postgres', command: 'SHOW cluster_name', timeoutMs: 5_000, ...(pw === undefined ? {} : { password: pw }) });
  return r.code === 0 ? { ok: true, text: r.stdout.trim() } : { ok: false, text: r.stderr.trim() };
}

async function volumeExists(name: string): Promise<boolean> {
  try {
    await docker.getVolume(name).inspect();
    return true;
  } catch {
    return false;
  }
}

// ---- lifecycle ----------------------------------------------------------------------------------

beforeAll(async () => {
  await ensureDocker();
  image = await ensurePostgresImage();
  cleanupOnExit(P);
  cleanupOnExit(`pgroute-tenant-tl${TAG}-`);
  dir = mkdtempSync(join(tmpdir(), 'pgroute-tenant-lifecycle-'));
  state = join(dir, 'state');
  const t = Date.now();
  watch = await startWatch(ports, state, ['--source', 'docker', '--spares', '8']);
  timings['pgroute watch start'] = Date.now() - t;
}, 180_000);

afterAll(async () => {
  await watch?.stop('SIGINT', 15_000);
  await removeContainers(`pgroute-tenant-tl${TAG}-`).catch(() => undefined);
  for (const id of [ACME, BETA]) await docker.getVolume(`pgroute-tenant-${id}-data`).remove().catch(() => undefined);
  await removeNetworks(P).catch(() => undefined);
  if (dir) rmSync(dir, { recursive: true, force: true });
  console.log(`tenant-lifecycle timings (ms): ${JSON.stringify(timings)}`);
}, 60_000);

describe('pgroute tenant (real dockerd, pgroute watch --source docker --spawn-haproxy)', () => {
  let reloadsAtStart = 0;
  let ip = '';

  it('create: a running, labelled, limited container; password file 0600; access disabled, so refused', async () => {
    reloadsAtStart = await reloadCount(statePaths(state).masterSocket);
    const r = await pgrouteOk(tenantCmd('create', ACME, '--image', image, '--network', NETWORK, '--cpus', '0.5', '--memory', '256m'));
    timings['tenant create (command)'] = r.ms;
    const secret = join(state, 'tenants', `${ACME}.password`);
    expect(r.stdout).toContain(secret);
    expect(r.stdout).toMatch(/access is DISABLED/);

    expect(statSync(secret).mode & 0o777).toBe(0o600);
    expect(statSync(join(state, 'tenants')).mode & 0o777).toBe(0o700);
    password = readFileSync(secret, 'utf8').trim();
    expect(password).toMatch(/^[A-Za-z0-9_-]{32}$/);
    // The switch, with the version that replicas compare (docs/replicas.md).
    expect(JSON.parse(readFileSync(join(state, 'access.json'), 'utf8'))).toMatchObject({ disabled: [ACME], entries: { [ACME]: { state: 'disabled' } } });

    const info = await docker.getContainer(`pgroute-tenant-${ACME}`).inspect();
    expect(info.State.Running).toBe(true);
    expect(info.Config.Labels).toMatchObject({ 'pgroute.tenant': ACME, 'pgroute.network': NETWORK, 'pgroute.managed': 'true' });
    expect(info.HostConfig.NanoCpus).toBe(5e8);
    expect(info.HostConfig.Memory).toBe(256 * 1024 ** 2);
    expect(info.Mounts).toEqual([expect.objectContaining({ Type: 'volume', Name: `pgroute-tenant-${ACME}-data`, Destination: '/var/lib/postgresql/data' })]);
    expect(Object.keys(info.NetworkSettings.Networks)).toEqual([NETWORK]);
    ip = (await containerIp(info.Id, NETWORK)) ?? '';
    expect(ip).not.toBe('');

    // The server is up and needs the password (directly, on the tenant network) ...
    const t = Date.now();
    await waitFor(() => direct(ip, password).then((c) => c === ACME, () => false), { timeoutMs: 30_000, what: 'the tenant container to accept the password' });
    timings['create -> ready'] = Date.now() - t;
    await expect(direct(ip, 'wrong-password')).rejects.toThrow(/password authentication failed/);
    // psql with the password from the 0600 file logs in; without it, it does not.
    expect(await psqlDirect(ip, password)).toEqual({ ok: true, text: ACME });
    expect((await psqlDirect(ip, undefined)).ok).toBe(false);

    // The password is not in the container's configuration: `docker inspect` shows the file's path only ...
    await expectNoPasswordInInspect(`pgroute-tenant-${ACME}`, password);
    // ... the file was uploaded into the container, readable by its postgres (uid 70 in the test image) alone.
    const secretEntries = await containerEntries(`pgroute-tenant-${ACME}`, '/run/pgroute');
    expect(secretEntries.map(({ name, type, mode, uid, gid }) => ({ name, type, mode, uid, gid }))).toEqual([
      { name: 'pgroute', type: 'dir', mode: 0o700, uid: 70, gid: 70 },
      { name: 'pgroute/postgres-password', type: 'file', mode: 0o400, uid: 70, gid: 70 },
    ]);
    // ... and it outlives a restart (restart policy, dockerd restarts): the entrypoint reads it on every start.
    await docker.getContainer(`pgroute-tenant-${ACME}`).restart({ t: 10 });
    ip = (await containerIp(info.Id, NETWORK)) ?? '';
    await waitFor(() => direct(ip, password).then((c) => c === ACME, () => false), { timeoutMs: 30_000, what: 'the restarted tenant container to accept the password' });
    expect((await docker.getContainer(`pgroute-tenant-${ACME}`).inspect()).State.Running).toBe(true);
    // ... the Docker source has it, disabled ...
    await waitFor(() => routesEntry(ACME)?.enabled === false, { timeoutMs: 10_000, process: watch, what: `${ACME} in routes.json, disabled` });
    // ... so pgroute refuses it, like an unknown tenant.
    const p = await psqlRouted(ACME, password);
    expect(p.ok).toBe(false);
    expect(p.text).toMatch(refusal(ACME));
  });

  it('list and show: the managed tenant with its state, access, address, image and limits (no password)', async () => {
    const list = JSON.parse((await pgrouteOk(tenantCmd('list', '--json'))).stdout) as { id: string }[];
    expect(list.find((t) => t.id === ACME)).toEqual({
      id: ACME,
      container: `pgroute-tenant-${ACME}`,
      state: 'running',
      enabled: false,
      access: 'disabled',
      address: `${ip}:5432`,
      network: NETWORK,
      image,
      limits: { cpus: 0.5, memory: '256m' },
    });
    const table = (await pgrouteOk(tenantCmd('list'))).stdout;
    expect(table).toMatch(new RegExp(`^${ACME}\\s+running\\s+disabled\\s+${ip.replace(/\./g, '\\.')}:5432\\s+`, 'm'));
    const show = JSON.parse((await pgrouteOk(tenantCmd('show', ACME, '--json'))).stdout) as Record<string, unknown>;
    expect(show).toMatchObject({ id: ACME, state: 'running', enabled: false, volume: `pgroute-tenant-${ACME}-data`, passwordFile: join(state, 'tenants', `${ACME}.password`) });
    expect((await pgrouteOk(tenantCmd('show', ACME))).stdout).toMatch(/^access:\s+disabled/m);
  });

  it('create refuses an existing tenant and an invalid id', async () => {
    const again = await pgrouteOnce(tenantCmd('create', ACME, '--image', image, '--network', NETWORK));
    expect(again.code).toBe(2);
    expect(again.stderr).toMatch(/already exists/);
    const bad = await pgrouteOnce(tenantCmd('create', 'Not_Valid', '--image', image));
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/tenant id "Not_Valid" is invalid/);
  });

  it('enable: psql with the password succeeds within a second, without a reload', async () => {
    const r = await pgrouteOk(tenantCmd('enable', ACME));
    timings['tenant enable (command)'] = r.ms;
    const since = Date.now();
    let last = '';
    for (;;) {
      try {
        if ((await routed(ACME)) === ACME) break;
      } catch (err) {
        last = (err as Error).message;
      }
      if (Date.now() - since > 10_000) throw new Error(`not routable 10 s after enable (last: ${last})\n${watch?.output(30) ?? ''}`);
      await sleep(10);
    }
    timings['enable -> routable (after the command returned)'] = Date.now() - since;
    timings['enable -> routable (from the command start)'] = Date.now() - since + r.ms;
    expect(Date.now() - since).toBeLessThan(WITHIN_MS);
    expect(await psqlRouted(ACME, password)).toEqual({ ok: true, text: ACME });
    const noPassword = await psqlRouted(ACME, undefined);
    expect(noPassword.ok).toBe(false);
    expect(await reloadCount(statePaths(state).masterSocket)).toBe(reloadsAtStart);
  });

  it('pause: list and show say paused (not enabled) while it holds; resume: enabled again', async () => {
    expect((await pgrouteOk(tenantCmd('pause', ACME))).stdout).toMatch(new RegExp(`^tenant ${ACME} paused`));
    const rows = JSON.parse((await pgrouteOk(tenantCmd('list', '--json'))).stdout) as { id: string; access: string; enabled: boolean }[];
    expect(rows.find((t) => t.id === ACME)).toMatchObject({ access: 'paused', enabled: true });
    expect((await pgrouteOk(tenantCmd('list'))).stdout).toMatch(new RegExp(`^${ACME}\\s+running\\s+paused\\s+`, 'm'));
    expect(JSON.parse((await pgrouteOk(tenantCmd('show', ACME, '--json'))).stdout)).toMatchObject({ access: 'paused' });
    expect((await pgrouteOk(tenantCmd('show', ACME))).stdout).toMatch(/^access:\s+paused \(access\.json: new connections are held until `pgroute tenant resume`\)$/m);
    expect((await pgrouteOk(['status', '--state-dir', state])).stdout).toMatch(new RegExp(`${ACME}\\s.*paused`));

    await pgrouteOk(tenantCmd('resume', ACME));
    expect((await pgrouteOk(tenantCmd('list'))).stdout).toMatch(new RegExp(`^${ACME}\\s+running\\s+enabled\\s+`, 'm'));
    expect((await pgrouteOk(tenantCmd('show', ACME))).stdout).toMatch(/^access:\s+enabled$/m);
    expect(await psqlRouted(ACME, password)).toEqual({ ok: true, text: ACME });
  });

  it('disable --kill-sessions: the open session ends and new connections are refused within a second', async () => {
    const session = client({ host: '127.0.0.1', port: ports.haproxy, options: `-c pgroute.tenant=${ACME}`, password });
    await session.connect();
    expect((await session.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
    let endedAt: number | undefined;
    session.on('end', () => (endedAt ??= Date.now()));

    const start = Date.now();
    const r = await pgrouteOk(tenantCmd('disable', ACME, '--kill-sessions'));
    const returned = Date.now();
    timings['tenant disable --kill-sessions (command)'] = r.ms;
    expect(r.stdout).toMatch(/open sessions shut down on pg\.[a-z0-9.-]+\/s1/);

    await waitFor(() => endedAt !== undefined, { timeoutMs: 5_000, what: 'the open session to end' });
    await expect(session.query('SELECT 1')).rejects.toThrow();
    timings['disable -> session ended (from the command start)'] = (endedAt as number) - start;
    expect(endedAt as number).toBeLessThan(returned + WITHIN_MS);

    let refusedAt: number | undefined;
    let last = '';
    while (refusedAt === undefined) {
      try {
        last = `routed to ${await routed(ACME)}`;
      } catch (err) {
        last = (err as Error).message;
        if (refusal(ACME).test(last)) refusedAt = Date.now();
      }
      if (Date.now() - returned > 10_000) throw new Error(`not refused 10 s after disable (last: ${last})`);
    }
    timings['disable -> refused (after the command returned)'] = refusedAt - returned;
    timings['disable -> refused (from the command start)'] = refusedAt - start;
    expect(refusedAt - returned).toBeLessThan(WITHIN_MS);
    expect((await psqlRouted(ACME, password)).text).toMatch(refusal(ACME));
    expect(await reloadCount(statePaths(state).masterSocket)).toBe(reloadsAtStart);
  });

  it('delete: the container goes, the volume and password file stay, the access switch is back to enabled', async () => {
    const r = await pgrouteOk(tenantCmd('delete', ACME));
    timings['tenant delete (command)'] = r.ms;
    await expect(docker.getContainer(`pgroute-tenant-${ACME}`).inspect()).rejects.toMatchObject({ statusCode: 404 });
    expect(await volumeExists(`pgroute-tenant-${ACME}-data`)).toBe(true);
    expect(statSync(join(state, 'tenants', `${ACME}.password`)).isFile()).toBe(true);
    // The switch is back to enabled (kept with a newer version, so every replica learns of it and an
    // older "disabled" elsewhere cannot win).
    const access = JSON.parse(readFileSync(join(state, 'access.json'), 'utf8')) as { disabled: string[]; entries: Record<string, { state: string }> };
    expect(access.disabled).toEqual([]);
    expect(access.entries[ACME]?.state).toBe('enabled');
    // Gone from the Docker source: refused as unknown.
    await waitFor(() => routesEntry(ACME) === undefined, { timeoutMs: 10_000, what: `${ACME} gone from routes.json` });
    expect((await psqlRouted(ACME, password)).text).toMatch(refusal(ACME));
  });

  it('create over the kept volume: its password file is reused, uploaded again, and still logs in', async () => {
    const secret = join(state, 'tenants', `${ACME}.password`);
    const r = await pgrouteOk(tenantCmd('create', ACME, '--image', image, '--network', NETWORK));
    expect(r.stderr).toMatch(/reusing the kept data volume/);
    expect(readFileSync(secret, 'utf8').trim()).toBe(password);
    expect(statSync(secret).mode & 0o777).toBe(0o600);
    await expectNoPasswordInInspect(`pgroute-tenant-${ACME}`, password);
    const again = (await containerIp(`pgroute-tenant-${ACME}`, NETWORK)) ?? '';
    await waitFor(() => direct(again, password).then((c) => c === ACME, () => false), { timeoutMs: 30_000, what: 'the re-created tenant container to accept the password' });
    expect(await psqlDirect(again, password)).toEqual({ ok: true, text: ACME });
    await pgrouteOk(tenantCmd('delete', ACME, '--purge'));
    expect(await volumeExists(`pgroute-tenant-${ACME}-data`)).toBe(false);
  });

  it('delete --purge: the volume and the password file go too', async () => {
    await pgrouteOk(tenantCmd('create', BETA, '--image', image, '--network', NETWORK));
    const secret = join(state, 'tenants', `${BETA}.password`);
    expect(statSync(secret).mode & 0o777).toBe(0o600);
    const betaPassword = readFileSync(secret, 'utf8').trim();
    expect(betaPassword).not.toBe(password);
    await expectNoPasswordInInspect(`pgroute-tenant-${BETA}`, betaPassword);
    const r = await pgrouteOk(tenantCmd('delete', BETA, '--purge'));
    timings['tenant delete --purge (command)'] = r.ms;
    await expect(docker.getContainer(`pgroute-tenant-${BETA}`).inspect()).rejects.toMatchObject({ statusCode: 404 });
    expect(await volumeExists(`pgroute-tenant-${BETA}-data`)).toBe(false);
    expect(() => statSync(secret)).toThrow();
    const all = [...transcript, watch?.output() ?? ''].join('\n');
    expect(all).not.toContain(betaPassword);
  });

  it('the password never appears in what pgroute printed or logged', () => {
    expect(password).not.toBe('');
    const all = [...transcript, watch?.output() ?? ''].join('\n');
    expect(all.length).toBeGreaterThan(1000);
    expect(all).not.toContain(password);
  });
});
