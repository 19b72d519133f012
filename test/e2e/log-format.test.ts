// pgroute's own logs as people and collectors read them: one readable line per entry (with colours)
// when stderr is a terminal, JSON lines in a pipe, and `--log-format` (PGROUTE_LOG_FORMAT) to choose.
// The terminal is a real pseudo-terminal: util-linux's `script` runs the built CLI inside one.
// `generate` opens no port (haproxy -c only), so this file needs no port block.

import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CLI, writeTenantsFile } from '../support/pgroute.js';

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function generateArgs(): string[] {
  const { dir, file } = writeTenantsFile([{ id: 'acme', port: 5433 }]);
  const state = mkdtempSync(join(tmpdir(), 'pgroute-logfmt-'));
  dirs.push(dir, state);
  return ['generate', '--tenants', file, '--state-dir', state];
}

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function run(file: string, args: readonly string[], env: Record<string, string | undefined> = {}): Promise<Run> {
  return new Promise((resolve) => {
    execFile(file, args, { env: { ...process.env, PGROUTE_LOG_FORMAT: undefined, ...env }, timeout: 60_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : null) : 0, stdout, stderr });
    });
  });
}

/** The CLI with stdin, stdout and stderr on a pseudo-terminal; what the terminal showed. */
function onTerminal(args: readonly string[], env: Record<string, string | undefined> = {}): Promise<Run> {
  const command = [process.execPath, CLI, ...args].map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
  return run('script', ['-qfec', command, '/dev/null'], { TERM: 'xterm', ...env });
}

const ESC = '\u001b[';
const PRETTY = /^\[\d\d:\d\d:\d\d\.\d{3}\] (?:\u001b\[\d+m)?INFO(?:\u001b\[\d+m)?: (?:\u001b\[\d+m)?generated and validated/m;

describe('log format', () => {
  it('on a terminal: one readable, coloured line per entry, no JSON', async () => {
    const r = await onTerminal(generateArgs());
    expect(r.code, r.stdout).toBe(0);
    expect(r.stdout).toMatch(PRETTY);
    expect(r.stdout).toContain(`${ESC}32mINFO`);
    expect(r.stdout).not.toContain('"level":');
  });

  it('in a pipe: JSON lines a collector parses', async () => {
    const r = await run(process.execPath, [CLI, ...generateArgs()]);
    expect(r.code, r.stderr).toBe(0);
    const lines = r.stderr.trim().split('\n').map((l) => JSON.parse(l) as { level: number; msg: string; svc: string });
    expect(lines.at(-1)).toMatchObject({ level: 30, svc: 'pgroute', msg: 'generated and validated' });
  });

  it('--log-format json on a terminal, PGROUTE_LOG_FORMAT=json likewise', async () => {
    for (const r of [await onTerminal(['--log-format', 'json', ...generateArgs()]), await onTerminal(generateArgs(), { PGROUTE_LOG_FORMAT: 'json' })]) {
      expect(r.code, r.stdout).toBe(0);
      const last = r.stdout.trim().split(/\r?\n/).at(-1) ?? '';
      expect(JSON.parse(last)).toMatchObject({ msg: 'generated and validated' });
    }
  });

  it('--log-format pretty in a pipe (after the command name too): readable lines without colours', async () => {
    const [command, ...rest] = generateArgs();
    const r = await run(process.execPath, [CLI, command as string, '--log-format', 'pretty', ...rest]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(PRETTY);
    expect(r.stderr).not.toContain(ESC);
  });

  it('refuses another format with the flag, its variable and the choices (exit 2)', async () => {
    const flag = await run(process.execPath, [CLI, '--log-format', 'xml', ...generateArgs()]);
    expect(flag.code).toBe(2);
    expect(flag.stderr.trim()).toBe('pgroute: --log-format (PGROUTE_LOG_FORMAT) must be json or pretty, got "xml"');
    const variable = await run(process.execPath, [CLI, ...generateArgs()], { PGROUTE_LOG_FORMAT: 'yaml' });
    expect(variable.code).toBe(2);
    expect(variable.stderr.trim()).toBe('pgroute: --log-format (PGROUTE_LOG_FORMAT) must be json or pretty, got "yaml"');
  });
});
