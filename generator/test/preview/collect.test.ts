// `pgroute plan`'s edge: what it reads from a state dir, and what it refuses to read.

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/errors.js';
import { previewOnStateDir, readAppliedFiles } from '../../src/preview/collect.js';
import { defaultSettings } from '../../src/settings.js';
import type { Deployment, Tenant } from '../../src/model.js';

const POLICY: Deployment['policy'] = { keys: ['database'], targetByPort: {}, defaultTarget: 'primary', revealDisabled: false };
const DEPLOYMENT: Deployment = { listeners: [{ address: '127.0.0.1', port: 5432 }], policy: POLICY };
const ACME: Tenant = { id: 'acme', enabled: true, targets: { primary: { host: '10.0.0.1', port: 5432 } } };

let dir = '';
afterEach(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function stateDir(files: Record<string, string>): string {
  dir = mkdtempSync(join(tmpdir(), 'pgroute-plan-'));
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  return dir;
}

describe('previewOnStateDir', () => {
  it('an empty state dir: nothing applied, a first start', async () => {
    const d = stateDir({});
    expect(await readAppliedFiles(d)).toBeUndefined();
    const p = await previewOnStateDir(DEPLOYMENT, { tenants: [ACME], refused: [] }, defaultSettings(d));
    expect(p.kind).toBe('initial');
  });

  it('routes.json that is not pgroute\'s: a ConfigError naming the file and the flag', async () => {
    const d = stateDir({ 'routes.json': '{"tenants": 3' });
    await expect(readAppliedFiles(d)).rejects.toThrow(ConfigError);
    await expect(readAppliedFiles(d)).rejects.toThrow(`${join(d, 'routes.json')} is not JSON`);
    writeFileSync(join(d, 'routes.json'), '{"version": "x"}');
    await expect(readAppliedFiles(d)).rejects.toThrow(`${join(d, 'routes.json')} is unusable (policy is missing or incomplete): is --state-dir the running pgroute's?`);
  });

  it("access.json's switches hold over the source, as in the pipeline", async () => {
    const layout = { nextSpare: 0, backends: [{ name: 'pg.acme.primary', spare: false, state: { kind: 'occupied', occupant: { tenant: 'acme', target: 'primary', endpoint: { host: '10.0.0.1', port: 5432 } } } }] };
    const routes = { version: 'v1', policy: POLICY, tenants: [{ id: 'acme', enabled: false, backends: { primary: 'pg.acme.primary' } }] };
    const d = stateDir({ 'routes.json': JSON.stringify(routes), 'layout.json': JSON.stringify(layout), 'deployment.json': JSON.stringify(DEPLOYMENT), 'access.json': '{"disabled":["acme"]}' });
    const p = await previewOnStateDir(DEPLOYMENT, { tenants: [ACME], refused: [] }, defaultSettings(d));
    expect(p).toMatchObject({ kind: 'unchanged', changes: [], notes: [] });
    writeFileSync(join(d, 'access.json'), '{"disabled":[]}');
    expect(await previewOnStateDir(DEPLOYMENT, { tenants: [ACME], refused: [] }, defaultSettings(d))).toMatchObject({ kind: 'agent', changes: [{ tenant: 'acme', action: 'enable' }] });
  });
});
