// The deployment flags as operators type them: parsed into Settings, bad values refused naming the flag.

import { Command } from 'commander';
import { describe, expect, it } from 'vitest';
import { addDeploymentFlags, settingsFromFlags, type DeploymentFlags } from '../settings-options.js';
import { parseDurationMs, parseSocketPath } from '../flag-values.js';
import { ConfigError } from '../../generator/src/errors.js';
import { renderConfig } from '../../generator/src/render/haproxy-config.js';
import { loadTemplates } from '../../generator/src/render/templates.js';
import { EMPTY_LAYOUT, desiredOccupants, layoutForReload } from '../../generator/src/layout.js';
import { statePaths } from '../../generator/src/settings.js';

function flags(...args: string[]): DeploymentFlags {
  const cmd = addDeploymentFlags(new Command('up').exitOverride());
  cmd.parse(['--state-dir', '/tmp/pgroute-flags-test', ...args], { from: 'user' });
  return cmd.opts<DeploymentFlags>();
}

describe('--check-interval', () => {
  it('defaults to 2s and reaches every tenant server of the rendered config', () => {
    expect(settingsFromFlags(flags()).settings.healthCheck.interval).toBe('2s');
    const { settings } = settingsFromFlags(flags('--check-interval', '10s'));
    expect(settings.healthCheck.interval).toBe('10s');
    const occupants = desiredOccupants([{ id: 'acme', enabled: true, targets: { primary: { host: '10.0.0.1', port: 5432 } } }] as never);
    const layout = layoutForReload(EMPTY_LAYOUT, occupants, 1);
    const cfg = renderConfig({ listeners: [{ address: '0.0.0.0', port: 5432 }] } as never, layout, settings, statePaths(settings.stateDir), 'v', loadTemplates()).haproxyConfig;
    expect(cfg).toContain('server s1 10.0.0.1:5432 check inter 10s fastinter 250ms downinter 250ms');
  });

  it('refuses nonsense and intervals under 100ms', () => {
    for (const bad of ['soon', '-1s', '50ms', '1.5s', '']) expect(() => settingsFromFlags(flags('--check-interval', bad)), bad).toThrow(/--check-interval \(PGROUTE_CHECK_INTERVAL\) must be a duration/);
  });
});

describe('--session-timeout', () => {
  function tunnel(f: DeploymentFlags): string | undefined {
    const { settings } = settingsFromFlags(f);
    const cfg = renderConfig({ listeners: [{ address: '0.0.0.0', port: 5432 }] } as never, EMPTY_LAYOUT, settings, statePaths(settings.stateDir), 'v', loadTemplates()).haproxyConfig;
    return /^\s+timeout tunnel (\S+)$/m.exec(cfg)?.[1];
  }

  it('defaults to 7 days of silence, set by flag or PGROUTE_SESSION_TIMEOUT', () => {
    expect(tunnel(flags())).toBe('7d');
    expect(tunnel(flags('--session-timeout', '12h'))).toBe('12h');
    const before = process.env['PGROUTE_SESSION_TIMEOUT'];
    process.env['PGROUTE_SESSION_TIMEOUT'] = '3d';
    try {
      expect(tunnel(flags())).toBe('3d');
    } finally {
      if (before === undefined) delete process.env['PGROUTE_SESSION_TIMEOUT'];
      else process.env['PGROUTE_SESSION_TIMEOUT'] = before;
    }
  });

  it('refuses what HAProxy cannot hold (over 24 days) and nonsense', () => {
    expect(() => settingsFromFlags(flags('--session-timeout', '25d'))).toThrow(/--session-timeout \(PGROUTE_SESSION_TIMEOUT\) must be a duration of at most 24d/);
    for (const bad of ['forever', '500ms', '-1h']) expect(() => settingsFromFlags(flags('--session-timeout', bad)), bad).toThrow(/--session-timeout \(PGROUTE_SESSION_TIMEOUT\) must be a duration/);
  });
});

describe('parseDurationMs', () => {
  it('reads HAProxy durations (no unit = ms)', () => {
    expect(parseDurationMs('--x', '250')).toBe(250);
    expect(parseDurationMs('--x', '30s')).toBe(30_000);
    expect(parseDurationMs('--x', '2m')).toBe(120_000);
    expect(parseDurationMs('--x', '1h')).toBe(3_600_000);
    expect(() => parseDurationMs('--x', '1y')).toThrow(ConfigError);
  });
});

describe('parseSocketPath', () => {
  it('resolves to an absolute path haproxy.cfg can carry, or refuses naming the flag', () => {
    expect(parseSocketPath('--agent-socket', '/run/pgroute/agent.sock')).toBe('/run/pgroute/agent.sock');
    expect(parseSocketPath('--agent-socket', 'rel.sock')).toBe(`${process.cwd()}/rel.sock`);
    for (const bad of ['/a b.sock', '/x\n.sock', `/${'a'.repeat(120)}`, '/a#b']) expect(() => parseSocketPath('--agent-socket', bad), bad).toThrow(/--agent-socket must be a socket path/);
  });
});
