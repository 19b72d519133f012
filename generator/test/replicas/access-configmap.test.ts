// The access switch kept durable in a ConfigMap (generator/src/replicas/access-configmap.ts and
// access-durable.ts), through the real @kubernetes/client-node CoreV1Api against the test API server
// (test/support/fake-kube-apiserver.ts): merge by version, 409 retried, read into an empty state
// dir before anything else, written back when access.json learns a switch. Ports: portBlock(30).

import { readFile, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { CoreV1Api } from '@kubernetes/client-node';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FakeKubeApiServer } from '../../../test/support/fake-kube-apiserver.js';
import { kubeConfigFor } from '../../../test/support/kube-config.js';
import { portBlock } from '../../../test/support/ports.js';
import { accessFile, readAccess, writeAccess, type AccessEntry } from '../../src/access.js';
import { ACCESS_CONFIGMAP_KEY, ConfigMapAccessStore, configMapApi, configMapText, parseConfigMapRef } from '../../src/replicas/access-configmap.js';
import { pointerPath, startAccessPersistence } from '../../src/replicas/access-durable.js';
import { silentLog, tempDir } from '../tls/support.js';

const NS = 'pgroute';
const NAME = 'pgroute-access';
const REF = { namespace: NS, name: NAME };
const block = portBlock(30);
let next = 0;

let dir: string;
let cleanup: () => Promise<void>;
let fake: FakeKubeApiServer;
beforeEach(async () => {
  ({ dir, cleanup } = await tempDir('pgroute-access-cm-'));
  fake = new FakeKubeApiServer({ port: block.spare[next++] as number });
  await fake.start();
});
afterEach(async () => {
  await fake.stop();
  await cleanup();
});

const store = (): ConfigMapAccessStore => new ConfigMapAccessStore(REF, configMapApi(kubeConfigFor(fake.url)));
const stored = (): string | undefined => fake.getConfigMap(NS, NAME)?.data?.[ACCESS_CONFIGMAP_KEY];
const e = (state: AccessEntry['state'], version: number): AccessEntry => ({ state, version });

describe('the fake apiserver serves ConfigMaps as the real one does', () => {
  it('GET 404, PUT of a missing one 404, PUT with a stale resourceVersion 409, a no-op PUT keeps it', async () => {
    const api = kubeConfigFor(fake.url).makeApiClient(CoreV1Api);
    await expect(api.readNamespacedConfigMap({ namespace: NS, name: NAME })).rejects.toMatchObject({ code: 404 });
    await expect(api.replaceNamespacedConfigMap({ namespace: NS, name: NAME, body: { metadata: { name: NAME } } })).rejects.toMatchObject({ code: 404 });
    fake.createConfigMap({ namespace: NS, name: NAME });
    const cm = await api.readNamespacedConfigMap({ namespace: NS, name: NAME });
    const rv = cm.metadata!.resourceVersion!;
    expect((await api.replaceNamespacedConfigMap({ namespace: NS, name: NAME, body: cm })).metadata?.resourceVersion).toBe(rv);
    const changed = await api.replaceNamespacedConfigMap({ namespace: NS, name: NAME, body: { ...cm, data: { a: 'x' } } });
    expect(Number(changed.metadata?.resourceVersion)).toBeGreaterThan(Number(rv));
    await expect(api.replaceNamespacedConfigMap({ namespace: NS, name: NAME, body: { ...cm, data: { a: 'y' } } })).rejects.toMatchObject({ code: 409 });
    expect(fake.getConfigMap(NS, NAME)?.data).toEqual({ a: 'x' });
  });
});

describe('ConfigMapAccessStore', () => {
  it('writes only entries newer than the stored ones, keeps other keys, and holds any state (paused too)', async () => {
    fake.createConfigMap({ namespace: NS, name: NAME, data: { note: 'kept', [ACCESS_CONFIGMAP_KEY]: configMapText({ acme: e('disabled', 100), globex: e('paused', 50) }) } });
    const s = store();
    expect(await s.save({ acme: e('enabled', 99), globex: e('paused', 50) })).toEqual({ written: [], conflicts: 0 });
    expect(await s.save({ acme: e('enabled', 101), initech: e('paused', 7) })).toEqual({ written: ['acme', 'initech'], conflicts: 0 });
    expect(await s.read()).toEqual({ acme: e('enabled', 101), globex: e('paused', 50), initech: e('paused', 7) });
    expect(fake.getConfigMap(NS, NAME)?.data?.['note']).toBe('kept');
    // The same text as access.json (one format for both).
    expect(JSON.parse(stored()!)).toEqual({ disabled: [], entries: { acme: e('enabled', 101), globex: e('paused', 50), initech: e('paused', 7) } });
  });

  it('two replicas that read the same version both land: the second meets a 409, reads again and merges', async () => {
    fake.createConfigMap({ namespace: NS, name: NAME });
    fake.holdRequests('GET', 2);
    const [a, b] = await Promise.all([store().save({ acme: e('disabled', 10) }), store().save({ globex: e('disabled', 11), acme: e('enabled', 9) })]);
    expect([a.conflicts, b.conflicts].sort()).toEqual([0, 1]);
    expect(await store().read()).toEqual({ acme: e('disabled', 10), globex: e('disabled', 11) });
  });

  it('says what to do when the ConfigMap is missing or not an access document', async () => {
    await expect(store().read()).rejects.toThrow(`cannot get ConfigMap ${NS}/${NAME} (404); create it (kubectl apply -k kubernetes/base creates it empty) or fix --access-configmap`);
    fake.createConfigMap({ namespace: NS, name: NAME, data: { [ACCESS_CONFIGMAP_KEY]: 'not json' } });
    await expect(store().read()).rejects.toThrow(/key access.json is not an access document/);
  });

  it('parses [<namespace>/]<name>', () => {
    expect(parseConfigMapRef('pgroute-access', 'pgroute')).toEqual(REF);
    expect(parseConfigMapRef('other/pgroute-access', 'pgroute')).toEqual({ namespace: 'other', name: NAME });
    expect(parseConfigMapRef('pgroute-access', undefined)).toMatch(/names no namespace/);
    expect(parseConfigMapRef('a/b/c', 'x')).toMatch(/must be \[<namespace>\/\]<name>/);
    expect(parseConfigMapRef('Bad', 'x')).toMatch(/must be/);
  });
});

