// `pgroute cert ca` / `pgroute cert show` (cli/cert.ts), run through commander.

import { Command } from 'commander';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { daysLeft, formatCertificate, registerCertCommands } from '../../../cli/cert.js';
import { ConfigError } from '../../src/errors.js';
import { ensureAutoTls } from '../../src/tls/store.js';
import { silentLog, tempDir } from './support.js';

let dir: string;
let cleanup: () => Promise<void>;
beforeEach(async () => ({ dir, cleanup } = await tempDir()));
afterEach(async () => {
  vi.restoreAllMocks();
  await cleanup();
});

async function run(...args: string[]): Promise<string> {
  const program = new Command('pgroute').exitOverride();
  registerCertCommands(program, silentLog);
  let out = '';
  vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    out += String(chunk);
    return true;
  });
  await program.parseAsync(['node', 'pgroute', ...args]);
  vi.mocked(process.stdout.write).mockRestore();
  return out;
}

describe('pgroute cert', () => {
  it('ca prints the CA certificate PEM', async () => {
    const tls = await ensureAutoTls({ stateDir: dir, sans: ['localhost'], log: silentLog });
    expect(await run('cert', 'ca', '--state-dir', dir)).toBe(tls.caPem);
  });

  it('show prints the server certificate, as text and as JSON', async () => {
    const tls = await ensureAutoTls({ stateDir: dir, sans: ['db.example.com', '127.0.0.1'], log: silentLog, serverValidityDays: 90 });
    const text = await run('cert', 'show', '--state-dir', dir);
    expect(text).toContain(`file        ${tls.serverPemPath}\n`);
    expect(text).toContain('subject     CN=db.example.com\n');
    expect(text).toContain('issuer      CN=pgroute local CA\n');
    expect(text).toContain('names       db.example.com, 127.0.0.1\n');
    expect(text).toContain(`serial      ${tls.serialHex}\n`);
    expect(text).toMatch(/not after {3}\S+ \((89|90) days left\)\n/);
    const json = JSON.parse(await run('cert', 'show', '--state-dir', dir, '--json')) as Record<string, unknown>;
    expect(json).toMatchObject({ subject: 'CN=db.example.com', sans: ['db.example.com', '127.0.0.1'], serial: tls.serialHex, notAfter: tls.notAfter.toISOString() });
    expect(json.daysLeft).toBeGreaterThanOrEqual(89);
  });

  it('says where it looked when there is nothing yet', async () => {
    await expect(run('cert', 'ca', '--state-dir', dir)).rejects.toThrow(ConfigError);
    await expect(run('cert', 'show', '--state-dir', dir)).rejects.toThrow(/no TLS server certificate at .*tls\/server\.pem/);
  });

  it('counts whole days and says when it expired', () => {
    const now = new Date('2030-01-10T00:00:00Z');
    expect(daysLeft(new Date('2030-01-11T12:00:00Z'), now)).toBe(1);
    const text = formatCertificate('/s/server.pem', {
      subject: 'CN=a', issuer: 'CN=b', sans: [], serialHex: '01',
      notBefore: new Date('2029-01-01T00:00:00Z'), notAfter: new Date('2030-01-08T00:00:00Z'), fingerprintSha256: 'AA',
    }, now);
    expect(text).toContain('names       (none)\n');
    expect(text).toContain('(expired 2 days ago)');
  });
});
