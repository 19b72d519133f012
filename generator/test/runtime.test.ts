// The runtime API: the exact commands of each operation, and runRuntimeOps against a fake admin
// socket that answers like HAProxy 2.6 (answers below were taken from a real 2.6.12).

import { mkdtemp, rm } from 'node:fs/promises';
import { cliSocket } from './support.js';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { batchLines, opCommands, runRuntimeOps, RuntimeApiError } from '../src/haproxy/runtime.js';
import type { RuntimeOp } from '../src/plan.js';

describe('opCommands', () => {
  it('park puts the server in maintenance', () => {
    expect(opCommands({ kind: 'park', backend: 'pg.acme.primary' })).toEqual(['set server pg.acme.primary/s1 state maint']);
  });

  it('park and limit reach every member of a cluster backend', () => {
    expect(opCommands({ kind: 'park', backend: 'pg.acme.primary', servers: 3 })).toEqual([
      'set server pg.acme.primary/s1 state maint',
      'set server pg.acme.primary/s2 state maint',
      'set server pg.acme.primary/s3 state maint',
    ]);
    expect(opCommands({ kind: 'limit', backend: 'pg.acme.replica', maxconn: 7, servers: 2 })).toEqual([
      'set maxconn server pg.acme.replica/s1 7',
      'set maxconn server pg.acme.replica/s2 7',
    ]);
  });

  it('move sets address and port', () => {
    expect(opCommands({ kind: 'move', backend: 'pg.spare.3', occupant: { tenant: 'acme', target: 'primary', endpoint: { host: '10.1.2.3', port: 6543 } } })).toEqual([
      'set server pg.spare.3/s1 addr 10.1.2.3 port 6543',
    ]);
  });

  it('move to an IPv6 address passes it bare', () => {
    expect(opCommands({ kind: 'move', backend: 'pg.b.primary', occupant: { tenant: 'b', target: 'primary', endpoint: { host: '2001:db8::7', port: 5432 } } })).toEqual([
      'set server pg.b.primary/s1 addr 2001:db8::7 port 5432',
    ]);
  });

  it('limit sets the server maxconn', () => {
    expect(opCommands({ kind: 'limit', backend: 'pg.acme.pool', maxconn: 25 })).toEqual(['set maxconn server pg.acme.pool/s1 25']);
    expect(opCommands({ kind: 'limit', backend: 'pg.acme.pool', maxconn: 0 })).toEqual(['set maxconn server pg.acme.pool/s1 0']);
  });

  it('place: address and port, maxconn, health up, state ready, in that order', () => {
    const op: RuntimeOp = { kind: 'place', backend: 'pg.spare.0', occupant: { tenant: 'gamma', target: 'pool', endpoint: { host: '10.0.0.9', port: 6432 }, maxconn: 12 } };
    expect(opCommands(op)).toEqual([
      'set server pg.spare.0/s1 addr 10.0.0.9 port 6432',
      'set maxconn server pg.spare.0/s1 12',
      'set server pg.spare.0/s1 health up',
      'set server pg.spare.0/s1 state ready',
    ]);
    const noLimit: RuntimeOp = { kind: 'place', backend: 'pg.spare.1', occupant: { tenant: 'gamma', target: 'primary', endpoint: { host: '10.0.0.9', port: 5432 } } };
    expect(opCommands(noLimit)[1]).toBe('set maxconn server pg.spare.1/s1 0');
  });
});

/** A fake HAProxy admin socket: one command line per connection, `;`-separated, ending with quit. */
interface FakeAdmin {
  readonly path: string;
  /** Every line received, as sent (without the newline). */
  readonly lines: string[];
  close(): Promise<void>;
}

/** HAProxy 2.6's answers to the commands pgroute sends. `fail` names backends HAProxy lacks. */
function haproxyAnswer(cmd: string, fail: ReadonlySet<string>): string {
  const m = /^set (?:maxconn )?server (\S+)\/(\S+)/.exec(cmd);
  if (m === null) return 'Unknown command. Please enter one of the following commands only :\n  help\n';
  if (fail.has(m[1] as string)) return 'No such backend.\n';
  if (m[2] !== 's1') return 'No such server.\n';
  const addr = /addr (\S+) port (\d+)$/.exec(cmd);
  if (addr) {
    if (!/^[\d.]+$|:/.test(addr[1] as string)) return `Invalid addr '${addr[1]}' by 'stats socket command'\n`;
    return `IP changed from '127.0.0.1' to '${addr[1]}', port changed from '1' to '${addr[2]}' by 'stats socket command'\n`;
  }
  return '';
}

