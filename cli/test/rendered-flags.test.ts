// Every flag (and PGROUTE_* variable) whose value reaches haproxy.cfg or spoe.conf, fed arbitrary
// strings: either refused with one line that names the flag and quotes the value, or rendered so
// that both files keep the shape they have with a plain value (same lines, same words per line,
// same keywords): no value adds a rule, a word or a section.

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { quoteValue } from '../../agent/src/index.js';
import { ConfigError } from '../../generator/src/errors.js';
import { EMPTY_LAYOUT, desiredOccupants, layoutForReload } from '../../generator/src/layout.js';
import { renderConfig } from '../../generator/src/render/haproxy-config.js';
import { loadTemplates } from '../../generator/src/render/templates.js';
import { statePaths } from '../../generator/src/settings.js';
import { addDeploymentFlags, label, settingsFromFlags, type DeploymentFlags } from '../settings-options.js';

/**
 * Each rendered flag with a plain value; `tcp` flags are rendered only with --agent-transport tcp.
 * --spares sets how many backends there are, --stats-port 0 removes the stats section and
 * --stats-allow lists several sources: an accepted value of theirs is compared with its canonical form.
 */
const number = (v: string): string => String(Number(v));
const RENDERED: readonly { flag: string; plain: string; tcp?: boolean; canonical?: (accepted: string) => string }[] = [
  { flag: '--state-dir', plain: '/tmp/pgroute-prop' },
  { flag: '--bind', plain: '127.0.0.1' },
  { flag: '--port', plain: '5432' },
  { flag: '--agent-host', plain: '127.0.0.1', tcp: true },
  { flag: '--agent-port', plain: '6710', tcp: true },
  { flag: '--agent-socket', plain: '/tmp/pgroute-prop/agent.sock' },
  { flag: '--stats-bind', plain: '127.0.0.1' },
  { flag: '--stats-port', plain: '8404', canonical: number },
  { flag: '--startup-timeout', plain: '5s' },
  { flag: '--agent-timeout', plain: '1s' },
  { flag: '--maxconn', plain: '4096' },
  { flag: '--spares', plain: '2', canonical: number },
  { flag: '--hard-stop-after', plain: '1h' },
  { flag: '--max-reloads', plain: '50' },
  { flag: '--check-interval', plain: '2s' },
  { flag: '--session-timeout', plain: '7d' },
  // 0 turns the delay's rules off.
  { flag: '--refusal-delay', plain: '1s', canonical: (v) => (/^0+(us|ms|s|m|h|d)?$/.test(v) ? '0' : '1s') },
  // One word per source: as many plain addresses as the value lists.
  { flag: '--stats-allow', plain: '10.0.0.0/8', canonical: (v) => v.split(/[\s,]+/).filter(Boolean).map(() => '10.0.0.1').join(',') },
];

function flags(extra: readonly string[]): DeploymentFlags {
  const cmd = addDeploymentFlags(new Command('up').exitOverride(), 'unix');
  cmd.parse(['--state-dir', '/tmp/pgroute-prop', '--spares', '2', ...extra], { from: 'user' });
  return cmd.opts<DeploymentFlags>();
}

const TEMPLATES = loadTemplates();

function render(extra: readonly string[]): string {
  const { settings, fallbackListener } = settingsFromFlags(flags(extra));
  const occupants = desiredOccupants([{ id: 'acme', enabled: true, targets: { primary: { host: '10.0.0.1', port: 5432 } } }] as never);
  const layout = layoutForReload(EMPTY_LAYOUT, occupants, settings.spares);
  const r = renderConfig({ listeners: [fallbackListener] } as never, layout, settings, statePaths(settings.stateDir), 'v', TEMPLATES);
  return `${r.haproxyConfig}\n=== spoe.conf\n${r.spoeConfig}`;
}

/** What a config file says, without the values: per line, its word count and its first word. */
function shape(config: string): string[] {
  return config.split('\n').map((line) => {
    const words = line.trim().split(/\s+/);
    return `${words.length}:${line.startsWith(' ') ? ' ' : ''}${words[0] ?? ''}`;
  });
}

/** The configuration rendered with `args`, or undefined once its refusal is checked: one line naming `flag`, quoting `value`. */
function renderedOrRefused(args: readonly string[], flag: string, value: string): string | undefined {
  try {
    return render(args);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    const message = (err as Error).message;
    expect(message).not.toMatch(/[\n\r\u2028\u2029]/);
    expect(message).toContain(label(flag));
    expect(message).toContain(quoteValue(value, 80));
    return undefined;
  }
}

