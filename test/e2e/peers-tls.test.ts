// Mutual TLS between the replicas' peers listeners (--peers-tls-cert, --peers-tls-ca), with real
// HAProxy peers: two `pgroute up` replicas whose certificates one CA signed connect both ways and
// replicate an access switch; the local peer's handover at a reload (old worker to new worker)
// goes through TLS too and keeps the table. An impostor listed as a third peer (a plain HAProxy
// with the same replicated table, and a certificate the CA did not sign) dials both replicas and
// is dialled by them: it never connects, and its forged switch reaches no replica. Also: the flags
// refused in one line, exit 2 (one without the other, a file that is not what it must be).

import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { haproxyCli, reloadMaster, showPeersSection } from '../../generator/src/index.js';
import { runCliOnce, startUp } from '../support/pgroute.js';
import { portBlock, replicaPorts } from '../support/ports.js';
import { startPostgresMany, type PgServer } from '../support/postgres.js';
import { spawnLogged, stopAll, waitFor, type ProcessHandle } from '../support/process.js';
import { connectedPeers } from '../support/replicas.js';
import { routedClients } from '../support/routed.js';

const block = portBlock(42);
const NAMES = ['r1', 'r2'] as const;
const ports = NAMES.map((_, i) => replicaPorts(block, i));
const peerPort = (i: number): number => block.spare[40 + i] as number;
/** r3 is listed by both replicas; only the impostor ever answers as it. */
const PEERS = ['r1', 'r2', 'r3'].map((n, i) => `${n}=127.0.0.1:${peerPort(i)}`).join(',');

let tmp = '';
let servers: PgServer[] = [];
const replicas: ProcessHandle[] = [];
let impostor: ProcessHandle | undefined;
const stateDir = (i: number): string => join(tmp, NAMES[i] ?? '', 'state');
const via = (i: number) => routedClients({ port: ports[i]?.haproxy ?? 0, showOnTimeout: () => replicas[i] });

/** r1 presents one PEM holding its certificate and key; r2 its certificate with the key in <file>.key. */
const certOf = (n: string): string => join(tmp, n === 'r2' ? 'r2.crt' : `${n}.pem`);

function openssl(...args: string[]): void {
  execFileSync('openssl', args, { cwd: tmp, stdio: 'pipe' });
}

