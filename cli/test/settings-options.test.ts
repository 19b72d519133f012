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

describe('--agent-timeout and the other HAProxy timeouts', () => {
  const agentTimeout = (...args: string[]): string => settingsFromFlags(flags(...args)).settings.agent.processingTimeout;

  it('defaults to 2s, or half of a startup timeout under 4s', () => {
    expect(agentTimeout()).toBe('2s');
    expect(agentTimeout('--startup-timeout', '10s')).toBe('2s');
    expect(agentTimeout('--startup-timeout', '3s')).toBe('1500ms');
    expect(agentTimeout('--agent-timeout', '4999ms')).toBe('4999ms');
  });

  it('refuses a verdict wait the startup timeout would always cut short, and 0 (HAProxy reads it as no timeout)', () => {
    expect(() => settingsFromFlags(flags('--agent-timeout', '5s'))).toThrow('--agent-timeout must be a duration shorter than --startup-timeout 5s, got "5s"');
    expect(() => settingsFromFlags(flags('--agent-timeout', '2s', '--startup-timeout', '1500ms'))).toThrow('--agent-timeout must be a duration shorter than --startup-timeout 1500ms, got "2s"');
    for (const bad of ['0', '0ms', 'soon', '']) expect(() => settingsFromFlags(flags('--agent-timeout', bad)), bad).toThrow(/^--agent-timeout must be a duration of at least 1ms/);
  });

  it('refuses 0 and what HAProxy cannot hold (over 24 days) for every timeout flag, naming the flag', () => {
    for (const flag of ['--startup-timeout', '--hard-stop-after']) {
      expect(() => settingsFromFlags(flags(flag, '0')), flag).toThrow(new RegExp(`^${flag}( \\(PGROUTE_[A-Z_]+\\))? must be a duration of at least 1ms`));
      expect(() => settingsFromFlags(flags(flag, '25d')), flag).toThrow(new RegExp(`^${flag}( \\(PGROUTE_[A-Z_]+\\))? must be a duration of at most 24d`));
    }
  });
});