/** Arbitrary strings, weighted towards what haproxy.cfg reads specially. */
const values = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc.string({ unit: fc.constantFrom('a', '1', '.', ':', '/', ' ', '\t', '\n', '\r', '#', '"', "'", '\\', '$', '{', '}', '%', '[', ']', 'unix@', '\u2028', '\0'), maxLength: 20 }),
  fc.constantFrom('127.0.0.1\nfrontend x', '0.0.0.0 ssl', 'localhost#x', '/tmp/a\n  bind :1', '1s\n  timeout client 0', '::', 'example.com', '5432 x'),
);

describe('every rendered flag, given any string', () => {
  for (const { flag, plain, tcp, canonical } of RENDERED) {
    it(`${flag}: refused with one line naming it, or rendered without changing the configuration's shape`, () => {
      const base = tcp ? ['--agent-transport', 'tcp'] : [];
      const plainShape = shape(render([...base, flag, plain]));
      fc.assert(
        fc.property(values, (value) => {
          const config = renderedOrRefused([...base, flag, value], flag, value);
          if (config !== undefined) expect(shape(config)).toEqual(canonical ? shape(render([...base, flag, canonical(value)])) : plainShape);
        }),
        { numRuns: 300 },
      );
    });
  }

  it('--peers-tls-cert and --peers-tls-ca (the other a valid file): refused with one line naming it, or rendered without changing the shape', () => {
    const dir = mkdtempSync(join(tmpdir(), 'pgroute-peers-tls-prop-'));
    const pem = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n';
    const cert = join(dir, 'peer.pem');
    writeFileSync(cert, pem);
    try {
      const peers = ['--name', 'r1', '--peer', 'r1=127.0.0.1:7001,r2=127.0.0.1:7002'];
      const plain = render([...peers, '--peers-tls-cert', cert, '--peers-tls-ca', cert]);
      expect(plain).toContain(`    bind 127.0.0.1:7001 ssl crt ${cert} ca-file ${cert} verify required\n    default-server ssl crt ${cert} ca-file ${cert} verify required\n`);
      const plainShape = shape(plain);
      for (const flag of ['--peers-tls-cert', '--peers-tls-ca']) {
        fc.assert(
          fc.property(values, (value) => {
            const other = flag === '--peers-tls-cert' ? ['--peers-tls-ca', cert] : ['--peers-tls-cert', cert];
            const config = renderedOrRefused([...peers, ...other, flag, value], flag, value);
            if (config !== undefined) expect(shape(config)).toEqual(plainShape);
          }),
          { numRuns: 200 },
        );
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a line break in --bind or --agent-host is refused, as it is from PGROUTE_BIND / PGROUTE_AGENT_HOST', () => {
    expect(() => render(['--bind', '0.0.0.0\nfrontend x'])).toThrow('--bind (PGROUTE_BIND) must be an IP address (127.0.0.1, 0.0.0.0, ::) or a host name, got "0.0.0.0\\x0afrontend x"');
    expect(() => render(['--agent-transport', 'tcp', '--agent-host', '127.0.0.1\n  server x'])).toThrow('--agent-host (PGROUTE_AGENT_HOST) must be');
    const env = { ...process.env };
    try {
      process.env.PGROUTE_BIND = '0.0.0.0:1\nlisten evil';
      expect(() => render([])).toThrow(/^--bind \(PGROUTE_BIND\) must be .*, got "0\.0\.0\.0:1\\x0alisten evil"$/);
    } finally {
      process.env = env;
    }
  });

  it('host names and IPv6 addresses are still accepted', () => {
    expect(render(['--bind', '::'])).toContain('bind [::]:5432');
    expect(render(['--bind', 'localhost'])).toContain('bind localhost:5432');
    expect(render(['--agent-transport', 'tcp', '--agent-host', 'agent.internal'])).toContain('server agent1 agent.internal:6710');
    expect(render(['--bind', 'db1.example.com'])).toContain('bind db1.example.com:5432');
  });

  it('digits and dots that are no IPv4 address are refused, not taken for a host name (HAProxy would read 1.2.3 as 1.2.0.3)', () => {
    for (const bad of ['1.2.3', '127.1', '2852039166', '0x7f.1', '999.1.1.1', '10.0.0', '0x7f000001', '127.0x1', '1.2.0X3']) {
      expect(() => render(['--bind', bad]), bad).toThrow(`--bind (PGROUTE_BIND) must be an IP address (127.0.0.1, 0.0.0.0, ::) or a host name, got "${bad}"`);
    }
  });
});