/** A CA, a certificate it signs for each replica, and a self-signed one for the impostor (PEM: cert + key). */
function makeCertificates(): void {
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
  openssl('req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=pgroute peers CA');
  for (const n of NAMES) {
    openssl('req', ...ec, '-keyout', `${n}.key`, '-out', `${n}.csr`, '-subj', `/CN=${n}`);
    openssl('x509', '-req', '-in', `${n}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', `${n}.crt`, '-days', '2');
    writeFileSync(join(tmp, `${n}.pem`), readFileSync(join(tmp, `${n}.crt`), 'utf8') + readFileSync(join(tmp, `${n}.key`), 'utf8'));
  }
  // r2's key beside its certificate instead (HAProxy's <file>.key, as a Kubernetes Secret's tls.crt
  // and tls.key are mounted: kubernetes/components/peers-tls).
  writeFileSync(join(tmp, 'r2.crt.key'), readFileSync(join(tmp, 'r2.key'), 'utf8'));
  openssl('req', '-x509', ...ec, '-keyout', 'r3.key', '-out', 'r3.crt', '-days', '2', '-subj', '/CN=r3');
  writeFileSync(join(tmp, 'r3.pem'), readFileSync(join(tmp, 'r3.crt'), 'utf8') + readFileSync(join(tmp, 'r3.key'), 'utf8'));
}

/** The impostor: HAProxy as peer r3 with pgroute's replicated access table, holding a forged switch. */
async function startImpostor(): Promise<ProcessHandle> {
  const cfg = join(tmp, 'impostor.cfg');
  writeFileSync(
    cfg,
    [
      'global',
      `    stats socket ${join(tmp, 'impostor.sock')} level admin`,
      '    localpeer r3',
      'peers pgroute',
      `    bind 127.0.0.1:${peerPort(2)} ssl crt ${join(tmp, 'r3.pem')} ca-file ${join(tmp, 'ca.pem')} verify none`,
      `    default-server ssl crt ${join(tmp, 'r3.pem')} verify none`,
      '    server r3',
      `    server r1 127.0.0.1:${peerPort(0)}`,
      `    server r2 127.0.0.1:${peerPort(1)}`,
      'backend pgroute-access',
      '    stick-table type string len 64 size 100k nopurge store gpt0 peers pgroute',
      '',
    ].join('\n'),
  );
  const p = spawnLogged(process.env['PGROUTE_HAPROXY'] ?? 'haproxy', ['-db', '-f', cfg], { name: 'impostor' });
  // A far newer switch than any real one: `bravo` disabled (state 1), were it ever accepted.
  await waitFor(async () => ((await haproxyCli(join(tmp, 'impostor.sock'), `set table pgroute-access key bravo data.gpt0 ${0x3fff_ff00 * 4 + 1}`).catch(() => 'no')).trim() === '' ? true : undefined), {
    timeoutMs: 10_000,
    what: 'the impostor holding its forged switch',
    process: p,
  });
  return p;
}

/** How many connections the impostor's HAProxy opened to `peer` so far (`show peers` new_conn). */
async function impostorAttempts(peer: string): Promise<number> {
  const text = await haproxyCli(join(tmp, 'impostor.sock'), 'show peers');
  return Number(new RegExp(`id=${peer}\\(remote[^]*?new_conn=(\\d+)`).exec(text)?.[1] ?? 0);
}

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'pgroute-peers-tls-'));
  makeCertificates();
  servers = await startPostgresMany([
    { name: 'alpha', port: block.pg[0] },
    { name: 'bravo', port: block.pg[1] },
  ]);
  const tenants = JSON.stringify({ tenants: [{ id: 'alpha', host: '127.0.0.1', port: block.pg[0] }, { id: 'bravo', host: '127.0.0.1', port: block.pg[1] }] });
  const started = await Promise.all(
    NAMES.map((n, i) => {
      mkdirSync(stateDir(i), { recursive: true });
      writeFileSync(join(tmp, n, 'tenants.json'), tenants);
      return startUp(ports[i]!, join(tmp, n, 'tenants.json'), stateDir(i), ['--name', n, '--peer', PEERS, '--peers-tls-cert', certOf(n), '--peers-tls-ca', join(tmp, 'ca.pem')]);
    }),
  );
  replicas.push(...started);
}, 180_000);

afterAll(async () => {
  await Promise.all(replicas.map((p) => p.stop('SIGINT', 10_000)));
  await impostor?.stop();
  await stopAll();
  await Promise.all(servers.map((s) => s.stop()));
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

describe('peers over mutual TLS (--peers-tls-cert, --peers-tls-ca; real HAProxy peers)', () => {
  it('renders TLS on the peers listener and on every peer connection', () => {
    for (const i of [0, 1]) {
      const cfg = readFileSync(join(stateDir(i), 'haproxy.cfg'), 'utf8');
      const crt = certOf(NAMES[i] as string);
      expect(cfg).toContain(`    bind 127.0.0.1:${peerPort(i)} ssl crt ${crt} ca-file ${join(tmp, 'ca.pem')} verify required\n`);
      expect(cfg).toContain(`    default-server ssl crt ${crt} ca-file ${join(tmp, 'ca.pem')} verify required\n`);
    }
  });

  it('the two replicas connect both ways and replicate a switch', async () => {
    for (const [i, other] of [[0, 'r2'], [1, 'r1']] as const) {
      await waitFor(async () => ((await connectedPeers(join(stateDir(i), 'haproxy-admin.sock'))).includes(other) ? true : undefined), { timeoutMs: 15_000, intervalMs: 100, what: `${NAMES[i]} connected to ${other} over TLS` });
    }
    const refusal = await via(0).outcome('nosuch');
    expect(refusal).toMatch(/^refused [0-9A-Z]{5}$/);
    const d = await runCliOnce(['tenant', 'disable', 'alpha', '--state-dir', stateDir(0)]);
    expect(d.code, d.stderr).toBe(0);
    await via(1).reaches('disable on r1: refused on r2', 'alpha', refusal, Date.now(), 10_000);
  });

  it('a reload hands the table to the new worker through the TLS listener (the switch is kept)', async () => {
    const outcome = await reloadMaster(join(stateDir(1), 'haproxy-master.sock'));
    expect(outcome.ok, outcome.detail).toBe(true);
    // The new worker's own entry: a session with the old worker (the local peer) was established,
    // through the listener that requires a certificate the CA signed; then its resync finished.
    const section = () => haproxyCli(join(stateDir(1), 'haproxy-admin.sock'), 'show peers').then((t) => showPeersSection(t, 'pgroute'));
    await waitFor(async () => {
      const s = await section();
      return s?.resynced === true && s.peers.find((p) => p.local)?.lastStatus === 'ESTA' ? true : undefined;
    }, { timeoutMs: 15_000, intervalMs: 100, what: "r2's new worker resynced from the old one over TLS" });
    await waitFor(async () => ((await connectedPeers(join(stateDir(1), 'haproxy-admin.sock'))).includes('r1') ? true : undefined), { timeoutMs: 15_000, intervalMs: 100, what: 'r2 (new worker) connected to r1' });
    expect(await haproxyCli(join(stateDir(1), 'haproxy-admin.sock'), 'show table pgroute-access')).toMatch(/key=alpha /);
    expect(await via(1).outcome('alpha')).toMatch(/^refused /);
  });

  it('an impostor peer without a certificate the CA signed never connects, and its forged switch reaches no replica', async () => {
    impostor = await startImpostor();
    // It has tried each replica several times (and they it): every attempt fails the handshake.
    for (const peer of ['r1', 'r2']) await waitFor(async () => ((await impostorAttempts(peer)) >= 3 ? true : undefined), { timeoutMs: 30_000, intervalMs: 200, what: `the impostor's third attempt at ${peer}`, process: impostor });
    for (let i = 0; i < NAMES.length; i++) {
      // The real peer is connected (read until it is: one flap of r1-r2 on a loaded machine is not this test's subject), the impostor never.
      const up = await waitFor(async () => {
        const peers = await connectedPeers(join(stateDir(i), 'haproxy-admin.sock'));
        return peers.includes(NAMES[1 - i] ?? '') ? peers : undefined;
      }, { timeoutMs: 15_000, intervalMs: 100, what: `${NAMES[i]} connected to ${NAMES[1 - i]}` });
      expect(up).toEqual([NAMES[1 - i]]);
      expect(await haproxyCli(join(stateDir(i), 'haproxy-admin.sock'), 'show table pgroute-access')).not.toMatch(/key=bravo /);
      expect(await via(i).outcome('bravo')).toBe('bravo');
    }
  });

  it('the flags: one without the other, or a file that is not a PEM of the right kind, refused in one line (exit 2)', async () => {
    const base = ['plan', '--state-dir', join(tmp, 'plan-state'), '--tenants', join(tmp, 'r1', 'tenants.json'), '--name', 'r1', '--peer', PEERS];
    const cases: [string[], RegExp][] = [
      [['--peers-tls-cert', join(tmp, 'r1.pem')], /^pgroute: --peers-tls-cert \(PGROUTE_PEERS_TLS_CERT\) and --peers-tls-ca \(PGROUTE_PEERS_TLS_CA\) go together/],
      [['--peers-tls-cert', join(tmp, 'r1.crt'), '--peers-tls-ca', join(tmp, 'ca.pem')], /^pgroute: --peers-tls-cert \(PGROUTE_PEERS_TLS_CERT\) must be a readable PEM file holding the certificate \(chain first\) and its unencrypted private key, or the key alone in <file>\.key beside it, got /],
      [['--peers-tls-cert', join(tmp, 'r1.pem'), '--peers-tls-ca', join(tmp, 'missing.pem')], /^pgroute: --peers-tls-ca \(PGROUTE_PEERS_TLS_CA\) must be a readable PEM file .*ENOENT/],
    ];
    for (const [flags, message] of cases) {
      const r = await runCliOnce([...base, ...flags]);
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toMatch(message);
    }
  });
});
