// `pgroute plan` against a running `pgroute up` (dist/): alpha on a real PostgreSQL server, bravo and
// charlie at closed ports. A candidate tenants file (not the watched one) that moves alpha, limits
// it, disables bravo, removes charlie, adds delta and holds one invalid definition is planned: the
// plan names each change, the runtime commands and the refusal (--strict: exit 3), a listener
// change is a reload, `haproxy -c` judges what the plan would write (warnings shown; a rejection exits
// 2), and nothing changed: the state dir's files, HAProxy's processes and reload
// count, and routing (alpha still answers where it did). Then the same candidate, written into the
// watched file, is applied the way the plan said (runtime, no reload) and plans as no change.

import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { showProc } from '../../generator/src/index.js';
import { haproxyVersion } from '../../generator/src/haproxy/version.js';
import type { ChangePreview } from '../../generator/src/preview/preview.js';
import { deploymentFlags, reloadCount, runCliOnce, startUp, writeTenantsFile, type CliRun } from '../support/pgroute.js';
import { portBlock } from '../support/ports.js';
import { startPostgres, type PgServer } from '../support/postgres.js';
import { stopAll, waitFor, type ProcessHandle } from '../support/process.js';

const ports = portBlock(123);
/**
 * 2.6's `haproxy -c` warns about a server whose host name does not resolve (and starts it disabled);
 * 3.0 and 3.2 accept it without a word (scripts/test.sh runs this file on each).
 */
const WARNS_UNRESOLVED = /^2\./.test(haproxyVersion() ?? '');

let server: PgServer | undefined;
let up: ProcessHandle | undefined;
let tmp = '';
let state = '';
let watched = '';

const RUNNING = [
  { id: 'alpha', port: ports.pg[0] },
  { id: 'bravo', port: ports.pg[1] },
  { id: 'charlie', port: ports.pg[2] },
];
const CANDIDATE = [
  { id: 'alpha', port: ports.pg[3], maxconn: 5 },
  { id: 'bravo', port: ports.pg[1], enabled: false },
  { id: 'delta', port: ports.pg[4] },
];

/** pgroute's log line for an apply after the first one (which is kind "initial"). */
const CHANGE_APPLIED = /"kind":"(agent|runtime|reload|failed)".*"msg":"tenants applied"/;

function plan(file: string, extra: readonly string[] = []): Promise<CliRun> {
  return runCliOnce(['plan', '--tenants', file, ...deploymentFlags(ports, state), ...extra], 30_000);
}

async function planJson(file: string): Promise<ChangePreview> {
  const r = await plan(file, ['--json']);
  if (r.code !== 0) throw new Error(`pgroute plan exited ${r.code}: ${r.stderr}`);
  return JSON.parse(r.stdout) as ChangePreview;
}

/** Every regular file of the state dir with its content hash and modification time. */
function stateFiles(): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of readdirSync(state).sort()) {
    const path = join(state, name);
    const st = statSync(path);
    if (!st.isFile()) continue;
    out[name] = `${createHash('sha256').update(readFileSync(path)).digest('hex').slice(0, 16)} ${st.mtimeMs}`;
  }
  return out;
}

async function haproxyProcesses(): Promise<{ reloads: number; pids: string }> {
  const proc = await showProc(join(state, 'haproxy-master.sock'));
  return { reloads: await reloadCount(join(state, 'haproxy-master.sock')), pids: JSON.stringify(proc) };
}

async function clusterName(database: string): Promise<string> {
  const c = new pg.Client({ host: '127.0.0.1', port: ports.haproxy, user: 'app', database, connectionTimeoutMillis: 5_000 });
  c.on('error', () => {});
  await c.connect();
  try {
    return (await c.query<{ c: string }>("SELECT current_setting('cluster_name') AS c")).rows[0]?.c ?? '';
  } finally {
    await c.end();
  }
}

beforeAll(async () => {
  server = await startPostgres({ name: 'alpha', port: ports.pg[0] });
  const file = writeTenantsFile(RUNNING);
  tmp = file.dir;
  watched = file.file;
  state = join(tmp, 'state');
  up = await startUp(ports, watched, state);
}, 120_000);

