// Who may declare a tenant on Docker, end to end: `pgroute watch --source docker --spawn-haproxy
// --docker-constraint label=...` against the real dockerd, real HAProxy, PostgreSQL containers and
// `pgroute tenant create`. Every stranger here would have taken, split or switched off a tenant
// before Docker claims had owners (issue 9, item 1):
// 1. A container that is not admitted (it forges pgroute.managed=true) is refused with its reason,
//    logged and counted, and never routed.
// 2. An older container labelled with the id of a tenant pgroute created, even one admitted by the
//    operator's constraint, never becomes its primary, also not while the tenant's container is
//    deleted and created again (before: the oldest claim won).
// 3. Claims of a tenant admitted by the constraint are judged one by one: a claim with a bad port is
//    refused alone (before: the tenant was refused), a stranger's pgroute.enabled=false changes
//    nothing (before: it disabled the tenant), and a second admitted claimant of the primary is
//    refused for both sides, also when it is the older one (before: the older one won). What the
//    constraint admits is trusted, though: alone, the rival serves (no memory, as documented).

import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanupOnExit, containerIp, createNetwork, docker, ensureDocker, removeContainers, removeNetworks, runContainer, testPrefix } from '../support/docker.js';
import { ensurePostgresImage } from '../support/docker-images.js';
import { runCliOnce, startWatch, type CliRun } from '../support/pgroute.js';
import { portBlock } from '../support/ports.js';
import { sleep, waitFor, type ProcessHandle } from '../support/process.js';
import { psql } from '../support/psql.js';
import { clusterName } from '../support/routed.js';

const ports = portBlock(55);
const P = testPrefix('docker-ownership');
const TAG = `${(process.pid % 1296).toString(36)}${Date.now().toString(36).slice(-4)}`;
const id = (name: string): string => `do${TAG}-${name}`;
const ACME = id('acme');
const SHOP = id('shop');
const STRANGER = id('stranger');
const NETWORK = `${P}net`;
/** The operator's constraint: containers carrying this label with this run's value may declare tenants. */
const RUN_LABEL = 'com.example.pgroute-run';
const RUN = `run-${TAG}`;
const WITHIN_MS = 1_000;

let image = '';
let dir = '';
let state = '';
let watch: ProcessHandle | undefined;
let password = '';
const timings: Record<string, number> = {};

// ---- pgroute and its log ------------------------------------------------------------------------

async function pgrouteOk(args: readonly string[]): Promise<CliRun> {
  const r = await runCliOnce(args, 60_000);
  if (r.code !== 0) throw new Error(`pgroute ${args.join(' ')} exited ${r.code}:\n${r.stdout}\n${r.stderr}`);
  return r;
}
const tenantCmd = (...args: string[]): string[] => ['tenant', ...args, '--state-dir', state];

interface Refusal {
  where: string;
  tenant?: string;
  reason: string;
}
/** The refusals pgroute logged (one JSON object a line, after the handle's "err| ") for the container named P + name. */
function refusalsOf(name: string): Refusal[] {
  const out: Refusal[] = [];
  for (const line of watch?.outputLines() ?? []) {
    if (!line.includes('tenant definition refused') || !line.includes(`docker container ${P}${name} (`)) continue;
    try {
      const r = JSON.parse(line.slice(line.indexOf('{'))) as Refusal;
      if (r.where.startsWith(`docker container ${P}${name} (`)) out.push(r);
    } catch {
      // not a log line of pgroute's
    }
  }
  return out;
}
async function refusedWith(name: string, reason: RegExp): Promise<Refusal> {
  return waitFor(() => refusalsOf(name).find((r) => reason.test(r.reason)), { timeoutMs: 10_000, what: `a refusal of ${P}${name} matching ${reason}`, ...(watch ? { process: watch } : {}) });
}