async function fakeAdmin(path: string, fail: ReadonlySet<string> = new Set()): Promise<FakeAdmin> {
  const lines: string[] = [];
  const server = await cliSocket(path, (line, sock) => {
    lines.push(line);
    let out = '';
    for (const cmd of line.split(';').map((c) => c.trim())) {
      if (cmd === 'quit') break;
      out += `${haproxyAnswer(cmd, fail)}\n`;
    }
    sock.end(out);
  });
  return { path, lines, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

let dir: string;
let n = 0;
const open: FakeAdmin[] = [];
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'pgroute-runtime-'));
});
afterEach(async () => {
  for (const f of open.splice(0)) await f.close();
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});
async function admin(fail?: ReadonlySet<string>): Promise<FakeAdmin> {
  const f = await fakeAdmin(join(dir, `admin-${n++}.sock`), fail);
  open.push(f);
  return f;
}

const place = (i: number): RuntimeOp => ({ kind: 'place', backend: `pg.spare.${i}`, occupant: { tenant: `t${i}`, target: 'primary', endpoint: { host: `10.0.0.${i + 1}`, port: 5432 } } });

describe('batchLines', () => {
  it('fills lines up to the limit, keeps the order, and gives an over-long command a line of its own', () => {
    expect(batchLines(['aaaa', 'bbbb', 'cccc'], 10)).toEqual(['aaaa; bbbb', 'cccc']);
    expect(batchLines(['a'.repeat(12), 'b'], 10)).toEqual(['a'.repeat(12), 'b']);
    expect(batchLines([], 10)).toEqual([]);
  });

  it('by default, thousands of long commands stay far below HAProxy\'s 16 kB request buffer', () => {
    const cmds = Array.from({ length: 2_000 }, (_, i) => `set server pg.${'t'.repeat(63)}${i}.primary/s1 addr 10.0.${i % 250}.1 port 5432`);
    const lines = batchLines(cmds);
    for (const l of lines) expect(l.length).toBeLessThan(16_384 / 2 + 1);
    expect(lines.join('; ').split('; ')).toEqual(cmds);
  });
});

describe('runRuntimeOps', () => {
  it('sends every command in order on one line, `; quit` appended, and returns the count', async () => {
    const f = await admin();
    const ops: RuntimeOp[] = [{ kind: 'park', backend: 'pg.beta.primary' }, place(0), { kind: 'limit', backend: 'pg.acme.primary', maxconn: 9 }];
    expect(await runRuntimeOps(f.path, ops)).toBe(6);
    expect(f.lines).toEqual([
      'set server pg.beta.primary/s1 state maint; ' +
        'set server pg.spare.0/s1 addr 10.0.0.1 port 5432; set maxconn server pg.spare.0/s1 0; set server pg.spare.0/s1 health up; set server pg.spare.0/s1 state ready; ' +
        'set maxconn server pg.acme.primary/s1 9; quit',
    ]);
  });

  it('batches: lines of at most `maxLine` characters, one connection each, each line ending with `; quit`', async () => {
    const f = await admin();
    const ops = [place(0), place(1), place(2)]; // 12 commands, 157 characters per place
    expect(await runRuntimeOps(f.path, ops, 200)).toBe(12);
    expect(f.lines).toHaveLength(3);
    for (const l of f.lines) {
      expect(l.endsWith('; quit')).toBe(true);
      expect(l.length - '; quit'.length).toBeLessThanOrEqual(200);
    }
    const sent = f.lines.flatMap((l) => l.split('; ').slice(0, -1));
    expect(sent).toEqual(ops.flatMap(opCommands));
  });

  it('no operations: no connection at all', async () => {
    const f = await admin();
    expect(await runRuntimeOps(f.path, [])).toBe(0);
    expect(f.lines).toEqual([]);
    // Not even a socket is needed.
    expect(await runRuntimeOps(join(dir, 'nobody.sock'), [])).toBe(0);
  });

  it('an error answer throws RuntimeApiError naming the answer and the command; later batches are not sent', async () => {
    const f = await admin(new Set(['pg.spare.1']));
    const err = await runRuntimeOps(f.path, [place(0), place(1), place(2)], 160).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(RuntimeApiError);
    const e = err as RuntimeApiError;
    expect(e.name).toBe('RuntimeApiError');
    expect(e.message).toContain('No such backend.');
    expect(e.message).toContain('set server pg.spare.1/s1 addr 10.0.0.2 port 5432');
    expect(f.lines).toHaveLength(2);
  });

  it('"No such server." and "Invalid addr" are failures too', async () => {
    const f = await admin();
    await expect(runRuntimeOps(f.path, [{ kind: 'move', backend: 'pg.a.primary', occupant: { tenant: 'a', target: 'primary', endpoint: { host: 'db.example.com', port: 5432 } } }])).rejects.toThrow(
      /Invalid addr 'db\.example\.com'.*set server pg\.a\.primary\/s1 addr db\.example\.com port 5432/,
    );
  });

  it('an unreachable socket is a RuntimeApiError', async () => {
    await expect(runRuntimeOps(join(dir, 'missing.sock'), [place(0)])).rejects.toSatisfy(
      (e: unknown) => e instanceof RuntimeApiError && /runtime API unreachable/.test(e.message),
    );
  });

  it('the "IP changed" answer of a successful address change is not a failure', async () => {
    const f = await admin();
    await expect(runRuntimeOps(f.path, [place(5)])).resolves.toBe(4);
  });
});
