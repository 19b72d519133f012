// renderConfig and routeTableDocument: what HAProxy and the agent are given, from one snapshot.

import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { decodeErrorResponse } from '../../agent/src/pg/error-response.js';
import { decodePreamble } from '../../agent/src/pg/preamble.js';
import type { Deployment, TenantSnapshot } from '../src/model.js';
import { renderConfig } from '../src/render/haproxy-config.js';
import { DEFAULT_TENANT_LIMITS } from '../src/policy.js';
import { routeTableDocument } from '../src/render/route-table.js';
import { defaultSettings, statePaths } from '../src/settings.js';
import { parseTenantsFile } from '../src/sources/file.js';
import { declaredBackends, FALLBACK, layoutOf, ORIGIN, TEMPLATES } from './support.js';

const settings = defaultSettings('/tmp/pgroute-render-test');
const paths = statePaths(settings.stateDir);

const FILE = `listeners:
  - port: 5432
    address: 0.0.0.0
  - port: 6432
    address: 0.0.0.0
    target: pool
  - port: 7432
    address: "::"
    target: replica
tenants:
  - id: acme
    host: 10.0.0.5
    port: 5432
    maxconn: 50
    targets:
      pool: { host: pgbouncer.acme.internal, port: 6432 }
      replica: { host: "2001:db8::7", port: 5433 }
  - id: beta
    host: "::1"
    port: 5433
  - id: gamma
    host: db.gamma.internal
    port: 5432
    enabled: false
`;

function load(text = FILE): { deployment: Deployment; snapshot: TenantSnapshot } {
  const f = parseTenantsFile(text, ORIGIN, FALLBACK);
  expect(f.snapshot.refused).toEqual([]);
  return f;
}

function render(text = FILE): { cfg: string; spoe: string; version: string; doc: ReturnType<typeof routeTableDocument> } {
  const { deployment, snapshot } = load(text);
  const doc = routeTableDocument(deployment, snapshot, layoutOf(snapshot));
  const r = renderConfig(deployment, layoutOf(snapshot), settings, paths, doc.version, TEMPLATES);
  return { cfg: r.haproxyConfig, spoe: r.spoeConfig, version: doc.version, doc };
}

/** The lines of one `backend <name>` block (or any section header, e.g. `defaults`), up to the next blank line. */
function backendBlock(cfg: string, name: string, header = `backend ${name}`): string[] {
  const lines = cfg.split('\n');
  const start = lines.indexOf(header);
  expect(start, `${header} is declared`).toBeGreaterThanOrEqual(0);
  const rest = lines.slice(start + 1);
  const end = rest.findIndex((l) => l.trim() === '');
  return end < 0 ? rest : rest.slice(0, end);
}

