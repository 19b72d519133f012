// `pgroute plan`'s configuration check with the real HAProxy: what the plan would write is judged by
// `haproxy -c` in a directory of its own; the state dir is left as it was.

import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { checkPlannedGeneration } from '../../src/preview/check.js';
import { planOnStateDir } from '../../src/preview/collect.js';
import { previewText } from '../../src/preview/text.js';
import { loadTemplates } from '../../src/render/templates.js';
import { defaultSettings, type Settings } from '../../src/settings.js';
import type { Deployment, Tenant } from '../../src/model.js';

const POLICY: Deployment['policy'] = { keys: ['database'], targetByPort: {}, defaultTarget: 'primary', revealDisabled: false };
const DEPLOYMENT: Deployment = { listeners: [{ address: '127.0.0.1', port: 5432 }], policy: POLICY };
const ACME: Tenant = { id: 'acme', enabled: true, targets: { primary: { host: '10.0.0.1', port: 5432 } } };

let dir = '';
afterEach(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function checked(tweak: (s: Settings) => Settings, deployment = DEPLOYMENT): Promise<{ text: string; check: Awaited<ReturnType<typeof checkPlannedGeneration>> }> {
  dir = mkdtempSync(join(tmpdir(), 'pgroute-plan-state-'));
  const settings = tweak(defaultSettings(dir));
  const { preview, generation } = await planOnStateDir(deployment, { tenants: [ACME], refused: [] }, settings);
  const check = await checkPlannedGeneration(generation, settings, loadTemplates());
  // Nothing written in the state dir: no haproxy.cfg, no candidate, no server-state file.
  expect(readdirSync(dir)).toEqual([]);
  return { text: previewText(preview, check), check };
}

describe('checkPlannedGeneration (haproxy -c)', () => {
  it('a configuration HAProxy accepts: passed, no warnings', async () => {
    const { check, text } = await checked((s) => s);
    expect(check).toEqual({ result: 'passed', warnings: [] });
    expect(text).toContain('HAProxy accepts the configuration this would write (haproxy -c).');
  });

  it("HAProxy's warnings are shown even though the check passes", async () => {
    // `timeout processing 0` leaves the SPOE agent without a timeout: HAProxy warns, and accepts.
    const { check, text } = await checked((s) => ({ ...s, agent: { ...s.agent, processingTimeout: '0' } }));
    expect(check.result).toBe('passed');
    expect(check.warnings).toEqual([expect.stringMatching(/^\[WARNING\].*missing timeouts for SPOE agent/)]);
    expect(text).toMatch(/HAProxy accepts the configuration this would write \(haproxy -c\), with warnings:\n {2}\[WARNING\].*missing timeouts/);
    expect(text).not.toContain('pgroute-plan-');
  });

  it('a configuration HAProxy refuses: rejected, with its alerts, naming the files without the temporary directory', async () => {
    const { check, text } = await checked((s) => ({ ...s, reload: { ...s.reload, hardStopAfter: '99999d' } }));
    expect(check.result).toBe('rejected');
    expect(check.reason).toMatch(/parsing \[haproxy\.cfg:\d+\] : timer overflow in argument '99999d' to 'hard-stop-after'/);
    expect(text).toContain('HAProxy would REJECT the configuration this would write (haproxy -c): applying it would fail and the running configuration would stay:\n  [ALERT]');
    expect(text).not.toContain('pgroute-plan-');
  });

  it("pgroute's own refusal before HAProxy: a TLS-only listener without a certificate", async () => {
    const { check } = await checked((s) => s, { ...DEPLOYMENT, listeners: [{ address: '127.0.0.1', port: 5432, tls: 'required' }] });
    expect(check).toEqual({ result: 'rejected', warnings: [], reason: expect.stringContaining('pgroute refuses it: listener port 5432 requires TLS, but no certificate is configured') });
  });

  it('a certificate pgroute has not made yet: not checked, and why', async () => {
    const { check, text } = await checked((s) => ({ ...s, tls: { crtPath: join(dir, 'tls', 'server.pem'), minVersion: 'TLSv1.2' } }));
    expect(check).toMatchObject({ result: 'not-checked', reason: expect.stringContaining('does not exist yet (pgroute up or watch makes it when it starts)') });
    expect(text).toContain('Not checked by HAProxy: the certificate ');
  });
});