async function refusedGauge(): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${ports.agentHealth}/metrics`, { signal: AbortSignal.timeout(5_000) })).text();
  const m = /^pgroute_tenants\{state="refused"\} (\d+)$/m.exec(text);
  if (!m) throw new Error(`no pgroute_tenants{state="refused"} in /metrics:\n${text.slice(0, 2000)}`);
  return Number(m[1]);
}

// ---- clients ------------------------------------------------------------------------------------

/** Every outcome clients saw, per tenant, in order: a stranger's server must never appear. */
const seen: Record<string, string[]> = {};

/** SHOW cluster_name through pgroute (the tenant's password; strangers' servers trust anyone): the name, or 'refused <SQLSTATE>'. */
async function outcome(tenant: string): Promise<string> {
  let result: string;
  try {
    result = await clusterName({ host: '127.0.0.1', port: ports.haproxy, user: 'postgres', password, options: `-c pgroute.tenant=${tenant}` });
  } catch (err) {
    const e = err as Error & { code?: string };
    result = e.code === undefined ? `error: ${e.message}` : `refused ${e.code}`;
  }
  (seen[tenant] ??= []).push(result);
  return result;
}

async function reaches(what: string, tenant: string, want: string, since: number, limitMs = 30_000): Promise<number> {
  let last = '';
  while ((last = await outcome(tenant)) !== want) {
    if (Date.now() - since > limitMs) throw new Error(`${what}: ${tenant} did not reach "${want}" within ${limitMs} ms (last: ${last})\n${watch?.output(30) ?? ''}`);
    await sleep(20);
  }
  timings[what] = Date.now() - since;
  return timings[what] as number;
}

/** Keeps asking for `tenant` until stopped; resolves with every outcome seen meanwhile. */
function pollWhile(tenant: string): { stop: () => Promise<string[]> } {
  let running = true;
  const outcomes: string[] = [];
  const loop = (async () => {
    while (running) {
      outcomes.push(await outcome(tenant));
      await sleep(20);
    }
  })();
  return {
    stop: async () => {
      running = false;
      await loop;
      return outcomes;
    },
  };
}

async function psqlRouted(tenant: string): Promise<{ ok: boolean; text: string }> {
  const r = await psql({ port: ports.haproxy, db: 'postgres', options: `-c pgroute.tenant=${tenant}`, command: 'SHOW cluster_name', timeoutMs: 5_000, password });
  return r.code === 0 ? { ok: true, text: r.stdout.trim() } : { ok: false, text: r.stderr.trim() };
}

// ---- containers ---------------------------------------------------------------------------------

/** A PostgreSQL container (trust auth) on the tenants' network whose cluster_name is `name`; admitted when `admitted`. */
async function pgContainer(name: string, labels: Record<string, string>, admitted: boolean): Promise<void> {
  await runContainer({ name: P + name, image, labels: { ...(admitted ? { [RUN_LABEL]: RUN } : {}), ...labels }, env: { CLUSTER_NAME: name }, networks: [NETWORK] });
  const ip = await containerIp(P + name, NETWORK);
  if (ip === undefined) throw new Error(`container ${P + name} has no IP on ${NETWORK}`);
  await waitFor(() => clusterName({ host: ip, port: 5432, user: 'postgres' }).then((c) => c === name, () => false), { timeoutMs: 30_000, what: `${P + name} to answer` });
}
const remove = (name: string): Promise<void> => docker.getContainer(P + name).remove({ force: true });

// ---- lifecycle ----------------------------------------------------------------------------------

beforeAll(async () => {
  await ensureDocker();
  image = await ensurePostgresImage();
  cleanupOnExit(P);
  cleanupOnExit(`pgroute-tenant-do${TAG}-`);
  await createNetwork(NETWORK);
  dir = mkdtempSync(join(tmpdir(), 'pgroute-docker-ownership-'));
  state = join(dir, 'state');
  const t = Date.now();
  watch = await startWatch(ports, state, ['--source', 'docker', '--spares', '8', '--docker-constraint', `label=${RUN_LABEL}=${RUN}`]);
  timings['pgroute watch start'] = Date.now() - t;
}, 180_000);

afterAll(async () => {
  await watch?.stop('SIGINT', 15_000);
  await removeContainers(P).catch(() => undefined);
  await removeContainers(`pgroute-tenant-do${TAG}-`).catch(() => undefined);
  await docker.getVolume(`pgroute-tenant-${ACME}-data`).remove().catch(() => undefined);
  await removeNetworks(P).catch(() => undefined);
  if (dir) rmSync(dir, { recursive: true, force: true });
  console.log(`docker-ownership timings (ms): ${JSON.stringify(timings)}`);
}, 60_000);

describe('pgroute watch --source docker: who may declare a tenant (real dockerd, HAProxy spawned)', () => {
  it('logs which containers may declare tenants', async () => {
    const line = await watch?.waitForOutput(/docker containers that may declare tenants/, 5_000);
    expect(JSON.parse((line ?? '').slice((line ?? '').indexOf('{')))).toMatchObject({ admitted: `containers pgroute created, label=${RUN_LABEL}=${RUN}` });
  });

  it('1. a container that is not admitted is refused with its reason (log line, refused metric) and never routed', async () => {
    await pgContainer('stranger', { 'pgroute.tenant': STRANGER, 'pgroute.managed': 'true' }, false);
    const r = await refusedWith('stranger', /^the container may not declare tenants/);
    expect(r.tenant).toBe(STRANGER);
    expect(r.reason).toBe(
      `the container may not declare tenants: pgroute did not create it (\`pgroute tenant create\`) and it matches no --docker-constraint (label=${RUN_LABEL}=${RUN}); ` +
        `its label pgroute.managed proves nothing (anyone can set it); to admit it, start pgroute with a --docker-constraint it matches (this one has network=${NETWORK}), or --docker-expose-by-default to admit every container`,
    );
    expect(await outcome(STRANGER)).toBe('refused 3D000');
    const p = await psqlRouted(STRANGER);
    expect(p).toEqual({ ok: false, text: expect.stringMatching(new RegExp(`no tenant "${STRANGER}" is served here`)) });
    await waitFor(async () => (await refusedGauge()) >= 1, { timeoutMs: 5_000, what: 'pgroute_tenants{state="refused"} counting the stranger' });
  });

  it('2. an older container labelled like a tenant pgroute created never becomes its primary, also while it is re-created', async () => {
    let t = Date.now();
    await pgrouteOk(tenantCmd('create', ACME, '--image', image, '--network', NETWORK, '--cpus', '0.5', '--memory', '256m'));
    password = readFileSync(join(state, 'tenants', `${ACME}.password`), 'utf8').trim();
    const first = (await docker.getContainer(`pgroute-tenant-${ACME}`).inspect()).Id;
    expect(readFileSync(join(state, 'tenants', `${ACME}.container`), 'utf8').trim()).toBe(first);
    await pgrouteOk(tenantCmd('enable', ACME));
    await reaches('tenant create + enable -> routable', ACME, ACME, t);

    // The impostor is admitted by the operator's constraint, claims ACME and is older than the
    // container pgroute is about to re-create.
    await pgContainer('impostor', { 'pgroute.tenant': ACME, 'pgroute.managed': 'true' }, true);
    const r = await refusedWith('impostor', /was created by `pgroute tenant create`/);
    expect(r.reason).toBe(`tenant ${ACME} was created by \`pgroute tenant create\` as container ${first.slice(0, 12)}; only that container may claim it (\`pgroute tenant delete ${ACME} --purge\` gives the id up)`);
    expect(await outcome(ACME)).toBe(ACME);

    const poll = pollWhile(ACME);
    t = Date.now();
    await pgrouteOk(tenantCmd('delete', ACME)); // the volume and the record are kept: the id stays reserved
    await reaches('tenant delete -> refused', ACME, 'refused 3D000', t);
    await sleep(500); // time enough for pgroute to (wrongly) hand the tenant to the impostor
    t = Date.now();
    await pgrouteOk(tenantCmd('create', ACME, '--image', image, '--network', NETWORK));
    await pgrouteOk(tenantCmd('enable', ACME));
    await reaches('re-created -> routable', ACME, ACME, t);
    const during = await poll.stop();
    expect(during).toContain('refused 3D000');
    // Refusals and broken connections while the container goes and comes; never another server.
    expect(during.filter((o) => o !== ACME && !o.startsWith('refused ') && !o.startsWith('error: '))).toEqual([]);
    expect(seen[ACME]).not.toContain('impostor');
    const second = (await docker.getContainer(`pgroute-tenant-${ACME}`).inspect()).Id;
    expect(second).not.toBe(first);
    await refusedWith('impostor', new RegExp(`as container ${second.slice(0, 12)}; only that container may claim it`));
    for (let i = 0; i < 5; i++) expect(await outcome(ACME)).toBe(ACME);
    expect(await psqlRouted(ACME)).toEqual({ ok: true, text: ACME });
  });

  it('3. claims are judged one by one: a bad port and a stranger\'s enabled=false change nothing; a second claimant is refused for both, never by age', async () => {
    let t = Date.now();
    await pgContainer('shop-db', { 'pgroute.tenant': SHOP }, true);
    await reaches('admitted by constraint -> routable', SHOP, 'shop-db', t);

    // Admitted, but a bad port on its pool claim: that claim alone is refused.
    await pgContainer('shop-badpool', { 'pgroute.tenant': SHOP, 'pgroute.target': 'pool', 'pgroute.port': 'http' }, true);
    const bad = await refusedWith('shop-badpool', /port/);
    expect(bad.reason).toBe('port must be an integer from 1 to 65535, got "http"; this claim alone is refused');
    // A stranger switching the tenant off: not admitted, so it changes nothing.
    await pgContainer('shop-off', { 'pgroute.tenant': SHOP, 'pgroute.target': 'replica', 'pgroute.enabled': 'false' }, false);
    await refusedWith('shop-off', /^the container may not declare tenants/);
    // Both are known to pgroute now (their refusals are logged): the tenant still routes.
    await sleep(300);
    for (let i = 0; i < 5; i++) expect(await outcome(SHOP)).toBe('shop-db');

    // A rival, admitted too, claims the primary: contested, both refused (fail closed), and the
    // log says so for both sides.
    const poll = pollWhile(SHOP);
    t = Date.now();
    await pgContainer('shop-rival', { 'pgroute.tenant': SHOP }, true);
    await reaches('contested -> refused', SHOP, 'refused 3D000', t);
    const contest = /^target primary of tenant .* is claimed by 2 containers .*\(pgroute never prefers the older one\)/;
    expect((await refusedWith('shop-db', contest)).reason).toContain(`also docker container ${P}shop-rival (`);
    expect((await refusedWith('shop-rival', contest)).reason).toContain(`also docker container ${P}shop-db (`);

    // While both claimed it, no client reached the rival.
    const contested = await poll.stop();
    expect(contested).not.toContain('shop-rival');

    // shop-db goes: the rival, admitted by the same constraint, is now the only claimant and serves
    // (no memory: what a constraint admits is trusted with the ids it claims; ids that must stay
    // with one container are reserved by \`pgroute tenant create\`, as in 2.; docs/docker-ownership.md).
    t = Date.now();
    await remove('shop-db');
    await reaches('sole admitted claimant -> routable', SHOP, 'shop-rival', t);
    // shop-db comes back, newer than the rival: contested again, the older one is not preferred.
    const again = pollWhile(SHOP);
    t = Date.now();
    await pgContainer('shop-db', { 'pgroute.tenant': SHOP }, true);
    await reaches('re-created: contested again -> refused', SHOP, 'refused 3D000', t);
    await sleep(500);
    expect(await outcome(SHOP)).toBe('refused 3D000');

    // The rival goes: shop-db alone claims the primary again.
    t = Date.now();
    await remove('shop-rival');
    expect(await reaches('contest resolved -> routable', SHOP, 'shop-db', t)).toBeLessThan(WITHIN_MS * 5);
    const during = await again.stop();
    // Once shop-db was back, the rival was never reached again: refusals until it left, then shop-db.
    const fromBack = during.slice(during.indexOf('refused 3D000'));
    expect(fromBack).not.toContain('shop-rival');
    expect(seen[SHOP]).not.toContain('shop-badpool');
    expect(seen[SHOP]).not.toContain('shop-off');
  });
});
