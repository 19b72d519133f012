// maxqueue as a bound on the backend's queue (partials/queue-limit.hbs): rendered into each backend
// of a tenant that sets it, with a 53300 ErrorResponse naming tenant, target and limit; accepted by
// the real `haproxy -c`. test/e2e/queue-limit.test.ts proves the behaviour on a running HAProxy.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { decodeErrorResponse } from '../../agent/src/pg/error-response.js';
import { generate } from '../src/generate.js';
import { renderConfig } from '../src/render/haproxy-config.js';
import { defaultSettings, statePaths } from '../src/settings.js';
import { parseTenantsFile } from '../src/sources/file.js';
import { FALLBACK, layoutOf, ORIGIN, TEMPLATES } from './support.js';

const FILE = `
tenants:
  - id: acme
    host: 10.0.0.1
    port: 5432
    maxconn: 5
    maxqueue: 3
    targets:
      replica: { host: 10.0.0.2, port: 5432 }
  - id: beta
    host: 10.0.0.3
    port: 5432
    maxconn: 5
`;

const settings = defaultSettings('/tmp/pgroute-queue-limit-test');
const paths = statePaths(settings.stateDir);
const f = parseTenantsFile(FILE, ORIGIN, FALLBACK);

function block(cfg: string, name: string): string[] {
  const lines = cfg.split('\n');
  const start = lines.indexOf(`backend ${name}`);
  if (start < 0) throw new Error(`no backend ${name}`);
  const out: string[] = [];
  for (let i = start + 1; i < lines.length && (lines[i] ?? '') !== ''; i++) out.push(lines[i] as string);
  return out;
}

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe('maxqueue bounds the queue of each target of the tenant', () => {
  const cfg = renderConfig(f.deployment, layoutOf(f.snapshot), settings, paths, 'v', TEMPLATES).haproxyConfig;

  it('each backend of a tenant with maxqueue refuses past the limit per usable server, never a cancel', () => {
    for (const target of ['primary', 'replica']) {
      const b = block(cfg, `pg.acme.${target}`);
      expect(b).toContain('    acl pgr_queue_full     avg_queue ge 3');
      expect(b).toContain('    acl pgr_cancel         req.payload(4,4) -m bin 04d2162e');
      expect(b).toContain('    tcp-request content lua.pgroute-refuse if pgr_queue_full !pgr_cancel');
      const set = b.find((l) => l.startsWith('    tcp-request content set-var(txn.pgr.err) bin('));
      const hex = /bin\(([0-9a-f]+)\) if pgr_queue_full !pgr_cancel$/.exec(set ?? '')?.[1];
      expect(hex).toBeDefined();
      expect(decodeErrorResponse(Buffer.from(hex as string, 'hex'))).toMatchObject({
        severity: 'FATAL',
        sqlstate: '53300',
        message: `too many connections waiting for tenant "acme", target "${target}" (at most 3 wait for a server slot)`,
        hint: "Retry in a moment; the tenant's servers are at their connection limit (maxconn).",
      });
    }
  });

  it('a tenant without maxqueue has no queue rule', () => {
    expect(block(cfg, 'pg.beta.primary').join('\n')).not.toContain('pgr_queue_full');
  });

  it('the real haproxy -c accepts it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pgroute-queue-limit-'));
    dirs.push(dir);
    const g = await generate(f.deployment, f.snapshot, defaultSettings(dir));
    expect(g.checkWarnings).toEqual([]);
    expect(g.rendered.haproxyConfig).toContain('avg_queue ge 3');
  });
});
