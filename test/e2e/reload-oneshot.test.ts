// The hand-run deployment (`pgroute generate` + HAProxy with a master socket + `pgroute agent`),
// changed with `pgroute reload` (one-shot): the new tenant is served once the agent is told, and the
// new worker is marked as having learned the replicated tables before the command returns, as `up`
// and `watch` mark theirs (docs/cancel.md "Across a reload"). Unmarked, it would record every new
// client address in its handover table (a slower path per connection) for its first 30 s.

import { readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { haproxyCli, showProc } from '../../generator/src/index.js';
import { LEARNED_TABLE } from '../../generator/src/render/cancel-context.js';
import { portBlock } from '../support/ports.js';
import { startPostgresMany, type PgServer } from '../support/postgres.js';
import { deploymentFlags, runCliOnce, startApart, writeTenantsFile } from '../support/pgroute.js';
import { stopAll, waitFor, type ProcessHandle } from '../support/process.js';
import { psql } from '../support/psql.js';

const ports = portBlock(51);
let servers: PgServer[] = [];
let agent: ProcessHandle;
let dir: string;
let file: string;
let state: string;
let master: string;

const proxy = { host: '127.0.0.1', port: ports.haproxy, user: 'app' };
const tenants = (names: readonly string[]) => names.map((name) => ({ id: name, port: (servers.find((s) => s.name === name) as PgServer).port }));
const clusterName = async (db: string): Promise<string> => (await psql({ ...proxy, db, command: 'SHOW cluster_name' })).stdout.trim();

/** Whether the current worker (the one `show proc` lists first) holds the learned mark. */
async function currentWorkerMarked(): Promise<boolean> {
  const pid = (await showProc(master)).workers[0];
  expect(pid, 'a current worker').toBeDefined();
  return (await haproxyCli(master, `@!${pid} show table ${LEARNED_TABLE}`)).includes('key=0 ');
}

beforeAll(async () => {
  servers = await startPostgresMany([{ name: 'alpha', port: ports.pg[0] as number }, { name: 'beta', port: ports.pg[1] as number }]);
  ({ dir, file } = writeTenantsFile(tenants(['alpha'])));
  state = `${dir}/state`;
  ({ agent, masterSocket: master } = await startApart(ports, file, state));
  await waitFor(async () => (await clusterName('alpha')) === 'alpha', { timeoutMs: 10_000, what: 'alpha routable' });
});

afterAll(async () => {
  await stopAll();
  for (const s of servers) await s.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('pgroute reload (one-shot)', () => {
  it('reloads, marks the new worker learned before it returns, and the new tenant routes once the agent is told', async () => {
    // Started by hand, nothing has marked the first worker.
    expect(await currentWorkerMarked()).toBe(false);
    const before = await showProc(master);
    // The file replaced by rename, as the README asks of anything that rewrites it.
    const next = writeTenantsFile(tenants(['alpha', 'beta']));
    renameSync(next.file, file);
    rmSync(next.dir, { recursive: true, force: true });
    const r = await runCliOnce(['reload', '--tenants', file, ...deploymentFlags(ports, state)]);
    expect(r.code, r.stderr).toBe(0);
    expect(`${r.stdout}${r.stderr}`).toMatch(/"learned":true.*"msg":"reloaded"|"msg":"reloaded".*"learned":true/);
    const after = await showProc(master);
    expect(after.reloads).toBeGreaterThan(before.reloads);
    expect(after.workers).not.toEqual(before.workers);
    // Marked when the command returned: no wait here.
    expect(await currentWorkerMarked()).toBe(true);

    agent.child.kill('SIGHUP');
    await waitFor(async () => (await clusterName('beta')) === 'beta', { timeoutMs: 10_000, what: 'beta routable after the agent reloaded routes.json' });
    expect(await clusterName('alpha')).toBe('alpha');
  });

  it("refuses (exit 3, nothing written or reloaded) an edit that would drop a served tenant, or an empty file; `tenants: []` still removes every one", async () => {
    // A second definition of alpha is refused, the first stands: nothing is dropped, so it applies.
    const twice = writeTenantsFile([...tenants(['alpha']), ...tenants(['alpha', 'beta'])]);
    try {
      const r = await runCliOnce(['reload', '--tenants', twice.file, ...deploymentFlags(ports, state)]);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).toContain('tenant definition refused');
      expect(await clusterName('alpha')).toBe('alpha');
    } finally {
      rmSync(twice.dir, { recursive: true, force: true });
    }
    const routes = readFileSync(`${state}/routes.json`, 'utf8');
    const before = await showProc(master);
    // alpha's edit is refused (a network with host bits set): `up` keeps its previous definition; a
    // one-shot reload, which has none, used to drop alpha and answer "reloaded".
    const bad = writeTenantsFile([...tenants(['alpha']).map((t) => ({ ...t, allow: ['10.1.0.0/8'] })), ...tenants(['beta'])]);
    try {
      const r = await runCliOnce(['reload', '--tenants', bad.file, ...deploymentFlags(ports, state)]);
      expect(r.code, r.stderr).toBe(3);
      expect(r.stderr.trimEnd().split('\n').at(-1)).toBe(
        `pgroute: the new definition of served tenant "alpha" in ${bad.file} is refused (see the warnings above): applying it would drop it, so nothing was written; fix the definition, or delete the tenant from the file to remove it`,
      );
    } finally {
      rmSync(bad.dir, { recursive: true, force: true });
    }
    const empty = writeTenantsFile([]);
    try {
      writeFileSync(empty.file, '');
      const r = await runCliOnce(['reload', '--tenants', empty.file, ...deploymentFlags(ports, state)]);
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr.trimEnd()).toBe(`pgroute: tenants file ${empty.file} is empty (being written?); to remove every tenant, write "tenants: []"`);
      expect(readFileSync(`${state}/routes.json`, 'utf8')).toBe(routes);
      expect((await showProc(master)).reloads).toBe(before.reloads);
      expect(await clusterName('alpha')).toBe('alpha');

      writeFileSync(empty.file, 'tenants: []\n');
      const none = await runCliOnce(['reload', '--tenants', empty.file, ...deploymentFlags(ports, state)]);
      expect(none.code, none.stderr).toBe(0);
      expect((JSON.parse(readFileSync(`${state}/routes.json`, 'utf8')) as { tenants: unknown[] }).tenants).toEqual([]);
    } finally {
      rmSync(empty.dir, { recursive: true, force: true });
    }
  });
});
