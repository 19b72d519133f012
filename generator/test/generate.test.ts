// generate() end to end with the real `haproxy -c`: good configurations are written, rejected ones
// never replace the files in place, and the operator sees HAProxy's own words.

import { mkdir, mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError } from '../src/errors.js';
import { writeIfChanged } from '../src/files.js';
import { generate, writeGeneration } from '../src/generate.js';
import { generationOf } from '../src/reconcile.js';
import { checkHaproxyConfig } from '../src/haproxy/check.js';
import type { Deployment, TenantSnapshot } from '../src/model.js';
import { defaultSettings, statePaths, type Settings } from '../src/settings.js';
import { parseTenantsFile } from '../src/sources/file.js';
import { declaredBackends, FALLBACK, ORIGIN, TEMPLATES } from './support.js';

process.env.PGROUTE_HAPROXY ??= '/usr/sbin/haproxy';

const FILE = `listeners:
  - { port: 25432, address: 127.0.0.1 }
  - { port: 26432, address: 127.0.0.1, target: pool }
tenants:
  - id: acme
    host: 127.0.0.1
    port: 5433
    maxconn: 20
    targets:
      pool: { host: 127.0.0.1, port: 6433 }
  - { id: beta, host: "::1", port: 5434 }
  - { id: gamma, host: localhost, port: 5435, enabled: false }
`;

function load(text = FILE): { deployment: Deployment; snapshot: TenantSnapshot } {
  const f = parseTenantsFile(text, ORIGIN, FALLBACK);
  expect(f.snapshot.refused).toEqual([]);
  return f;
}

let root: string;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'pgroute-generate-test-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

async function freshSettings(): Promise<Settings> {
  return defaultSettings(await mkdtemp(join(root, 'state-')));
}