describe('startAccessPersistence', () => {
  it('fills an empty state dir from the ConfigMap before it returns, then writes what access.json learns', async () => {
    fake.createConfigMap({ namespace: NS, name: NAME, data: { [ACCESS_CONFIGMAP_KEY]: configMapText({ acme: e('disabled', 100) }) } });
    const p = await startAccessPersistence({ stateDir: dir, adminSocket: join(dir, 'none.sock'), store: store(), pointer: { configMap: REF }, log: silentLog, intervalMs: 50 });
    try {
      expect((await readAccess(dir)).entries).toEqual({ acme: e('disabled', 100) });
      expect(JSON.parse(await readFile(pointerPath(dir), 'utf8'))).toEqual({ configMap: REF });
      // What access-sync writes when it learns from the table, or `tenant disable` here.
      await writeAccess(dir, accessFile({ acme: e('enabled', 120), globex: e('paused', 3) }));
      await expect.poll(() => stored() && JSON.parse(stored()!).entries, { timeout: 5_000 }).toEqual({ acme: e('enabled', 120), globex: e('paused', 3) });
    } finally {
      await p.stop();
    }
  });

  it('keeps the newer local entry over an older stored one, and writes it back', async () => {
    fake.createConfigMap({ namespace: NS, name: NAME, data: { [ACCESS_CONFIGMAP_KEY]: configMapText({ acme: e('disabled', 100) }) } });
    await writeFile(join(dir, 'access.json'), configMapText({ acme: e('enabled', 200) }));
    const p = await startAccessPersistence({ stateDir: dir, adminSocket: join(dir, 'none.sock'), store: store(), pointer: { configMap: REF }, log: silentLog, intervalMs: 50 });
    try {
      expect((await readAccess(dir)).entries).toEqual({ acme: e('enabled', 200) });
      await expect.poll(() => JSON.parse(stored()!).entries, { timeout: 5_000 }).toEqual({ acme: e('enabled', 200) });
    } finally {
      await p.stop();
    }
  });

  it('goes on without a ConfigMap that does not answer within the bound, and teaches the table what it holds once it answers', async () => {
    // HAProxy's admin socket, as far as `set table` goes: records the commands, answers nothing (success).
    const commands: string[] = [];
    const admin = createServer((c) => {
      c.setEncoding('utf8');
      c.on('data', (d: string) => {
        commands.push(...d.split('\n').flatMap((l) => l.split('; ')).filter((x) => x !== '' && x !== 'quit'));
        c.end();
      });
    });
    const socket = join(dir, 'admin.sock');
    await new Promise<void>((res) => admin.listen(socket, res));
    const t = Date.now();
    const p = await startAccessPersistence({ stateDir: dir, adminSocket: socket, store: store(), pointer: { configMap: REF }, log: silentLog, intervalMs: 50, loadLimitMs: 300 });
    try {
      expect(Date.now() - t).toBeLessThan(5_000);
      expect((await readAccess(dir)).entries).toEqual({});
      // The ConfigMap appears (the API server answers again): its switch goes to the replicated
      // table, from where access-sync learns it (this module never writes access.json after start).
      fake.createConfigMap({ namespace: NS, name: NAME, data: { [ACCESS_CONFIGMAP_KEY]: configMapText({ acme: e('disabled', 100) }) } });
      await expect.poll(() => commands, { timeout: 5_000 }).toContain(`set table pgroute-access key acme data.gpt0 ${100 * 4 + 1}`);
      expect((await readAccess(dir)).entries).toEqual({});
    } finally {
      await p.stop();
      admin.close();
    }
  });
});