describe('renderConfig', () => {
  it('declares one backend per tenant target, named pg.<id>.<target>', () => {
    const { cfg } = render();
    const tenantBackends = declaredBackends(cfg).filter((b) => b.startsWith('pg.'));
    expect(tenantBackends).toEqual(['pg.acme.pool', 'pg.acme.primary', 'pg.acme.replica', 'pg.beta.primary', 'pg.gamma.primary']);
  });

  it('renders each server with the right address, IPv6 in brackets, and the tenant maxconn', () => {
    const { cfg } = render();
    expect(backendBlock(cfg, 'pg.acme.primary')).toEqual([
      '    mode tcp',
      '    default-server init-addr last,libc,none resolvers pgroute',
      '    balance first',
      '    timeout queue 10s',
      '    server s1 10.0.0.5:5432 check inter 2s fastinter 250ms downinter 250ms maxconn 50',
    ]);
    expect(backendBlock(cfg, 'pg.acme.pool')).toContain('    server s1 pgbouncer.acme.internal:6432 check inter 2s fastinter 250ms downinter 250ms maxconn 50');
    expect(backendBlock(cfg, 'pg.acme.replica')).toContain('    server s1 [2001:db8::7]:5433 check inter 2s fastinter 250ms downinter 250ms maxconn 50');
    expect(backendBlock(cfg, 'pg.beta.primary')).toContain('    server s1 [::1]:5433 check inter 2s fastinter 250ms downinter 250ms');
    // A disabled tenant still has its backend (the agent refuses it; HAProxy never lacks a backend).
    expect(backendBlock(cfg, 'pg.gamma.primary')).toContain('    server s1 db.gamma.internal:5432 check inter 2s fastinter 250ms downinter 250ms');
  });

  it('omits health checks when they are disabled', () => {
    const { deployment, snapshot } = load();
    const noCheck = { ...settings, healthCheck: { ...settings.healthCheck, enabled: false } };
    const cfg = renderConfig(deployment, layoutOf(snapshot), noCheck, paths, 'v', TEMPLATES).haproxyConfig;
    expect(backendBlock(cfg, 'pg.beta.primary')).toContain('    server s1 [::1]:5433');
    expect(cfg).not.toMatch(/^\s+server s1 .* check/m);
  });

  it('binds every listener, IPv6 in brackets', () => {
    const { cfg } = render();
    const binds = cfg.split('\n').filter((l) => l.startsWith('    bind ') && !l.includes(':8404') && !l.includes('unix@')); // internal sockets: cancel copies, peers
    expect(binds).toEqual(['    bind 0.0.0.0:5432', '    bind 0.0.0.0:6432', '    bind [::]:7432']);
  });

  it('has the agent backend with spop-check and its servers', () => {
    const { cfg } = render();
    const block = backendBlock(cfg, 'pgroute-agent');
    expect(block).toContain('    option spop-check');
    expect(block).toContain('    server agent1 127.0.0.1:6710 check inter 1s fall 2 rise 1');
    expect(cfg).toContain('backend pgroute-nowhere');
    expect(cfg).toContain('    default_backend pgroute-nowhere');
    expect(cfg).toContain('    use_backend %[var(txn.pgr.be)]');
  });

  it('renders several agent servers, IPv6 in brackets', () => {
    const { deployment, snapshot } = load();
    const s = { ...settings, agent: { ...settings.agent, servers: [{ host: '127.0.0.1', port: 6710 }, { host: '::1', port: 6720 }] } };
    const cfg = renderConfig(deployment, layoutOf(snapshot), s, paths, 'v', TEMPLATES).haproxyConfig;
    const block = backendBlock(cfg, 'pgroute-agent');
    expect(block).toContain('    server agent1 127.0.0.1:6710 check inter 1s fall 2 rise 1');
    expect(block).toContain('    server agent2 [::1]:6720 check inter 1s fall 2 rise 1');
  });

  it('points at the state paths and the Lua file, and names the snapshot version', () => {
    const { cfg, version } = render();
    expect(cfg.split('\n')[0]).toBe(`# Rendered by pgroute from snapshot ${version}; edit the templates in haproxy/, not this file.`);
    expect(cfg).toContain(`    lua-load ${settings.luaPath}`);
    expect(cfg).toContain(`    filter spoe engine pgroute config ${paths.spoeConfig}`);
    expect(cfg).toContain(`    stats socket ${paths.adminSocket} mode 600 level admin expose-fd listeners`);
  });

  it('embeds the six refusals as hex ErrorResponses: FATAL 08P01 (4), 57P03 (2), and the generic 53300 over a limit', () => {
    const { cfg } = render();
    // Each once (the hold frontend, partials/pause-frontend.hbs, repeats three of them).
    const hexes = [...new Set([...cfg.matchAll(/set-var\(txn\.pgr\.err\) bin\(([0-9a-f]+)\)/g)].map((m) => m[1] as string))];
    expect(hexes).toHaveLength(6);
    const decoded = hexes.map((h) => decodeErrorResponse(Buffer.from(h, 'hex')));
    expect(decoded.map((d) => [d?.severity, d?.fields.get('V'), d?.sqlstate])).toEqual([
      ['FATAL', 'FATAL', '08P01'],
      ['FATAL', 'FATAL', '08P01'],
      ['FATAL', 'FATAL', '08P01'],
      ['FATAL', 'FATAL', '08P01'],
      ['FATAL', 'FATAL', '57P03'],
      ['FATAL', 'FATAL', '57P03'],
    ]);
    expect(decoded[0]?.message).toBe(`invalid length of startup packet (pgroute accepts 8 to ${settings.limits.maxStartupPacket} bytes)`);
    expect(decoded[0]?.hint).toContain('PostgreSQL client');
    // Bytes sent after a negotiation request before its answer (clear text: no TLS configured here).
    expect(decoded[1]?.message).toBe('received unencrypted data after SSL request');
    expect(decoded[2]?.message).toBe('received unencrypted data after GSSAPI encryption request');
    expect(decoded[3]?.message).toContain(`within ${settings.timeouts.startup}`);
    expect(decoded[4]?.message).toContain('routing agent is not available');
    expect(decoded[5]?.message).toContain("the tenant's database server is not available right now");
    // Over a limit whose own words are missing from the limits map: the map lookup's default (partials/limit-refusals.hbs).
    const defaults = [...new Set([...cfg.matchAll(/map_str\([^,]+\/limits\.map,([A-Za-z0-9+/=]+)\),b64dec/g)].map((m) => m[1] as string))];
    expect(defaults).toHaveLength(1);
    const generic = decodeErrorResponse(Buffer.from(defaults[0] as string, 'base64'));
    expect([generic?.severity, generic?.sqlstate, generic?.message]).toEqual(['FATAL', '53300', 'too many connections for this tenant (over one of its admission limits)']);
    // Only once the verdict named a backend, and only when that backend has no usable server.
    expect(cfg).toMatch(/set-var\(txn\.pgr\.err\) bin\([0-9a-f]+\) if \{ var\(txn\.pgr\.be\),nbsrv eq 0 \} !pgr_refused !\{ stopping \}/);
    // The bad-length acl and the refusal agree on the bound.
    expect(cfg).toContain(`hex2i 8:${settings.limits.maxStartupPacket}`);
  });

  it("lets through the cancel copies of every CancelRequest the agent reads (keys of 4 to 256 bytes), no other", () => {
    const { cfg } = render();
    const bound = /hex2i (\d+):(\d+) \} \{ req\.payload\(4,4\) -m bin 04d2162e \}/.exec(cfg.slice(cfg.indexOf('frontend pgroute-cancel-copy')));
    const [min, max] = [Number(bound?.[1]), Number(bound?.[2])];
    const cancel = (keyBytes: number): Buffer => {
      const b = Buffer.alloc(12 + keyBytes, 0x6b);
      b.writeInt32BE(12 + keyBytes, 0);
      b.writeInt32BE(80877102, 4);
      b.writeInt32BE(1234, 8);
      return b;
    };
    for (let key = 0; key <= 300; key++) {
      const packet = cancel(key);
      expect(packet.length >= min && packet.length <= max, `a ${key}-byte key`).toBe(decodePreamble(packet).kind === 'cancel');
    }
  });

  it('renders the SPOE scope with the agent timeouts', () => {
    const { spoe } = render();
    expect(spoe).toContain('[pgroute]');
    expect(spoe).toContain('    timeout processing 2s');
    expect(spoe).toContain('    timeout hello 2s');
    expect(spoe).toContain('    max-waiting-frames 200');
    expect(spoe).toContain('    use-backend pgroute-agent');
    // Failed exchanges are logged (the refused client never reached the agent); normal ones are not.
    // Both engines: the startup's and the hold's.
    expect(spoe.split('    log global\n    option dontlog-normal\n')).toHaveLength(3);
    expect(spoe.slice(spoe.indexOf('[pgroute-hold]'))).toContain('    log global\n    option dontlog-normal\n');
  });

  it('omits the stats frontend and logging when disabled', () => {
    const { deployment, snapshot } = load();
    const s = { ...settings, stats: { ...settings.stats, enabled: false }, log: { ...settings.log, enabled: false, errorsOnly: false } };
    const r = renderConfig(deployment, layoutOf(snapshot), s, paths, 'v', TEMPLATES);
    const cfg = r.haproxyConfig;
    expect(cfg).not.toContain('pgroute-stats');
    expect(cfg).not.toMatch(/^\s+log stdout/m);
    expect(cfg).not.toContain('dontlog-normal');
    expect(r.spoeConfig).not.toContain('log global');
  });

  it('keys the verdict memo by the clear-text packet alone unless the routing policy reads the port', () => {
    const memoOn = { ...settings, memo: { ...settings.memo, enabled: true } };
    const keyRules = (text: string): string[] => {
      const { deployment, snapshot } = load(text);
      const cfg = renderConfig(deployment, layoutOf(snapshot), memoOn, paths, 'v', TEMPLATES).haproxyConfig;
      return cfg.split('\n').filter((l) => /set-var(-fmt)?\(txn\.pgr\.m[kf]\)/.test(l)).map((l) => l.trim());
    };
    // Listener targets (FILE: ports 6432 and 7432 have their own): the port is in every key.
    const byPort = keyRules(FILE);
    expect(byPort).toContain('tcp-request content set-var(txn.pgr.mf) dst_port if !pgr_refused !pg_cancel !{ ssl_fc }');
    expect(byPort).toContain('tcp-request content set-var(txn.pgr.mk) req.payload_lv(0,4,0),sha2(256),hex,concat(/,txn.pgr.mf),sha2(256) if !pgr_refused !pg_cancel');
    expect(byPort.some((l) => l.includes('sha2(256) if !{ ssl_fc }'))).toBe(false);
    // A TLS-only port: the port decides whether clear text is refused.
    expect(keyRules('listeners:\n  - port: 5432\n    tls: required\ntenants: []\n')).toEqual(byPort);
    // No port in the policy: a clear-text packet of up to 128 bytes is its own key (no digest); a
    // longer one its SHA-256 alone, and TLS one over the packet's, the port and the server name: both
    // hex-encoded, so never starting with the 0 byte every raw packet starts with.
    const plain = keyRules('tenants:\n  - id: acme\n    host: 10.0.0.5\n    port: 5432\n');
    expect(plain).toEqual([
      'tcp-request content set-var(txn.pgr.mk) req.payload_lv(0,4,0) if { req.payload(0,4),hex,hex2i le 128 } !{ ssl_fc } !pgr_refused !pg_cancel',
      'tcp-request content set-var(txn.pgr.mk) req.payload_lv(0,4,0),sha2(256),hex if !pgr_memo_key !{ ssl_fc } !pgr_refused !pg_cancel',
      'tcp-request content set-var-fmt(txn.pgr.mf) "%[dst_port]/tls/%[ssl_fc_sni]" if { ssl_fc } !pgr_refused !pg_cancel',
      'tcp-request content set-var(txn.pgr.mk) req.payload_lv(0,4,0),sha2(256),hex,concat(/,txn.pgr.mf),sha2(256),hex if { ssl_fc } !pgr_refused !pg_cancel',
    ]);
    // The table keeps every byte of the longest raw key; with the port in the key, 32-byte digests.
    const tableLine = (text: string): string | undefined => {
      const { deployment, snapshot } = load(text);
      const cfg = renderConfig(deployment, layoutOf(snapshot), memoOn, paths, 'v', TEMPLATES).haproxyConfig;
      return backendBlock(cfg, 'pgroute-memo').find((l) => l.includes('stick-table'))?.trim();
    };
    expect(tableLine('tenants:\n  - id: acme\n    host: 10.0.0.5\n    port: 5432\n')).toBe('stick-table type binary len 128 size 100000 expire 10m store gpt(2)');
    expect(tableLine(FILE)).toBe('stick-table type binary len 32 size 100000 expire 10m store gpt(2)');
  });

  it("is mirrored by the benchmarks' baseline in every setting that acts on each connection", () => {
    // bench/baselines/haproxy-baseline.cfg (static HAProxy and the Lua router) must pay what pgroute's
    // defaults make every connection pay outside routing, or the rate ratios measure the settings.
    const perConnection = (lines: string[]): string[] =>
      lines.map((l) => l.trim()).filter((l) => /^(option (cli|srv)tcpka|(cli|srv)tcpka-|option (nolinger|tcp-smart))/.test(l));
    const ours = perConnection(backendBlock(render().cfg, '', 'defaults'));
    expect(ours.length).toBeGreaterThanOrEqual(8);
    const baseline = readFileSync(new URL('../../bench/baselines/haproxy-baseline.cfg', import.meta.url), 'utf8');
    expect(perConnection(backendBlock(baseline, '', 'defaults'))).toEqual(ours);
  });

  it('renders no tenant backends for an empty snapshot', () => {
    const { cfg } = render('tenants: []\n');
    expect(declaredBackends(cfg)).toEqual(['pgroute-hold-loop', 'pgroute-hold-agent', 'pgroute-cancels', 'pgroute-cancel-handover', 'pgroute-learned', 'pgroute-nowhere', 'pgroute-agent', 'pgroute-access', 'pgroute-tenants', 'pgroute-clients']);
  });
});