async function rejection(p: Promise<unknown>): Promise<ConfigError> {
  try {
    await p;
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  throw new Error('expected generate() to throw a ConfigError');
}

async function snapshotFiles(dir: string): Promise<Record<string, Buffer>> {
  const out: Record<string, Buffer> = {};
  for (const name of ['haproxy.cfg', 'spoe.conf', 'routes.json', 'deployment.json', 'limits.map']) out[name] = await readFile(join(dir, name));
  return out;
}

describe('generate() with haproxy -c', { timeout: 30_000 }, () => {
  it('writes haproxy.cfg, spoe.conf and routes.json for a valid configuration', async () => {
    const settings = await freshSettings();
    const { deployment, snapshot } = load();
    const g = await generate(deployment, snapshot, settings);
    const paths = statePaths(settings.stateDir);
    expect(g.paths).toEqual(paths);
    expect(g.configChanged).toBe(true);
    expect(g.routesChanged).toBe(true);

    const cfg = await readFile(paths.haproxyConfig, 'utf8');
    expect(cfg).toBe(g.rendered.haproxyConfig);
    expect(await readFile(paths.spoeConfig, 'utf8')).toBe(g.rendered.spoeConfig);
    const routes = JSON.parse(await readFile(paths.routes, 'utf8')) as unknown;
    expect(routes).toEqual(g.routes);
    // The written config points at the written spoe.conf, and passes haproxy -c on its own.
    expect(cfg).toContain(`filter spoe engine pgroute config ${paths.spoeConfig}\n`);
    expect(await checkHaproxyConfig(paths.haproxyConfig)).toMatchObject({ ok: true });
    // Every backend routes.json names is declared in the written haproxy.cfg.
    const declared = declaredBackends(cfg);
    for (const t of g.routes.tenants) for (const b of Object.values(t.backends)) expect(declared).toContain(b);
    // No candidate files are left behind.
    expect((await readdir(settings.stateDir)).sort()).toEqual(['deployment.json', 'haproxy-servers.state', 'haproxy.cfg', 'layout.json', 'limits.map', 'routes.json', 'spoe.conf']);
  });

  it('reports nothing changed when generating the same snapshot again, and leaves the files alone', async () => {
    const settings = await freshSettings();
    const { deployment, snapshot } = load();
    await generate(deployment, snapshot, settings);
    const paths = statePaths(settings.stateDir);
    const mtimeBefore = (await stat(paths.haproxyConfig)).mtimeMs;
    const again = await generate(deployment, snapshot, settings);
    expect(again.configChanged).toBe(false);
    expect(again.routesChanged).toBe(false);
    expect((await stat(paths.haproxyConfig)).mtimeMs).toBe(mtimeBefore);
  });

  it('reports a change when a tenant changes', async () => {
    const settings = await freshSettings();
    await generate(load().deployment, load().snapshot, settings);
    const moved = load(FILE.replace('port: 5434', 'port: 5444'));
    const g = await generate(moved.deployment, moved.snapshot, settings);
    expect(g.configChanged).toBe(true);
    expect(await readFile(g.paths.haproxyConfig, 'utf8')).toContain('    server s1 [::1]:5444 check inter 2s fastinter 250ms downinter 250ms');
    const disabled = load(FILE.replace('{ id: beta, host: "::1", port: 5434 }', '{ id: beta, host: "::1", port: 5444, enabled: false }'));
    const g2 = await generate(disabled.deployment, disabled.snapshot, settings);
    expect(g2.routesChanged).toBe(true);
    expect(g2.routes.version).not.toBe(g.routes.version);
  });

  it.each<[string, (s: Settings) => Settings, RegExp]>([
    ['an invalid duration', (s) => ({ ...s, timeouts: { ...s.timeouts, connect: 'bogus' } }), /\[ALERT\].*unexpected character 'b' in 'timeout connect'/],
    ['a Lua file that does not exist', (s) => ({ ...s, luaPath: join(s.stateDir, 'missing.lua') }), /\[ALERT\].*error in Lua file '.*missing\.lua'.*No such file or directory/],
    ['an invalid SPOE timeout (spoe.conf)', (s) => ({ ...s, agent: { ...s.agent, processingTimeout: 'bogus' } }), /\[ALERT\].*spoe\.conf.*timeout processing/],
  ])('rejects %s: ConfigError with HAProxy\'s alert, running files untouched', async (_what, spoil, alert) => {
    const settings = await freshSettings();
    const { deployment, snapshot } = load();
    await generate(deployment, snapshot, settings);
    const before = await snapshotFiles(settings.stateDir);

    // A changed snapshot too, so that every file would differ if it were written.
    const changed = load(`${FILE}  - { id: delta, host: 127.0.0.1, port: 5436 }\n`);
    const err = await rejection(generate(changed.deployment, changed.snapshot, spoil(settings)));
    expect(err.message).toContain('HAProxy rejected the rendered configuration');
    expect(err.message).toContain(`kept at ${join(settings.stateDir, 'haproxy.cfg.candidate')}`);
    expect(err.message).toMatch(alert);

    const after = await snapshotFiles(settings.stateDir);
    for (const name of Object.keys(before)) {
      expect(after[name]?.equals(before[name] as Buffer), `${name} is byte-for-byte unchanged`).toBe(true);
    }
    // The rejected candidate is kept for the operator to inspect.
    const candidate = await readFile(join(settings.stateDir, 'haproxy.cfg.candidate'), 'utf8');
    expect(candidate).toContain('backend pg.delta.primary');

    // And a good generation afterwards still goes through and cleans up.
    const g = await generate(changed.deployment, changed.snapshot, settings);
    expect(g.configChanged).toBe(true);
    expect(await readFile(g.paths.haproxyConfig, 'utf8')).toContain('backend pg.delta.primary');
    expect((await readdir(settings.stateDir)).sort()).toEqual(['deployment.json', 'haproxy-servers.state', 'haproxy.cfg', 'layout.json', 'limits.map', 'routes.json', 'spoe.conf']);
  });

  it('a write that fails after the check puts back every file it had written, the maps included', async () => {
    const settings = await freshSettings();
    const { deployment, snapshot } = load();
    await generate(deployment, snapshot, settings);
    // layout.json, written last, cannot be written: a directory stands where its temporary file goes.
    await mkdir(join(settings.stateDir, `layout.json.${process.pid}.tmp`));
    const before = await snapshotFiles(settings.stateDir);
    const changed = load(`${FILE}  - { id: delta, host: 127.0.0.1, port: 5436, maxClientConnections: 7 }\n`);
    const err = await generate(changed.deployment, changed.snapshot, settings).then(() => undefined, (e: Error) => e);
    expect(err?.message).toMatch(/EISDIR.*layout\.json/);
    expect(err?.message).not.toContain('could not all be put back');
    const after = await snapshotFiles(settings.stateDir);
    for (const name of Object.keys(before)) {
      expect(after[name]?.equals(before[name] as Buffer), `${name} is byte-for-byte unchanged`).toBe(true);
    }
  });

  it('check: false (a first start that HAProxy itself checks) writes the same files with no candidate and no `haproxy -c`', async () => {
    const checked = await freshSettings();
    const unchecked = await freshSettings();
    const { deployment, snapshot } = load();
    const a = await generate(deployment, snapshot, checked);
    const layout = a.layout;
    const b = await writeGeneration(generationOf(deployment, snapshot, layout), unchecked, TEMPLATES, { check: false });
    expect(b.rendered.haproxyConfig.split(unchecked.stateDir).join('<dir>')).toBe(a.rendered.haproxyConfig.split(checked.stateDir).join('<dir>'));
    expect((await readdir(unchecked.stateDir)).sort()).toEqual(['deployment.json', 'haproxy-servers.state', 'haproxy.cfg', 'layout.json', 'limits.map', 'routes.json', 'spoe.conf']);
    // Nothing ran HAProxy: a binary that cannot be run is not noticed here (the start would be).
    const saved = process.env.PGROUTE_HAPROXY;
    process.env.PGROUTE_HAPROXY = join(root, 'no-such-haproxy');
    try {
      await expect(writeGeneration(generationOf(deployment, snapshot, layout), unchecked, TEMPLATES, { check: false })).resolves.toMatchObject({ configChanged: false });
    } finally {
      process.env.PGROUTE_HAPROXY = saved;
    }
  });

  it('refuses a public port that is also the stats port or the peers port on overlapping addresses (HAProxy would share its connections)', async () => {
    const settings = await freshSettings();
    const { snapshot } = load();
    const on = (listeners: string, s: Settings = settings) => rejection(generate(load(FILE.replace(/^listeners:\n(?: {2}- .*\n)+/, `listeners:\n${listeners}`)).deployment, snapshot, s));
    expect((await on('  - { port: 8404, address: 0.0.0.0 }\n')).message).toBe(
      'public port 8404 (on 0.0.0.0) is also the stats port (--stats-port) (on 127.0.0.1): HAProxy would bind both, and clients of one would reach the other; give them different ports',
    );
    expect((await on('  - { port: 8404, address: 127.0.0.1 }\n')).message).toMatch(/^public port 8404 \(on 127\.0\.0\.1\) is also the stats port/);
    // A name may be the same address (localhost is 127.0.0.1): it was compared as written, and passed.
    expect((await on('  - { port: 8404, address: localhost }\n')).message).toMatch(/^public port 8404 \(on localhost\) is also the stats port \(--stats-port\) \(on 127\.0\.0\.1\)/);
    const peers = { ...settings, replicas: { self: 'a', peers: [{ name: 'a', host: '0.0.0.0', port: 25432 }, { name: 'b', host: '10.0.0.2', port: 25432 }] } };
    expect((await on('  - { port: 25432, address: 127.0.0.1 }\n', peers)).message).toBe(
      "public port 25432 (on 127.0.0.1) is also this replica's peers port (--peer a=...) (on 0.0.0.0): HAProxy would bind both, and clients of one would reach the other; give them different ports",
    );
    // Different addresses, neither a wildcard, do not overlap; nor an IPv4 wildcard and an IPv6 address; nor a stats port that is off.
    await generate(load(FILE.replace('port: 25432, address: 127.0.0.1', 'port: 8404, address: 0.0.0.0')).deployment, snapshot, { ...settings, stats: { ...settings.stats, address: '::1' } });
    await generate(load(FILE.replace('port: 25432, address: 127.0.0.1', 'port: 8404, address: 127.0.0.2')).deployment, snapshot, settings);
    await generate(load(FILE.replace('port: 25432, address: 127.0.0.1', 'port: 8404, address: 0.0.0.0')).deployment, snapshot, { ...settings, stats: { ...settings.stats, enabled: false } });
  });

  it('a tenant HAProxy could not parse is refused up front, so it never blocks the others', async () => {
    const settings = await freshSettings();
    const f = parseTenantsFile(`${FILE}  - { id: zoned, host: "fe80::1%lo", port: 5432 }\n`, ORIGIN, FALLBACK);
    expect(f.snapshot.refused.map((r) => r.id)).toEqual(['zoned']);
    const g = await generate(f.deployment, f.snapshot, settings);
    expect(g.routes.tenants.map((t) => t.id)).toEqual(['acme', 'beta', 'gamma']);
  });

  it('rejects when the haproxy binary cannot be run, naming it', async () => {
    const settings = await freshSettings();
    const { deployment, snapshot } = load();
    const saved = process.env.PGROUTE_HAPROXY;
    process.env.PGROUTE_HAPROXY = join(root, 'no-such-haproxy');
    try {
      const err = (await generate(deployment, snapshot, settings).then(() => undefined, (e: unknown) => e)) as Error;
      expect(err.message).toContain(`cannot run ${join(root, 'no-such-haproxy')} to check the rendered configuration: not installed or not on PATH`);
      // Not HAProxy's verdict on the configuration: an environment problem (exit 1, not 2).
      expect(err.message).not.toContain('rejected');
      expect(err).not.toBeInstanceOf(ConfigError);
    } finally {
      process.env.PGROUTE_HAPROXY = saved;
    }
    await expect(readFile(join(settings.stateDir, 'haproxy.cfg'))).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it.each([
    ['a file that is no program', '/etc/passwd', 'cannot run /etc/passwd to check the rendered configuration (EACCES): is it HAProxy\'s executable?'],
    ['a directory', '/tmp', 'cannot run /tmp to check the rendered configuration (EACCES)'],
    ['a program that fails without a word', '/bin/false', '/bin/false -c exited 1 without a word: is it HAProxy?'],
  ])('PGROUTE_HAPROXY naming %s: said so, not "HAProxy rejected the rendered configuration"', async (_what, binary, words) => {
    const settings = await freshSettings();
    const { deployment, snapshot } = load();
    const saved = process.env.PGROUTE_HAPROXY;
    process.env.PGROUTE_HAPROXY = binary;
    try {
      const err = (await generate(deployment, snapshot, settings).then(() => undefined, (e: unknown) => e)) as Error;
      expect(err.message).toContain(words);
      expect(err.message).not.toContain('rejected');
      expect(err).not.toBeInstanceOf(ConfigError);
    } finally {
      process.env.PGROUTE_HAPROXY = saved;
    }
  });
});

describe('writeIfChanged', () => {
  it('writes new content, returns false for identical content, true for changed content', async () => {
    const dir = await mkdtemp(join(root, 'write-'));
    const path = join(dir, 'nested', 'deeper', 'file.txt');
    expect(await writeIfChanged(path, 'one\n')).toBe(true);
    expect(await readFile(path, 'utf8')).toBe('one\n');
    const mtime = (await stat(path)).mtimeMs;
    expect(await writeIfChanged(path, 'one\n')).toBe(false);
    expect((await stat(path)).mtimeMs).toBe(mtime);
    expect(await writeIfChanged(path, 'two\n')).toBe(true);
    expect(await readFile(path, 'utf8')).toBe('two\n');
    expect(await writeIfChanged(path, '')).toBe(true);
    expect(await writeIfChanged(path, '')).toBe(false);
    // No temporary files are left next to it.
    expect(await readdir(join(dir, 'nested', 'deeper'))).toEqual(['file.txt']);
  });

  it('replaces a file someone else changed, and applies the mode to new files', async () => {
    const dir = await mkdtemp(join(root, 'write-'));
    const path = join(dir, 'f');
    await writeFile(path, 'edited by hand');
    expect(await writeIfChanged(path, 'rendered')).toBe(true);
    expect(await readFile(path, 'utf8')).toBe('rendered');
    const secret = join(dir, 'secret');
    expect(await writeIfChanged(secret, 'x', 0o600)).toBe(true);
    expect((await stat(secret)).mode & 0o777).toBe(0o600);
  });
});
