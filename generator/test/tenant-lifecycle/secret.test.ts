// `pgroute tenant create`, pure part of the password hand-over: the tar archive uploaded into the
// created container, the tar reader for its /etc/passwd, and who owns the file.

import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { checkPassword, DEFAULT_POSTGRES_OWNER, PASSWORD_FILE, passwdEntry, passwordArchive, SECRET_DIR, secretOwner } from '../../src/tenants-docker/secret.js';
import { readTar, writeTar } from '../../src/tenants-docker/tar.js';

const PASSWORD = 'Zq3-_xY8kLmN0pQrStUvWxYz12345678';
const MTIME = 1_700_000_000;
const HAVE_TAR = spawnSync('tar', ['--version'], { encoding: 'utf8' }).stdout?.includes('GNU tar') ?? false;

/** The archive through GNU tar: `tar -tv` lines and one member's content. */
function gnuTar(archive: Buffer, args: readonly string[]): string {
  const r = spawnSync('tar', [...args, '-f', '-'], { input: archive, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`tar ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

describe('passwordArchive', async () => {
  const archive = await passwordArchive(PASSWORD, { uid: 70, gid: 71 }, MTIME);

  it('the file lives in /run/pgroute', () => {
    expect(SECRET_DIR).toBe('/run/pgroute');
    expect(PASSWORD_FILE).toBe('/run/pgroute/postgres-password');
  });

  it('a directory 0700 and the password file 0400, both owned by the given uid:gid, the password without a newline', async () => {
    expect(await readTar(archive)).toEqual([
      { name: 'run/pgroute', type: 'dir', mode: 0o700, uid: 70, gid: 71, mtime: MTIME },
      { name: 'run/pgroute/postgres-password', type: 'file', mode: 0o400, uid: 70, gid: 71, mtime: MTIME, content: new Uint8Array(Buffer.from(PASSWORD)) },
    ]);
  });

  it('is plain ustar: two headers, one data block, two zero blocks', () => {
    expect(archive.length).toBe(5 * 512);
    for (const at of [0, 512]) {
      expect(archive.subarray(at + 257, at + 263).toString('latin1')).toBe('ustar\0');
      expect(archive.subarray(at + 263, at + 265).toString('latin1')).toBe('00');
    }
    expect(archive.subarray(0, 13).toString('latin1')).toBe('run/pgroute/\0');
    expect(String.fromCharCode(archive[156] as number)).toBe('5');
    expect(String.fromCharCode(archive[512 + 156] as number)).toBe('0');
    expect(archive.subarray(1024, 1024 + PASSWORD.length).toString()).toBe(PASSWORD);
    expect(archive.subarray(1024 + PASSWORD.length).every((b) => b === 0)).toBe(true);
  });

  it('GNU tar reads it: names, modes, owners, content', () => {
    expect(HAVE_TAR, 'GNU tar is not installed').toBe(true);
    const lines = gnuTar(archive, ['--numeric-owner', '-tv']).trim().split('\n');
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatch(/^drwx------ 70\/71\s+0 \S+ \S+ run\/pgroute\/$/);
    expect(lines[1]).toMatch(new RegExp(`^-r-------- 70/71\\s+${PASSWORD.length} \\S+ \\S+ run/pgroute/postgres-password$`));
    expect(gnuTar(archive, ['-xO', 'run/pgroute/postgres-password'])).toBe(PASSWORD);
  });

  it('refuses a short or blank-containing password', async () => {
    for (const bad of ['short', `${'a'.repeat(20)} b`, `${'a'.repeat(20)}\n`, `${'a'.repeat(20)}\0`]) {
      await expect(passwordArchive(bad, DEFAULT_POSTGRES_OWNER, MTIME), JSON.stringify(bad)).rejects.toThrow(/password/);
      expect(() => checkPassword(bad)).toThrow(/password/);
    }
    expect(checkPassword(PASSWORD)).toBe(PASSWORD);
  });

  it('round-trips any usable password and any id (property)', async () => {
    await fc.assert(
      fc.asyncProperty(fc.string({ minLength: 16, maxLength: 600, unit: 'grapheme' }).filter((s) => !/[\s\0]/.test(s)), fc.nat(2 ** 32 - 1), async (pw, uid) => {
        const [dir, file] = await readTar(await passwordArchive(pw, { uid, gid: uid }, MTIME));
        expect(dir).toMatchObject({ type: 'dir', uid });
        expect(Buffer.from(file?.content ?? []).toString('utf8')).toBe(pw);
      }),
      { numRuns: 200 },
    );
  });
});

describe('writeTar and readTar', () => {
  const base = { type: 'file' as const, mode: 0o644, uid: 0, gid: 0, mtime: 0 };

  it('refuses names that could escape the target', async () => {
    for (const name of ['', '/etc/passwd', '../x', 'a/../b', 'a//b', './a']) await expect(writeTar([{ ...base, name }]), name).rejects.toThrow(/tar: bad entry name/);
  });

  it('refuses ids that are not 32-bit ids; ids over 6 octal digits go in a PAX header that GNU tar reads', async () => {
    await expect(writeTar([{ ...base, name: 'a', uid: 2 ** 32 }])).rejects.toThrow(/tar: uid/);
    await expect(writeTar([{ ...base, name: 'a', gid: -1 }])).rejects.toThrow(/tar: gid/);
    await expect(writeTar([{ ...base, name: 'a', uid: 1.5 }])).rejects.toThrow(/tar: uid/);
    const big = await writeTar([{ ...base, name: 'a', uid: 0o7777777 + 1, gid: 5, content: Buffer.from('x') }]);
    expect(await readTar(big)).toMatchObject([{ name: 'a', uid: 0o7777777 + 1, gid: 5 }]);
    expect(gnuTar(big, ['--numeric-owner', '-tv'])).toMatch(/^-rw-r--r-- 2097152\/5 /);
  });

  it('names longer than 100 bytes (ustar prefix field or PAX)', async () => {
    const long = `${'d'.repeat(120)}/${'f'.repeat(90)}`;
    const [entry] = await readTar(await writeTar([{ ...base, name: long, content: Buffer.from('x') }]));
    expect(entry?.name).toBe(long);
  });

  it('mode is the permission bits only (Docker also writes the file type bits, e.g. 0100400)', async () => {
    const a = await passwordArchive(PASSWORD, { uid: 70, gid: 70 }, MTIME);
    const h = a.subarray(512, 1024);
    h.write('0100400\0', 100, 'latin1');
    let sum = 0;
    for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 0x20 : (h[i] as number);
    h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'latin1');
    expect((await readTar(a))[1]).toMatchObject({ name: 'run/pgroute/postgres-password', mode: 0o400 });
  });

  it('an empty archive is two zero blocks', async () => {
    expect(await writeTar([])).toEqual(Buffer.alloc(1024));
  });
});

describe('readTar on archives GNU tar made (as Docker sends: ustar, PAX, GNU long names)', () => {
  beforeAll(() => {
    expect(HAVE_TAR, 'GNU tar is not installed').toBe(true);
  });
  const longDir = `${'d'.repeat(60)}/${'e'.repeat(60)}`;
  const passwd = 'root:x:0:0::/root:/bin/sh\npostgres:x:999:999::/var/lib/postgresql:/bin/bash\n';
  const make = (format: string): Buffer => {
    const dir = mkdtempSync(join(tmpdir(), 'pgroute-tar-'));
    try {
      mkdirSync(join(dir, 'etc'));
      writeFileSync(join(dir, 'etc/passwd'), passwd);
      mkdirSync(join(dir, longDir), { recursive: true });
      writeFileSync(join(dir, longDir, 'f'), 'x'.repeat(700));
      const r = spawnSync('tar', ['-C', dir, `--format=${format}`, '--numeric-owner', '--owner=5', '--group=6', '-cf', '-', 'etc/passwd', `${longDir}/f`]);
      if (r.status !== 0) throw new Error(String(r.stderr));
      return r.stdout;
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };

  for (const format of ['ustar', 'pax', 'gnu']) {
    it(format, async () => {
      const entries = await readTar(make(format));
      expect(entries.map((e) => [e.name, e.type, e.uid, e.gid, e.content?.length])).toEqual([
        ['etc/passwd', 'file', 5, 6, passwd.length],
        [`${longDir}/f`, 'file', 5, 6, 700],
      ]);
      expect(Buffer.from(entries[0]?.content ?? []).toString('utf8')).toBe(passwd);
      expect(passwdEntry(passwd, 'postgres')).toEqual({ uid: 999, gid: 999 });
    });
  }

  it('refuses a damaged header or a truncated archive', async () => {
    const a = make('ustar');
    const bad = Buffer.from(a);
    bad[10] = 0x41;
    await expect(readTar(bad)).rejects.toThrow(/^tar: Invalid tar header/);
    await expect(readTar(a.subarray(0, 1000))).rejects.toThrow(/^tar: Unexpected end of data/);
    await expect(readTar(a.subarray(0, 300))).rejects.toThrow(/^tar: Unexpected end of data/);
    // The second entry (700 bytes) cut inside its data.
    const second = a.indexOf(Buffer.from('dddd'));
    await expect(readTar(a.subarray(0, second + 512 + 100))).rejects.toThrow(/^tar: Unexpected end of data/);
  });
});

describe('secretOwner: the uid the image runs postgres as', () => {
  const debian = 'root:x:0:0:root:/root:/bin/bash\npostgres:x:999:999::/var/lib/postgresql:/bin/bash\n';
  const alpine = 'root:x:0:0:root:/root:/bin/sh\npostgres:x:70:70:PostgreSQL user:/var/lib/postgresql:/bin/sh\n';
  const testImage = 'root:x:0:0:root:/root:/bin/sh\npostgres:x:70:70:PostgreSQL:/var/lib/postgresql:/bin/sh\n';

  it('official images run the entrypoint as root and drop to their user postgres', () => {
    expect(secretOwner('', debian)).toEqual({ uid: 999, gid: 999 });
    expect(secretOwner(undefined, alpine)).toEqual({ uid: 70, gid: 70 });
    expect(secretOwner('root', debian)).toEqual({ uid: 999, gid: 999 });
  });

  it("pgroute's test image runs as USER postgres (70)", () => {
    expect(secretOwner('postgres', testImage)).toEqual({ uid: 70, gid: 70 });
  });

  it('a numeric user, with or without a group', () => {
    expect(secretOwner('999', debian)).toEqual({ uid: 999, gid: 999 });
    expect(secretOwner('1001', debian)).toEqual({ uid: 1001, gid: 1001 });
    expect(secretOwner('1001:1002', debian)).toEqual({ uid: 1001, gid: 1002 });
    expect(secretOwner('postgres:5', testImage)).toEqual({ uid: 70, gid: 5 });
  });

  it('falls back to the user postgres, then to 999:999', () => {
    expect(secretOwner('nobody', debian)).toEqual({ uid: 999, gid: 999 });
    expect(secretOwner('', undefined)).toEqual(DEFAULT_POSTGRES_OWNER);
    expect(secretOwner('', 'root:x:0:0::/:/bin/sh\n')).toEqual({ uid: 999, gid: 999 });
    expect(DEFAULT_POSTGRES_OWNER).toEqual({ uid: 999, gid: 999 });
  });

  it('passwdEntry ignores comments, malformed lines and prefixes', () => {
    expect(passwdEntry('# postgres:x:1:1\npostgresql:x:2:2::/:/bin/sh\npostgres:x:abc:3::/:/bin/sh\npostgres:x:4:4::/:/bin/sh\n', 'postgres')).toEqual({ uid: 4, gid: 4 });
    expect(passwdEntry('', 'postgres')).toBeUndefined();
  });
});