describe('counts that cannot be 0', () => {
  it('refuses 0 naming the range, instead of taking it for 1 (HAProxy would be given maxconn 1)', () => {
    for (const [flag, max] of [['--maxconn', 1_000_000], ['--max-reloads', 100_000], ['--memo-size', 100_000_000], ['--pause-max-held', 1_000_000]] as const) {
      expect(() => settingsFromFlags(flags(flag, '0')), flag).toThrow(new RegExp(`^${flag} \\(PGROUTE_[A-Z_]+\\) must be a whole number from 1 to ${max}, got "0"$`));
    }
    expect(settingsFromFlags(flags('--maxconn', '1')).settings.limits.maxconn).toBe(1);
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

describe('--name and --peer', () => {
  function cfgOf(f: DeploymentFlags): string {
    const { settings } = settingsFromFlags(f);
    return renderConfig({ listeners: [{ address: '0.0.0.0', port: 5432 }] } as never, EMPTY_LAYOUT, settings, statePaths(settings.stateDir), 'v', loadTemplates()).haproxyConfig;
  }
  /** The peers section's keepalive table (generator/src/replicas/peer-nudge.ts), last in it. */
  const ALIVE = '    table alive type string len 64 size 256 expire 1m store gpt0';
  function peersBlock(cfg: string): string[] {
    const at = cfg.split('\n').findIndex((l) => l === 'peers pgroute');
    const rest = cfg.split('\n').slice(at + 1);
    return rest.slice(0, rest.findIndex((l) => !l.startsWith('    ')));
  }

  it('without them: one replica, its local peer on a unix socket of the state dir', () => {
    const cfg = cfgOf(flags('--name', 'r1'));
    expect(cfg).toMatch(/^    localpeer r1$/m);
    expect(peersBlock(cfg)).toEqual(['    bind unix@/tmp/pgroute-flags-test/haproxy-peers.sock', '    server r1', ALIVE]);
  });

  it('with a list: binds its own entry, names the others, repeated or comma-separated, or from PGROUTE_PEERS', () => {
    const expected = ['    bind 127.0.0.1:7002', '    server b', '    server a 127.0.0.1:7001', '    server c 127.0.0.1:7003', ALIVE];
    expect(peersBlock(cfgOf(flags('--name', 'b', '--peer', 'a=127.0.0.1:7001', '--peer', 'b=127.0.0.1:7002,c=127.0.0.1:7003')))).toEqual(expected);
    const before = { name: process.env['PGROUTE_NAME'], peers: process.env['PGROUTE_PEERS'] };
    process.env['PGROUTE_NAME'] = 'b';
    process.env['PGROUTE_PEERS'] = 'a=127.0.0.1:7001,b=127.0.0.1:7002, c=127.0.0.1:7003';
    try {
      expect(peersBlock(cfgOf(flags()))).toEqual(expected);
    } finally {
      for (const [k, v] of [['PGROUTE_NAME', before.name], ['PGROUTE_PEERS', before.peers]] as const) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
    }
  });

  it('refuses each fault in one line naming the flag', () => {
    const refusal = (...args: string[]): string => {
      try {
        settingsFromFlags(flags(...args));
      } catch (err) {
        expect(err).toBeInstanceOf(ConfigError);
        return (err as Error).message;
      }
      throw new Error('accepted');
    };
    expect(refusal('--name', 'a', '--peer', 'a=127.0.0.1:7001', '--peer', 'a=127.0.0.1:7002')).toBe(
      '--peer (PGROUTE_PEERS) must be a list naming each replica once (a is listed twice), got "a=127.0.0.1:7001,a=127.0.0.1:7002"',
    );
    expect(refusal('--name', 'a', '--peer', 'a=127.0.0.1:7001,b=127.0.0.1')).toMatch(/^--peer \(PGROUTE_PEERS\) must be a peer of the form <name>=<host>:<port>/);
    expect(refusal('--name', 'c', '--peer', 'a=127.0.0.1:7001,b=127.0.0.1:7002')).toMatch(/^--peer \(PGROUTE_PEERS\) must be a list that includes this replica's own name c/);
    expect(refusal('--name', 'a', '--peer', 'a=127.0.0.1:7001,b=127.0.0.1:7001')).toMatch(/^--peer \(PGROUTE_PEERS\) must be a distinct address for each replica/);
    expect(refusal('--name', 'a b')).toMatch(/^--name \(PGROUTE_NAME\) must be a replica name of letters/);
    for (const r of [refusal('--name', 'a', '--peer', 'a=h:99999'), refusal('--name', 'a', '--peer', 'a=bad_host:1')]) expect(r).not.toContain('\n');
  });
});

describe('--refusal-delay', () => {
  function rules(f: DeploymentFlags): string[] {
    const { settings } = settingsFromFlags(f);
    const cfg = renderConfig({ listeners: [{ address: '0.0.0.0', port: 5432 }] } as never, EMPTY_LAYOUT, settings, statePaths(settings.stateDir), 'v', loadTemplates()).haproxyConfig;
    return cfg.split('\n').filter((l) => /txn\.pgr\.(delay|el|t0)\b/.test(l) && !l.trim().startsWith('#')).map((l) => l.trim());
  }

  it('defaults to 1s: a refusal over a rate or the cap, decided early enough, waits 1s; the frontend keeps half its maxconn', () => {
    expect(settingsFromFlags(flags()).settings.refusalDelay).toEqual({ ms: 1_000, latestMs: 3_500 });
    const r = rules(flags('--maxconn', '1000'));
    expect(r).toContain('tcp-request content set-var(txn.pgr.delay) int(1000) if { var(txn.pgr.el) -m int le 3500 } { fe_conn lt 500 }');
    expect(r).toContain('tcp-request content set-var(txn.pgr.el) date(0,ms),sub(txn.pgr.t0) if pgr_refused pgr_over_client || pgr_refused pgr_over_rate || pgr_refused pgr_over_cap');
    // The clock starts in both the public and the TLS frontends' rules (startup-acls).
    expect(r.filter((l) => l.startsWith('tcp-request content set-var(txn.pgr.t0)')).length).toBeGreaterThanOrEqual(1);
  });

  it('0 renders no delay; a delay must end 1s before the startup timeout; the default gives way to a short one', () => {
    expect(rules(flags('--refusal-delay', '0'))).toEqual([]);
    expect(settingsFromFlags(flags('--refusal-delay', '2s', '--startup-timeout', '10s')).settings.refusalDelay).toEqual({ ms: 2_000, latestMs: 7_500 });
    expect(() => settingsFromFlags(flags('--refusal-delay', '4500ms'))).toThrow('--refusal-delay (PGROUTE_REFUSAL_DELAY) must be 0 or a duration of at most 4000ms (1s shorter than --startup-timeout 5s), got "4500ms"');
    for (const bad of ['soon', '-1s', '1.5s', '']) expect(() => settingsFromFlags(flags('--refusal-delay', bad)), bad).toThrow(/--refusal-delay \(PGROUTE_REFUSAL_DELAY\) must be a duration/);
    expect(settingsFromFlags(flags('--startup-timeout', '1500ms')).settings.refusalDelay).toEqual({ ms: 500, latestMs: 500 });
  });
});
