// Several pgroute replicas on one machine, as `pgroute up` with --name/--peer, each on its own port
// block and state dir, peers over 127.0.0.1; and a round-robin HAProxy in front standing in for the
// load balancer. The balancer connects to a replica FROM the client's own address
// (`usesrc clientip`: 127.0.0.x are local addresses, so no routing set-up is needed; root only), so
// every replica sees the client address as it would behind a balancer that keeps it.

import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { haproxyCli, showPeersSection } from '../../generator/src/index.js';
import { startUp } from './pgroute.js';
import type { PortBlock } from './ports.js';
import { spawnLogged, waitFor, waitForPort, type ProcessHandle } from './process.js';

export interface Replica {
  readonly name: string;
  readonly ports: PortBlock;
  readonly stateDir: string;
  readonly process: ProcessHandle;
  /** HAProxy's admin socket of this replica. */
  readonly adminSocket: string;
}

/** Starts one replica per port block; `peerPorts[i]` is replica i's peers listener on 127.0.0.1. */
export async function startReplicas(blocks: readonly PortBlock[], peerPorts: readonly number[], tenantsFile: string, dir: string): Promise<Replica[]> {
  const names = blocks.map((_, i) => `r${i + 1}`);
  const peers = names.flatMap((n, i) => ['--peer', `${n}=127.0.0.1:${peerPorts[i]}`]);
  return Promise.all(
    blocks.map(async (ports, i) => {
      const name = names[i]!;
      const stateDir = join(dir, `state-${name}`);
      const process = await startUp(ports, tenantsFile, stateDir, ['--name', name, ...peers]);
      return { name, ports, stateDir, process, adminSocket: join(stateDir, 'haproxy-admin.sock') };
    }),
  );
}

/**
 * The remote peers a HAProxy holds an established session with now, sorted: `pgroute status`'s
 * reading of `show peers` (2.6 keeps last_status=ESTA after a peer is gone).
 */
export async function connectedPeers(adminSocket: string): Promise<string[]> {
  const section = showPeersSection(await haproxyCli(adminSocket, 'show peers'), 'pgroute');
  return (section?.peers ?? []).filter((p) => !p.local && p.connected).map((p) => p.name).sort();
}

/** Resolves once every replica holds an established peers session with every other one. */
export async function peersConnected(replicas: readonly Replica[], timeoutMs = 20_000): Promise<void> {
  await waitFor(
    async () => {
      for (const r of replicas) if ((await connectedPeers(r.adminSocket)).length < replicas.length - 1) return false;
      return true;
    },
    { timeoutMs, what: 'every replica connected to every other peer' },
  );
}

/** `show table <table>` on a replica's admin socket. */
export function showTable(replica: Replica, table: string): Promise<string> {
  return haproxyCli(replica.adminSocket, `show table ${table}`);
}

/** A round-robin TCP balancer on 127.0.0.1:port over the replicas' public ports. */
export async function startBalancer(port: number, replicas: readonly Replica[], dir: string): Promise<ProcessHandle> {
  const cfg = join(dir, 'balancer.cfg');
  writeFileSync(
    cfg,
    [
      'defaults',
      '    mode tcp',
      '    timeout connect 5s',
      '    timeout client 1m',
      '    timeout server 1m',
      'frontend balancer',
      `    bind 127.0.0.1:${port}`,
      '    default_backend replicas',
      'backend replicas',
      '    balance roundrobin',
      '    source 0.0.0.0 usesrc clientip',
      ...replicas.map((r) => `    server ${r.name} 127.0.0.1:${r.ports.haproxy}`),
      '',
    ].join('\n'),
  );
  const p = spawnLogged(process.env['PGROUTE_HAPROXY'] ?? '/usr/sbin/haproxy', ['-db', '-f', cfg], { name: 'balancer' });
  await waitForPort(port, '127.0.0.1', 10_000, { process: p, what: 'the balancer listening' });
  return p;
}