describe('routeTableDocument', () => {
  it('names exactly the tenant backends haproxy.cfg declares, and no others', () => {
    const { cfg, doc } = render();
    const inRoutes = doc.tenants.flatMap((t) => Object.values(t.backends));
    const declared = declaredBackends(cfg);
    for (const name of inRoutes) expect(declared, `routes.json names ${name}`).toContain(name);
    const tenantDeclared = declared.filter((b) => b.startsWith('pg.'));
    expect([...tenantDeclared].sort()).toEqual([...inRoutes].sort());
    expect(new Set(declared).size).toBe(declared.length);
  });

  it('maps every target of every tenant, enabled or not', () => {
    const { doc } = render();
    expect(doc.tenants).toEqual([
      { id: 'acme', enabled: true, backends: { pool: 'pg.acme.pool', primary: 'pg.acme.primary', replica: 'pg.acme.replica' }, limits: DEFAULT_TENANT_LIMITS },
      { id: 'beta', enabled: true, backends: { primary: 'pg.beta.primary' }, limits: DEFAULT_TENANT_LIMITS },
      { id: 'gamma', enabled: false, backends: { primary: 'pg.gamma.primary' }, limits: DEFAULT_TENANT_LIMITS },
    ]);
    expect(doc.policy.targetByPort).toEqual({ 6432: 'pool', 7432: 'replica' });
  });

  it('has a stable version for the same tenants, whatever their order in the file', () => {
    const a = render().version;
    expect(render().version).toBe(a);
    const reordered = FILE.replace(
      /  - id: acme[\s\S]*?(?=  - id: beta)/,
      '',
    ) + FILE.match(/  - id: acme[\s\S]*?(?=  - id: beta)/)?.[0];
    expect(load(reordered).snapshot.tenants.map((t) => t.id)).toEqual(['acme', 'beta', 'gamma']);
    expect(render(reordered).version).toBe(a);
    expect(a).toMatch(/^[0-9a-f]{16}$/);
  });

  it.each([
    ['a tenant is disabled', FILE.replace('    host: "::1"\n    port: 5433\n', '    host: "::1"\n    port: 5433\n    enabled: false\n')],
    ['a tenant is added', `${FILE}  - { id: delta, host: 10.0.0.9, port: 5432 }\n`],
    ['a tenant is removed', FILE.replace(/  - id: gamma[\s\S]*$/, '')],
    ['a tenant is renamed', FILE.replace('id: beta', 'id: betb')],
    ['a target is added', FILE.replace('    host: "::1"\n    port: 5433\n', '    host: "::1"\n    port: 5433\n    targets: { pool: { host: 10.1.1.1, port: 6432 } }\n')],
    ['the routing policy changes', `routing:\n  revealDisabled: true\n${FILE}`],
    ['a listener target changes', FILE.replace('target: pool', 'target: replica2')],
  ])('changes the version when %s', (_what, changed) => {
    const base = render();
    const after = render(changed);
    expect(after.version).not.toBe(base.version);
    expect(after.cfg).toContain(`from snapshot ${after.version};`);
  });
});
