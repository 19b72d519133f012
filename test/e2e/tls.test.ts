// TLS on the one port end to end: `pgroute up --tls auto` (real HAProxy terminating TLS, the real
// agent), real PostgreSQL servers, real psql / pgbench / node-postgres, and a raw Node TLS client
// for what libpq 15 cannot do (PostgreSQL 17 direct TLS, a chosen server name).

import { execFile } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { TLSSocket } from 'node:tls';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeStartupMessage } from '../../agent/src/pg/frontend.js';
import { showProc } from '../../generator/src/haproxy/reload.js';
import { haproxyVersion } from '../../generator/src/haproxy/version.js';
import { statePaths } from '../../generator/src/settings.js';
import { swapCertificate } from '../../generator/src/tls/hot-swap.js';
import { ensureAutoTls } from '../../generator/src/tls/store.js';
import { portBlock } from '../support/ports.js';
import { PG_BIN, startPostgresMany, type PgServer } from '../support/postgres.js';
import { CLI, REPO_ROOT, runCli, startUp, writeTenantsFile } from '../support/pgroute.js';
import { sleep, spawnLogged, stopAll, waitFor, waitForPort, type ProcessHandle } from '../support/process.js';
import { pgQuery, psql, PSQL_BIN } from '../support/psql.js';
import { connectTlsPg, peerCertificate, SSL_REQUEST, tlsExchange } from '../support/tls-client.js';
import { errorResponseOf, exchange } from '../support/wire.js';

const ports = portBlock(8);
const TENANTS = ['acme', 'globex', 'initech'] as const;
type TenantId = (typeof TENANTS)[number];
const SANS = ['localhost', '127.0.0.1'];
const SNI_PATTERN = '^(?<tenant>[a-z0-9-]+)\\.db\\.test$';

let servers: PgServer[] = [];
let up: ProcessHandle; // main instance: keys [options, database]; a TLS-only second listener
let sniUp: ProcessHandle; // second instance: keys [options] + routing.sni
let tmp: string;
let stateDir: string;
let sniStateDir: string;
let caPem: string;
let caFile: string;
let sniCaPem: string;

function server(id: TenantId): PgServer {
  const s = servers[TENANTS.indexOf(id)];
  if (!s) throw new Error(`no server for ${id}`);
  return s;
}

function certCa(dir: string): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [CLI, 'cert', 'ca', '--state-dir', dir], { cwd: REPO_ROOT, encoding: 'utf8' }, (err, stdout, stderr) =>
      err ? reject(new Error(`pgroute cert ca failed: ${stderr}`)) : resolve(stdout),
    );
  });
}

const quiet = { info: () => {}, warn: () => {}, error: () => {} };

beforeAll(async () => {
  servers = await startPostgresMany(TENANTS.map((name, i) => ({ name, port: ports.pg[i] as number })));
  const tenants = TENANTS.map((id) => ({ id, port: server(id).port }));
  const main = writeTenantsFile(tenants, { listeners: [{ port: ports.haproxy }, { port: ports.haproxyExtra, tls: 'required' }] });
  tmp = main.dir;
  stateDir = join(tmp, 'state');
  up = await startUp(ports, main.file, stateDir, ['--tls', 'auto', '--tls-san', ...SANS]);
  await waitForPort(ports.haproxyExtra, '127.0.0.1', 10_000, { process: up });
  caPem = await certCa(stateDir);
  caFile = join(tmp, 'ca.pem');
  writeFileSync(caFile, caPem);

  const sniFile = join(tmp, 'tenants-sni.yaml');
  writeFileSync(sniFile, JSON.stringify({ routing: { keys: ['options'], sni: SNI_PATTERN }, tenants: tenants.map((t) => ({ host: '127.0.0.1', ...t })) }));
  sniStateDir = join(tmp, 'state-sni');
  sniUp = runCli('pgroute-up-sni', [
    'up', '--tenants', sniFile, '--state-dir', sniStateDir, '--bind', '127.0.0.1', '--port', String(ports.haproxyAlt),
    '--agent-port', String(ports.agentAlt), '--agent-http-port', String(ports.agentAltHealth), '--stats-port', '0',
    '--tls', 'auto', '--tls-san', '*.db.test', 'localhost',
  ]);
  await waitForPort(ports.haproxyAlt, '127.0.0.1', 20_000, { process: sniUp, what: 'the SNI pgroute listening' });
  sniCaPem = await certCa(sniStateDir);
});

