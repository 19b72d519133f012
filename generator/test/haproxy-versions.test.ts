// What each HAProxy version reads from the rendered files: the `.if version_atleast(X)` blocks
// resolved here as HAProxy resolves them, plus the parsing of `haproxy -v` and `haproxy -c` output.
// (The real 2.6, 3.0 and 3.2 run the same files in test/e2e/haproxy-versions.test.ts.)

import { describe, expect, it } from 'vitest';
import { haproxyWarnings } from '../src/haproxy/check.js';
import { parseHaproxyVersion } from '../src/haproxy/version.js';
import { renderConfig } from '../src/render/haproxy-config.js';
import { routeTableDocument } from '../src/render/route-table.js';
import { defaultSettings, statePaths } from '../src/settings.js';
import { loadTemplates } from '../src/render/templates.js';
import { parseTenantsFile } from '../src/sources/file.js';
import { FALLBACK, layoutOf, ORIGIN } from './support.js';

const settings = defaultSettings('/tmp/pgroute-versions-test');

function rendered(): { cfg: string; spoe: string } {
  const { deployment, snapshot } = parseTenantsFile('tenants:\n  - id: acme\n    host: 10.0.0.5\n    port: 5432\n', ORIGIN, FALLBACK);
  const doc = routeTableDocument(deployment, snapshot, layoutOf(snapshot));
  const r = renderConfig(deployment, layoutOf(snapshot), settings, statePaths(settings.stateDir), doc.version, loadTemplates());
  return { cfg: r.haproxyConfig, spoe: r.spoeConfig };
}

/** The lines HAProxy `version` keeps: only `version_atleast(X)`, `!`, `.else` and `.endif` are used. */
function asSeenBy(version: string, text: string): string[] {
  const atLeast = (x: string): boolean => {
    const [a, b] = [version.split('.').map(Number), x.split('.').map(Number)];
    for (let i = 0; i < Math.max(a.length, b.length); i++) if ((a[i] ?? 0) !== (b[i] ?? 0)) return (a[i] ?? 0) > (b[i] ?? 0);
    return true;
  };
  const kept: string[] = [];
  const stack: boolean[] = [];
  for (const line of text.split('\n')) {
    const cond = /^\.if (!?)version_atleast\(([\d.]+)\)$/.exec(line);
    if (cond) stack.push(atLeast(cond[2] as string) !== (cond[1] === '!'));
    else if (line === '.else') stack.push(!(stack.pop() as boolean));
    else if (line === '.endif') stack.pop();
    else if (line.startsWith('.')) throw new Error(`unexpected directive: ${line}`);
    else if (stack.every(Boolean)) kept.push(line);
  }
  expect(stack).toEqual([]);
  return kept;
}

function block(lines: string[], header: string): string[] {
  const start = lines.indexOf(header);
  expect(start).toBeGreaterThanOrEqual(0);
  const end = lines.findIndex((l, i) => i > start && (l === '' || /^(global|defaults|frontend|backend|listen|resolvers|spoe-|\[)/.test(l)));
  return lines.slice(start + 1, end < 0 ? undefined : end);
}

const SPOE_BEFORE_3_1 = ['    no option async', '    timeout hello 2s', '    timeout idle 60s', '    max-waiting-frames 200'];

describe('the rendered files, as each HAProxy version reads them', () => {
  const { cfg, spoe } = rendered();

  for (const v of ['2.6', '3.0']) {
    it(`${v}: agent backend in mode tcp, the SPOE keywords of the pre-3.1 engine, no 3.2-only tunable`, () => {
      const lines = asSeenBy(v, cfg);
      expect(block(lines, 'backend pgroute-agent')).toContain('    mode tcp');
      expect(block(lines, 'backend pgroute-agent')).not.toContain('    mode spop');
      expect(lines.join('\n')).not.toContain('tune.lua.bool-sample-conversion');
      const agent = block(asSeenBy(v, spoe), 'spoe-agent pgroute-agent');
      for (const k of SPOE_BEFORE_3_1) expect(agent).toContain(k);
    });
  }

  for (const v of ['3.1', '3.2', '3.3']) {
    it(`${v}: agent backend in mode spop, no ignored SPOE keyword${v === '3.1' ? '' : ', the Lua tunable before lua-load'}`, () => {
      const lines = asSeenBy(v, cfg);
      expect(block(lines, 'backend pgroute-agent')).toContain('    mode spop');
      expect(block(lines, 'backend pgroute-agent')).not.toContain('    mode tcp');
      const tune = lines.indexOf('    tune.lua.bool-sample-conversion pre-3.1-bug');
      if (v === '3.1') expect(tune).toBe(-1);
      else expect(tune).toBeGreaterThan(0);
      if (tune > 0) expect(tune).toBeLessThan(lines.findIndex((l) => l.startsWith('    lua-load ')));
      const agent = block(asSeenBy(v, spoe), 'spoe-agent pgroute-agent');
      for (const k of SPOE_BEFORE_3_1) expect(agent).not.toContain(k);
      expect(agent).toContain('    timeout processing 2s');
      expect(agent).toContain('    use-backend pgroute-agent');
    });
  }
});

describe('haproxy -v and haproxy -c output', () => {
  it('reads the version of every form HAProxy prints', () => {
    expect(parseHaproxyVersion('HAProxy version 2.6.12-1+deb12u4 2026/10/17 - https://haproxy.org/\nStatus: long-term')).toBe('2.6.12-1+deb12u4');
    expect(parseHaproxyVersion('HAProxy version 3.2.26-1 2026/10/14 - https://haproxy.org/')).toBe('3.2.26-1');
    expect(parseHaproxyVersion('HA-Proxy version 2.0.33 2023/01/01')).toBe('2.0.33');
    expect(parseHaproxyVersion('bash: haproxy: command not found')).toBeUndefined();
  });

  it('keeps the warnings of a check that passed, and nothing else', () => {
    const out = [
      'Warnings were found.[NOTICE]   (1) : haproxy version is 3.2.26-1',
      '[NOTICE]   (1) : path to executable is /usr/sbin/haproxy',
      '[WARNING]  (1) : config : hlua: please set "tune.lua.bool-sample-conversion"',
      'Configuration file is valid',
    ].join('\n');
    expect(haproxyWarnings(out)).toEqual(['[WARNING]  (1) : config : hlua: please set "tune.lua.bool-sample-conversion"']);
    expect(haproxyWarnings('Configuration file is valid')).toEqual([]);
  });
});
