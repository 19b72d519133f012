// Checks the decoder against reality: a real psql connects to a tiny listener on 127.0.0.1 (a port of
// this file's block, portBlock(18)) that records every packet, declines SSL/GSSENC with 'N' (as a
// server without TLS does), and answers the StartupMessage with our ErrorResponse. Then both directions are asserted: what psql
// sent decodes as expected, and psql prints our refusal as a normal FATAL.

import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import net from 'node:net';

import { describe, expect, it } from 'vitest';

import { GSSENC_REQUEST_CODE, NEGOTIATION_DECLINED, SSL_REQUEST_CODE, SqlState } from '../../src/pg/constants.js';
import { encodeErrorResponse } from '../../src/pg/error-response.js';
import { parseStartupOptions } from '../../src/pg/options.js';
import { decodePreamble } from '../../src/pg/preamble.js';
import { portBlock } from '../../../test/support/ports.js';

const PSQL = '/usr/bin/psql';
const SCRIPT = '/usr/bin/script';
const PORT = portBlock(18).spare[0] as number;
const HOST = '127.0.0.1';
const TIMEOUT_MS = 15_000;

const REFUSAL = {
  severity: 'FATAL' as const,
  sqlstate: SqlState.invalidCatalogName,
  message: 'pgroute test refusal',
  detail: 'captured by the test listener',
  hint: 'nothing to fix',
};

interface Capture {
  /** Every packet psql sent, across all its connections, in order. */
  readonly packets: Buffer[];
  readonly output: string;
}

/** psql's environment: no PG* variables from the caller, a fixed locale, a 2 s connect timeout. */
function psqlEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) if (!key.startsWith('PG')) env[key] = value;
  return { ...env, PGCONNECT_TIMEOUT: '2', LC_ALL: 'C.UTF-8', PGPASSFILE: '/dev/null' };
}

async function capture(conninfo: string, viaTerminal = false): Promise<Capture> {
  const packets: Buffer[] = [];
  let child: ChildProcess | undefined;
  let output = '';
  let killTimer: NodeJS.Timeout | undefined;

  const server = net.createServer((socket) => {
    let pending = Buffer.alloc(0);
    socket.on('error', () => undefined);
    socket.on('data', (chunk) => {
      pending = Buffer.concat([pending, chunk]);
      while (pending.length >= 4) {
        const length = pending.readUInt32BE(0);
        if (length < 8 || pending.length < length) return;
        const packet = Buffer.from(pending.subarray(0, length));
        pending = pending.subarray(length);
        packets.push(packet);
        const code = packet.readUInt32BE(4);
        if (code === SSL_REQUEST_CODE || code === GSSENC_REQUEST_CODE) {
          socket.write(Buffer.from([NEGOTIATION_DECLINED]));
        } else {
          socket.end(encodeErrorResponse(REFUSAL));
          // Captured: psql should now exit on its own; make sure it does.
          killTimer ??= setTimeout(() => child?.kill('SIGKILL'), 3000);
        }
      }
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(PORT, HOST, resolve);
  });

  try {
    const [command, args] = viaTerminal
      ? [SCRIPT, ['-qec', `${PSQL} "${conninfo}"`, '/dev/null']]
      : [PSQL, [conninfo]];
    child = spawn(command, args, { env: psqlEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout?.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (output += d.toString()));
    const hardStop = setTimeout(() => child?.kill('SIGKILL'), TIMEOUT_MS - 3000);
    await new Promise<void>((resolve) => child?.once('close', () => resolve()));
    clearTimeout(hardStop);
  } finally {
    if (killTimer) clearTimeout(killTimer);
    if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
  return { packets, output };
}

function startupOf(c: Capture) {
  const startups = c.packets.map(decodePreamble).filter((p) => p.kind === 'startup');
  expect(startups).toHaveLength(1);
  const first = startups[0];
  if (first?.kind !== 'startup') throw new Error('no startup packet captured');
  return first;
}

// psql and script(1) are installed by scripts/setup.sh; a missing tool is a failure, not a skip.
describe('what psql really sends', () => {
  it(
    'sslmode=prefer: SSLRequest, then (after N) a 3.0 StartupMessage; our FATAL is printed',
    async () => {
      const c = await capture(`host=${HOST} port=${PORT} user=alice dbname=app sslmode=prefer gssencmode=disable`);
      expect(c.packets[0]?.toString('hex')).toBe('0000000804d2162f');
      expect(decodePreamble(c.packets[0] ?? Buffer.alloc(0))).toEqual({ kind: 'ssl-request' });

      const s = startupOf(c);
      expect(s.protocol).toEqual({ major: 3, minor: 0 });
      // Not on a terminal, psql sends no client_encoding.
      expect([...s.params]).toEqual([
        ['user', 'alice'],
        ['database', 'app'],
        ['application_name', 'psql'],
      ]);
      expect(c.packets).toHaveLength(2);

      expect(c.output).toContain(`FATAL:  ${REFUSAL.message}`);
      expect(c.output).toContain(`DETAIL:  ${REFUSAL.detail}`);
      expect(c.output).toContain(`HINT:  ${REFUSAL.hint}`);
    },
    TIMEOUT_MS,
  );

  it(
    "options='-c pgroute.tenant=acme' arrives verbatim and parses to the tenant",
    async () => {
      const c = await capture(
        `host=${HOST} port=${PORT} user=alice dbname=app sslmode=prefer gssencmode=disable options='-c pgroute.tenant=acme'`,
      );
      const s = startupOf(c);
      expect([...s.params.keys()]).toEqual(['user', 'database', 'options', 'application_name']);
      expect(s.params.get('options')).toBe('-c pgroute.tenant=acme');
      expect(parseStartupOptions(s.params.get('options') ?? '').get('pgroute.tenant')).toBe('acme');
    },
    TIMEOUT_MS,
  );

  it(
    'an escaped space in options survives libpq and is read back',
    async () => {
      const c = await capture(
        `host=${HOST} port=${PORT} user=alice dbname=app sslmode=disable gssencmode=disable options='-c application_name=my\\\\ app -c pgroute.tenant=acme'`,
      );
      const s = startupOf(c);
      expect(s.params.get('options')).toBe('-c application_name=my\\ app -c pgroute.tenant=acme');
      expect([...parseStartupOptions(s.params.get('options') ?? '')]).toEqual([
        ['application_name', 'my app'],
        ['pgroute.tenant', 'acme'],
      ]);
      expect(c.packets).toHaveLength(1); // sslmode=disable: no SSLRequest
    },
    TIMEOUT_MS,
  );

  it(
    'on a terminal psql adds client_encoding (the shape of the literal fixture)',
    async () => {
      const c = await capture(
        `host=${HOST} port=${PORT} user=alice dbname=app sslmode=prefer gssencmode=disable`,
        true,
      );
      const s = startupOf(c);
      expect([...s.params]).toEqual([
        ['user', 'alice'],
        ['database', 'app'],
        ['application_name', 'psql'],
        ['client_encoding', 'UTF8'],
      ]);
    },
    TIMEOUT_MS,
  );
});