afterAll(async () => {
  await up?.stop('SIGINT', 10_000);
  await stopAll();
  await server?.stop();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

describe('pgroute plan against a running pgroute up', () => {
  let candidate = '';
  let before: { files: Record<string, string>; haproxy: { reloads: number; pids: string } };

  it('the running tenants plan as no change (exit 0)', async () => {
    expect(await clusterName('alpha')).toBe('alpha');
    before = { files: stateFiles(), haproxy: await haproxyProcesses() };
    expect(Object.keys(before.files)).toEqual(expect.arrayContaining(['deployment.json', 'haproxy.cfg', 'layout.json', 'routes.json']));
    const r = await plan(watched);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^No changes: the running HAProxy and agent already serve this\.$/m);
    expect(r.stdout).toMatch(/^3 tenant\(s\) applied, 3 wanted; route table (\w+) -> \1\.$/m);
  });

  it('a candidate file: each change, the runtime commands, the refused definition', async () => {
    candidate = join(tmp, 'candidate.yaml');
    const doc = { tenants: [...CANDIDATE.map((t) => ({ host: '127.0.0.1', ...t })), { id: 'Bad_Id', host: '127.0.0.1', port: ports.pg[5] }] };
    writeFileSync(candidate, JSON.stringify(doc));
    const p = await planJson(candidate);
    expect(p.kind).toBe('runtime');
    expect(p.changes).toEqual([
      { tenant: 'alpha', action: 'move', target: 'primary', before: `127.0.0.1:${ports.pg[0]}`, after: `127.0.0.1:${ports.pg[3]}` },
      { tenant: 'alpha', action: 'limit', before: 'maxconn none, maxqueue none', after: 'maxconn 5, maxqueue none' },
      { tenant: 'bravo', action: 'disable' },
      { tenant: 'charlie', action: 'remove', before: `primary 127.0.0.1:${ports.pg[2]}` },
      { tenant: 'delta', action: 'add', after: `primary 127.0.0.1:${ports.pg[4]}` },
    ]);
    expect(p.commands).toEqual([
      `set server pg.alpha.primary/s1 addr 127.0.0.1 port ${ports.pg[3]}`,
      'set maxconn server pg.alpha.primary/s1 5',
      'set server pg.charlie.primary/s1 state maint',
      `set server pg.spare.0/s1 addr 127.0.0.1 port ${ports.pg[4]}`,
      'set maxconn server pg.spare.0/s1 0',
      'set server pg.spare.0/s1 health up',
      'set server pg.spare.0/s1 state ready',
    ]);
    expect(p.reloadReasons).toEqual([]);
    expect(p.refused).toEqual([{ where: `${candidate}: tenants[3]`, reason: expect.stringContaining('tenant id "Bad_Id" is invalid') }]);
    expect(p.appliedVersion).not.toBe(p.desiredVersion);

    const text = await plan(candidate);
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(new RegExp(`^~\\s+alpha\\s+move\\s+primary\\s+127\\.0\\.0\\.1:${ports.pg[0]} -> 127\\.0\\.0\\.1:${ports.pg[3]}$`, 'm'));
    expect(text.stdout).toMatch(/^~\s+bravo\s+disable$/m);
    expect(text.stdout).toMatch(/^-\s+charlie\s+remove\s+primary /m);
    expect(text.stdout).toMatch(/^\+\s+delta\s+add\s+primary /m);
    expect(text.stdout).toContain("Applied through HAProxy's runtime API, without a reload (7 command(s)):");
    expect(text.stdout).toContain('Refused (never applied; --strict makes this exit 3):');
  });

  it('--strict: the same plan, and exit 3 for the refused definition', async () => {
    const r = await plan(candidate, ['--strict']);
    expect(r.code).toBe(3);
    expect(r.stdout).toMatch(/^\+\s+delta\s+add/m);
    expect(r.stderr).toContain('pgroute: 1 tenant definition refused (listed in the plan above; --strict)');
  });

  it('a listener change plans as a reload, saying why', async () => {
    const moved = writeTenantsFile(RUNNING, { listeners: [{ address: '127.0.0.1', port: ports.haproxy }, { address: '127.0.0.1', port: ports.haproxyAlt, target: 'replica' }] });
    try {
      const p = await planJson(moved.file);
      expect(p.kind).toBe('reload');
      expect(p.reloadReasons).toEqual(['listeners changed']);
      expect(p.changes).toEqual([]);
    } finally {
      rmSync(moved.dir, { recursive: true, force: true });
    }
  });

  it('haproxy -c judges what the plan would write: accepted, with its warnings, or rejected (exit 2), in --json too', async () => {
    const fine = await plan(watched);
    expect(fine.stdout).toContain('HAProxy accepts the configuration this would write (haproxy -c).');
    expect(((await planJson(watched)) as ChangePreview & { check?: unknown }).check).toEqual({ result: 'passed', warnings: [] });

    // A host name that does not resolve (.invalid never does): HAProxy warns (the server starts
    // disabled) and accepts.
    const unresolved = writeTenantsFile([...RUNNING, { id: 'echo', host: 'nowhere.invalid', port: ports.pg[4] }]);
    // A listener on a host name that does not resolve: only HAProxy resolves it (at parse), and rejects it.
    const badBind = writeTenantsFile(RUNNING, { listeners: [{ address: 'nowhere.invalid', port: ports.haproxy }] });
    try {
      const warned = await plan(unresolved.file);
      expect(warned.code).toBe(0);
      if (WARNS_UNRESOLVED) {
        expect(warned.stdout).toMatch(/with warnings:\n {2}\[WARNING\].*could not resolve address 'nowhere\.invalid'/);
        expect(((await planJson(unresolved.file)) as ChangePreview & { check: { result: string; warnings: string[] } }).check).toMatchObject({ result: 'passed', warnings: [expect.stringContaining("could not resolve address 'nowhere.invalid'")] });
      } else {
        expect(warned.stdout).toContain('HAProxy accepts the configuration this would write (haproxy -c).');
        expect(warned.stdout).not.toContain('with warnings');
      }

      // The plan is printed, HAProxy's alert in it, one line on stderr, exit 2.
      const rejected = await plan(badBind.file);
      expect(rejected.code).toBe(2);
      expect(rejected.stdout).toMatch(/^HAProxy would REJECT the configuration this would write \(haproxy -c\)/m);
      expect(rejected.stdout).toMatch(/^ {2}\[ALERT\].*'bind' : invalid address: 'nowhere\.invalid'/m);
      expect(rejected.stderr.trim().split('\n')).toEqual(['pgroute: HAProxy would reject the configuration this plan would write (haproxy -c; its words are in the plan above): applying it would fail and keep the running configuration']);
      const json = await plan(badBind.file, ['--json']);
      expect(json.code).toBe(2);
      expect((JSON.parse(json.stdout) as ChangePreview & { check: { result: string; reason: string } }).check).toMatchObject({ result: 'rejected', reason: expect.stringContaining('nowhere.invalid') });

      const unchecked = await plan(badBind.file, ['--no-check']);
      expect(unchecked.code).toBe(0);
      expect(unchecked.stdout).not.toContain('haproxy -c');
      expect(unchecked.stdout).toContain('Not checked by HAProxy: --no-check was given.');
      // A script reads check.result alike (the key was absent with --no-check).
      const uncheckedJson = await plan(badBind.file, ['--no-check', '--json']);
      expect((JSON.parse(uncheckedJson.stdout) as { check: unknown }).check).toEqual({ result: 'not-checked', warnings: [], reason: '--no-check was given' });
    } finally {
      for (const f of [unresolved, badBind]) rmSync(f.dir, { recursive: true, force: true });
    }
  });

  it('planning changed nothing: files, HAProxy processes and reloads, routing', async () => {
    expect(stateFiles()).toEqual(before.files);
    expect(await haproxyProcesses()).toEqual(before.haproxy);
    expect(await clusterName('alpha')).toBe('alpha');
    expect(up?.output()).not.toMatch(CHANGE_APPLIED);
  });

  it('the candidate applied by the watched file goes the way the plan said (runtime, no reload) and then plans as no change', async () => {
    writeFileSync(watched, JSON.stringify({ tenants: CANDIDATE.map((t) => ({ host: '127.0.0.1', ...t })) }));
    const line = await up?.waitForOutput(CHANGE_APPLIED, 15_000);
    expect(line).toContain('"kind":"runtime"');
    expect(line).toContain('"detail":"4 operation(s), 7 command(s)"');
    expect((await haproxyProcesses()).reloads).toBe(before.haproxy.reloads);
    const after = await waitFor(async () => {
      const p = await planJson(watched);
      return p.kind === 'unchanged' ? p : undefined;
    }, { timeoutMs: 10_000, intervalMs: 200, what: 'plan of the applied candidate: no change' });
    expect(after.changes).toEqual([]);
  });
});