afterAll(async () => {
  await sniUp?.stop('SIGINT', 10_000);
  await up?.stop('SIGINT', 10_000);
  await stopAll();
  for (const s of servers) await s.stop();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

const proxy = { host: '127.0.0.1', port: ports.haproxy };

describe('libpq (psql 15): every sslmode lands on its tenant', () => {
  const modes = ['disable', 'prefer', 'require', 'verify-ca', 'verify-full'] as const;
  for (const sslmode of modes) {
    it(`sslmode=${sslmode}`, async () => {
      const verify = sslmode.startsWith('verify');
      for (const id of TENANTS) {
        const r = await psql({
          // verify-full checks the name: connect to "localhost" (a SAN), at 127.0.0.1 (HAProxy binds only that).
          host: sslmode === 'verify-full' ? 'localhost' : '127.0.0.1',
          port: ports.haproxy,
          user: 'app',
          db: id,
          sslmode,
          command: ['SHOW cluster_name', '\\conninfo'],
          env: { PGSSLROOTCERT: verify ? caFile : undefined, PGHOSTADDR: sslmode === 'verify-full' ? '127.0.0.1' : undefined },
        });
        expect(r.stderr).toBe('');
        expect(r.code).toBe(0);
        const [cluster, ...info] = r.stdout.trim().split('\n');
        expect(cluster).toBe(id);
        // \conninfo prints "SSL connection (protocol: TLSv1.3, ...)" when the session is encrypted.
        if (sslmode === 'disable') expect(info.join('\n')).not.toContain('SSL connection');
        else expect(info.join('\n')).toMatch(/SSL connection \(protocol: TLSv1\.[23]/);
      }
    });
  }

  it('verify-full to a name the certificate lacks is refused by the client', async () => {
    const r = await psql({ host: '127.0.0.2', port: ports.haproxy, user: 'app', db: 'acme', sslmode: 'verify-full', command: 'SELECT 1', env: { PGSSLROOTCERT: caFile, PGHOSTADDR: '127.0.0.1' } });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/does not match host name "127\.0\.0\.2"/);
  });

  it('node-postgres with ssl { ca }: a verified TLS session to the right server', async () => {
    for (const id of TENANTS) {
      const client = new pg.Client({ ...proxy, user: 'app', database: id, ssl: { ca: caPem } });
      client.on('error', () => {});
      await client.connect();
      try {
        const stream = (client as unknown as { connection: { stream: unknown } }).connection.stream;
        expect(stream).toBeInstanceOf(TLSSocket);
        expect((stream as TLSSocket).authorized).toBe(true);
        const r = await client.query<{ cluster_name: string }>('SHOW cluster_name');
        expect(r.rows[0]?.cluster_name).toBe(id);
      } finally {
        await client.end();
      }
    }
  });
});

describe('PostgreSQL 17 direct TLS (ClientHello first, ALPN postgresql)', () => {
  it('lands on its tenant, verified, with ALPN postgresql', async () => {
    for (const id of TENANTS) {
      const s = await connectTlsPg({ port: ports.haproxy, negotiation: 'direct', servername: 'localhost', ca: caPem, params: { user: 'app', database: id } });
      try {
        expect(s.authorized).toBe(true);
        expect(s.alpnProtocol).toBe('postgresql');
        expect(s.error).toBeUndefined();
        expect(s.startup[0]?.type).toBe('R');
        expect(s.startup.at(-1)?.type).toBe('Z');
        expect(await s.query('SHOW cluster_name')).toEqual([[id]]);
      } finally {
        await s.close();
      }
    }
  });

  it('the raw SSLRequest path gives the same certificate and session', async () => {
    const s = await connectTlsPg({ port: ports.haproxy, negotiation: 'sslrequest', servername: 'localhost', ca: caPem, params: { user: 'app', database: 'postgres', options: '-c pgroute.tenant=globex' } });
    try {
      expect(s.authorized).toBe(true);
      expect(await s.query("SELECT current_setting('cluster_name'), current_database()")).toEqual([['globex', 'postgres']]);
    } finally {
      await s.close();
    }
  });
});

describe('SNI routing (routing.sni, keys [options])', () => {
  const sni = { port: ports.haproxyAlt };

  it('the server name picks the tenant, whatever the database', async () => {
    for (const id of ['acme', 'initech'] as const) {
      for (const negotiation of ['direct', 'sslrequest'] as const) {
        const s = await connectTlsPg({ ...sni, negotiation, servername: `${id}.db.test`, ca: sniCaPem, params: { user: 'app', database: 'postgres' } });
        try {
          expect(s.error).toBeUndefined();
          expect(s.authorized).toBe(true); // *.db.test is in the certificate
          expect(await s.query("SELECT current_setting('cluster_name'), current_database()")).toEqual([[id, 'postgres']]);
        } finally {
          await s.close();
        }
      }
    }
  });

  it('options naming the same tenant as the server name: routed', async () => {
    const s = await connectTlsPg({ ...sni, negotiation: 'direct', servername: 'globex.db.test', ca: sniCaPem, params: { user: 'app', database: 'postgres', options: '-c pgroute.tenant=globex' } });
    try {
      expect(await s.query('SHOW cluster_name')).toEqual([['globex']]);
    } finally {
      await s.close();
    }
  });

  it('server name and options disagreeing: FATAL 28000 naming both', async () => {
    const s = await connectTlsPg({ ...sni, negotiation: 'direct', servername: 'acme.db.test', ca: sniCaPem, params: { user: 'app', database: 'postgres', options: '-c pgroute.tenant=globex' } });
    try {
      expect(s.error?.severity).toBe('FATAL');
      expect(s.error?.sqlstate).toBe('28000');
      expect(s.error?.message).toContain('"acme.db.test"');
      expect(s.error?.message).toContain('"acme"');
      expect(s.error?.message).toContain('"globex"');
      expect(s.startup.some((m) => m.type === 'R')).toBe(false);
    } finally {
      await s.close();
    }
  });

  it('a server name outside the pattern and no options: no tenant named (28000)', async () => {
    const s = await connectTlsPg({ ...sni, negotiation: 'direct', servername: 'localhost', ca: sniCaPem, params: { user: 'app', database: 'acme' } });
    try {
      expect(s.error?.sqlstate).toBe('28000');
    } finally {
      await s.close();
    }
  });
});

describe('a TLS-required listener', () => {
  const required = { host: '127.0.0.1', port: ports.haproxyExtra };

  it("refuses sslmode=disable with 'this port requires TLS'", async () => {
    const r = await psql({ ...required, user: 'app', db: 'acme', sslmode: 'disable', command: 'SELECT 1' });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('FATAL:  this port requires TLS');
    const err = await pgQuery({ ...required, user: 'app', database: 'acme' }, 'SELECT 1').catch((e: unknown) => e as pg.DatabaseError);
    expect((err as pg.DatabaseError).code).toBe('28000');
  });

  it('accepts sslmode=require (and direct TLS)', async () => {
    const r = await psql({ ...required, user: 'app', db: 'initech', sslmode: 'require', command: 'SHOW cluster_name' });
    expect(r.stderr).toBe('');
    expect(r.stdout.trim()).toBe('initech');
    const s = await connectTlsPg({ ...required, negotiation: 'direct', servername: 'localhost', ca: caPem, params: { user: 'app', database: 'acme' } });
    try {
      expect(await s.query('SHOW cluster_name')).toEqual([['acme']]);
    } finally {
      await s.close();
    }
  });

  it('the other listener still takes clear text', async () => {
    const r = await psql({ ...proxy, user: 'app', db: 'acme', sslmode: 'disable', command: 'SHOW cluster_name' });
    expect(r.stdout.trim()).toBe('acme');
  });
});

describe('the negotiation bytes', () => {
  it("SSLRequest alone is answered 'S' at once (not after the startup timeout)", async () => {
    const started = Date.now();
    const r = await exchange(ports.haproxy, [SSL_REQUEST], { untilBytes: 1, timeoutMs: 5_000 });
    expect(r.received.toString('latin1')).toBe('S');
    expect(Date.now() - started).toBeLessThan(1_000);
  });

  it("a client silent after its 'S' (no TLS handshake) is let go like one without a startup packet, not after the client timeout's minute", async () => {
    // From 3.0 the handshake has the startup timeout (5 s); 2.6 has no handshake timeout, and the TLS
    // frontend's client timeout is the startup timeout and 2 s (7 s).
    const major = Number((haproxyVersion() ?? '').split('.')[0]);
    const bound = major >= 3 ? 5_000 : 7_000;
    const r = await exchange(ports.haproxy, [SSL_REQUEST], { timeoutMs: 40_000 });
    expect(r.received.toString('latin1')).toBe('S');
    expect(r.closedByServer).toBe(true);
    expect(r.msAfterLastWrite).toBeGreaterThanOrEqual(bound - 500);
    // HAProxy's timers fire late on a loaded machine, never early; the minute it was is far off.
    expect(r.msAfterLastWrite).toBeLessThan(bound + 10_000);
  }, 60_000);

  it("GSSENCRequest is answered 'N', then the SSLRequest on the same connection 'S'", async () => {
    const gss = Buffer.from('0000000804d21630', 'hex');
    const r = await exchange(ports.haproxy, [gss, SSL_REQUEST], { gapMs: 100, untilBytes: 2, timeoutMs: 5_000 });
    expect(r.received.toString('latin1')).toBe('NS');
  });

  it("an SSLRequest split after its length is answered 'S' once its last 4 bytes come", async () => {
    const r = await exchange(ports.haproxy, [SSL_REQUEST.subarray(0, 4), SSL_REQUEST.subarray(4)], { gapMs: 300, untilBytes: 1, timeoutMs: 5_000 });
    expect(r.received.toString('latin1')).toBe('S');
  });

  // Two oversized lengths: over HAProxy's buffer (16384: the whole packet can never be read) and
  // under it but over pgroute's limit (the packet could still come, so a rule reading it would wait).
  for (const length of ['00004e20', '00002ee0']) {
    it(`the 4 bytes of an oversized length (0x${length}) alone: 08P01 at once, not after the startup timeout, in clear text and inside TLS`, async () => {
      const r = await exchange(ports.haproxy, [Buffer.from(length, 'hex')], { timeoutMs: 5_000 });
      expect(r.msAfterLastWrite).toBeLessThan(2_500);
      expect(r.closedByServer).toBe(true);
      expect(errorResponseOf(r.received).sqlstate).toBe('08P01');
      const inTls = await tlsExchange({ port: ports.haproxy, servername: 'localhost', ca: caPem }, Buffer.from(length, 'hex'));
      expect(inTls.msAfterWrite).toBeLessThan(2_500);
      expect(errorResponseOf(inTls.received).sqlstate).toBe('08P01');
    });
  }
});

describe('bytes pipelined after an SSLRequest (CVE-2021-23214)', () => {
  it("SSLRequest + StartupMessage in one write: 08P01, and never an 'S'", async () => {
    const startup = encodeStartupMessage({ user: 'app', database: 'acme' });
    const r = await exchange(ports.haproxy, [Buffer.concat([SSL_REQUEST, startup])], { timeoutMs: 5_000 });
    expect(r.closedByServer).toBe(true);
    expect(r.received[0]).not.toBe('S'.charCodeAt(0));
    const e = errorResponseOf(r.received);
    expect(e.sqlstate).toBe('08P01');
    expect(e.message).toBe('received unencrypted data after SSL request');
  });

  it('SSLRequest + a ClientHello in one write: refused the same way', async () => {
    const r = await exchange(ports.haproxy, [Buffer.concat([SSL_REQUEST, Buffer.from('160301020001000200', 'hex')])], { timeoutMs: 5_000 });
    expect(r.received[0]).not.toBe('S'.charCodeAt(0));
    expect(errorResponseOf(r.received).message).toBe('received unencrypted data after SSL request');
  });

  it("GSSENCRequest + SSLRequest in one write: refused with PostgreSQL's words, never an 'N' then an 'S'", async () => {
    const r = await exchange(ports.haproxy, [Buffer.concat([Buffer.from('0000000804d21630', 'hex'), SSL_REQUEST])], { timeoutMs: 5_000 });
    expect(r.received[0]).not.toBe('N'.charCodeAt(0));
    const e = errorResponseOf(r.received);
    expect([e.sqlstate, e.message]).toEqual(['08P01', 'received unencrypted data after GSSAPI encryption request']);
  });
});

describe('cancel over TLS', () => {
  it("psql sslmode=require: Ctrl-C cancels the running query within 5 s", async () => {
    const args = ['-X', '-h', '127.0.0.1', '-p', String(ports.haproxy), '-U', 'app', '-d', 'globex', '-c', 'SELECT pg_sleep(30)'];
    const env: Record<string, string | undefined> = { PGSSLMODE: 'require', PGOPTIONS: undefined, PGSSLROOTCERT: undefined };
    const p = spawnLogged(PSQL_BIN, args, { name: 'psql-sleep-tls', processGroup: false, env });
    await waitFor(
      async () =>
        (await pgQuery<{ n: string }>(server('globex').connectionString('postgres'), "SELECT count(*) AS n FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(30)' AND state = 'active'"))[0]?.n === '1',
      { timeoutMs: 10_000, what: 'the sleeping query on globex' },
    );
    const started = Date.now();
    p.child.kill('SIGINT');
    const exit = await p.exited;
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(exit.code).not.toBe(0);
    expect(p.output()).toContain('canceling statement due to user request');
  });
});

describe('certificate rotation without a reload', () => {
  it('pgbench -C over TLS through a hot swap: no failure, new connections see the new serial', async () => {
    const paths = statePaths(stateDir);
    const before = await showProc(paths.masterSocket);
    const oldSerial = (await peerCertificate({ port: ports.haproxy, negotiation: 'sslrequest', servername: 'localhost' })).serialNumber;

    const script = join(tmp, 'select1.sql');
    writeFileSync(script, 'SELECT 1;\n');
    const bench = spawnLogged(
      join(PG_BIN, 'pgbench'),
      ['-h', '127.0.0.1', '-p', String(ports.haproxy), '-U', 'app', '-n', '-C', '-c', '4', '-T', '15', '-f', script, 'postgres'],
      { name: 'pgbench-tls', env: { PGSSLMODE: 'require', PGOPTIONS: '-c pgroute.tenant=acme', PGCONNECT_TIMEOUT: '10' } },
    );
    await sleep(5_000);
    expect(bench.running()).toBe(true);

    // What the renewal timer does (cli/tls.ts startRenewal), now: reissue (here because the names
    // changed) and swap it into the running HAProxy through the runtime API.
    const renewed = await ensureAutoTls({ stateDir, sans: [...SANS, 'rotated.test'], log: quiet });
    expect(renewed.renewed).toBe(true);
    expect(renewed.serverPemPath).toBe(join(stateDir, 'tls', 'server.pem'));
    const { readFile } = await import('node:fs/promises');
    await swapCertificate(paths.adminSocket, renewed.serverPemPath, await readFile(renewed.serverPemPath, 'utf8'));

    const newCert = await peerCertificate({ port: ports.haproxy, negotiation: 'sslrequest', servername: 'localhost', ca: caPem });
    const norm = (s: string): string => s.toUpperCase().replace(/^0+/, '');
    expect(norm(newCert.serialNumber)).toBe(norm(renewed.serialHex));
    expect(norm(newCert.serialNumber)).not.toBe(norm(oldSerial));
    expect(newCert.subjectaltname).toContain('DNS:rotated.test');
    // Direct TLS and the TLS-only listener serve it too (one crt, one swap).
    const direct = await peerCertificate({ port: ports.haproxyExtra, negotiation: 'direct', servername: 'localhost' });
    expect(norm(direct.serialNumber)).toBe(norm(renewed.serialHex));

    const exit = await bench.exited;
    const out = bench.output();
    expect(exit.code, out).toBe(0);
    expect(out).toMatch(/number of failed transactions: 0 \(/);
    expect(out).not.toMatch(/aborted|error|FATAL/i);
    const done = Number(/number of transactions actually processed: (\d+)/.exec(out)?.[1] ?? 0);
    expect(done).toBeGreaterThan(20); // a connection per transaction: tens per second on a busy 2-core machine

    const after = await showProc(paths.masterSocket);
    expect(after.reloads).toBe(before.reloads);
    expect(after.masterPid).toBe(before.masterPid);
    expect(after.workers).toEqual(before.workers);
    // The clients trust the same CA: verify-full still works against the new certificate.
    const r = await psql({ host: 'localhost', port: ports.haproxy, user: 'app', db: 'initech', sslmode: 'verify-full', command: 'SHOW cluster_name', env: { PGSSLROOTCERT: caFile, PGHOSTADDR: '127.0.0.1' } });
    expect(r.stderr).toBe('');
    expect(r.stdout.trim()).toBe('initech');
  }, 60_000);
});
