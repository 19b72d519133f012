// Who the replicas of one pgroute deployment are, and how their HAProxies find each other over
// HAProxy's peers protocol (stick-table entries replicated between processes). Pure: names and
// addresses in, validated values and the template's words out. docs/replicas.md explains the why.

import { createHash } from 'node:crypto';
import { hostname } from 'node:os';
import { isIP } from 'node:net';
import { haproxyAddress, hostProblem } from '../validate.js';

/** One replica: its peer name and the address its HAProxy's peers listener is reached at. */
export interface Peer {
  readonly name: string;
  readonly host: string;
  readonly port: number;
}

/**
 * This replica's name and every replica (itself included) when a peer list was given; with no peer
 * list, `peers` is empty: one replica, whose local peer listens on a unix socket in the state dir
 * only so that stick tables survive reloads (the old worker teaches the new one through it).
 */
export interface Replicas {
  readonly self: string;
  readonly peers: readonly Peer[];
}

/** The HAProxy peers section and stick-table scope every replicated table names. */
export const PEERS_SECTION = 'pgroute';
/** The peers section's keepalive table (peer-nudge.ts writes it, haproxy/partials/peers.hbs declares it). */
export const ALIVE_TABLE_NAME = 'alive';

/** A peer name is one word of haproxy.cfg and of the peers protocol's hello. */
const PEER_NAME = /^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,61}[A-Za-z0-9])?$/;
export const PEER_NAME_RULE = "letters, digits, '.', '_' and '-', 1 to 63 characters, starting and ending with a letter or digit";

/** Why a peer list was refused: the rule broken and the offending value, for a one-line message. */
export class PeersProblem extends Error {
  constructor(
    readonly rule: string,
    readonly value: string,
  ) {
    super(`${rule}, got "${value}"`);
  }
}

export function peerNameProblem(name: string): string | undefined {
  return PEER_NAME.test(name) ? undefined : `a replica name of ${PEER_NAME_RULE}`;
}

/** A name HAProxy would take but for its length (a long pod name: a DNS subdomain up to 253). */
const LONG_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{62,251}[A-Za-z0-9]$/;

/**
 * The peer name for a name longer than HAProxy's 63 characters (a pod of a long-named StatefulSet,
 * say): its first 50 characters, '-', and 12 hex digits of its SHA-256, so that it is the same on
 * every replica that derives it and two long names sharing a prefix stay distinct. Any other name
 * is returned as it is (and validated as it is).
 */
export function shortPeerName(name: string): string {
  if (!LONG_NAME.test(name)) return name;
  const hash = createHash('sha256').update(name).digest('hex').slice(0, 12);
  return `${name.slice(0, 50).replace(/[^A-Za-z0-9]+$/, '')}-${hash}`;
}

/**
 * The default replica name: this host's name made a valid peer name (a pod's name on Kubernetes,
 * a container id in Docker), so unconfigured replicas never collide by accident on one network.
 */
export function defaultReplicaName(host: string = hostname()): string {
  const cleaned = host
    .replace(/[^A-Za-z0-9._-]/g, '-')
    .slice(0, 63)
    .replace(/^[^A-Za-z0-9]+|[^A-Za-z0-9]+$/g, '');
  return cleaned === '' ? 'pgroute' : cleaned;
}

/** `name=host:port` or `name=[v6]:port`. */
export function parsePeer(entry: string): Peer {
  const rule = 'a peer of the form <name>=<host>:<port> (IPv6: <name>=[<address>]:<port>)';
  const m = /^([^=\s]+)=(?:\[([^\]\s]+)\]|([^:\s\[\]]+)):(\d{1,5})$/.exec(entry);
  if (m === null) throw new PeersProblem(rule, entry);
  const [, long = '', v6, plain, portText = ''] = m;
  const name = shortPeerName(long);
  if (peerNameProblem(name) !== undefined) throw new PeersProblem(`a peer name of ${PEER_NAME_RULE}`, entry);
  const host = v6 ?? plain ?? '';
  // HAProxy parses no IPv6 zone id (fe80::1%eth0) in a server or bind line.
  if (v6 !== undefined ? isIP(v6) !== 6 || v6.includes('%') : hostProblem(host) !== undefined) {
    throw new PeersProblem('a peer host that is an IP address or a host name', entry);
  }
  const port = Number(portText);
  if (port < 1 || port > 65535) throw new PeersProblem('a peer port from 1 to 65535', entry);
  return { name, host, port };
}

/** Splits what flags and PGROUTE_PEERS give (repeated and/or comma-separated) into entries. */
export function peerEntries(raw: readonly string[] | string | undefined): string[] {
  const list = raw === undefined ? [] : typeof raw === 'string' ? [raw] : raw;
  return list.flatMap((s) => s.split(',')).map((s) => s.trim()).filter((s) => s !== '');
}

/**
 * The replicas from --name and the --peer entries: every entry well-formed, no name or address
 * twice, and --name among them when any is given. Throws PeersProblem naming the first fault.
 */
export function parseReplicas(name: string | undefined, entries: readonly string[]): Replicas {
  const self = shortPeerName(name ?? defaultReplicaName());
  const nameRule = peerNameProblem(self);
  if (nameRule !== undefined) throw new PeersProblem(nameRule, self);
  const peers = entries.map(parsePeer);
  const names = new Set<string>();
  const addresses = new Map<string, string>();
  for (const p of peers) {
    if (names.has(p.name)) throw new PeersProblem(`a list naming each replica once (${p.name} is listed twice)`, entries.join(','));
    names.add(p.name);
    const address = `${p.host.toLowerCase()}:${p.port}`;
    const other = addresses.get(address);
    if (other !== undefined) throw new PeersProblem(`a distinct address for each replica (${other} and ${p.name} both use ${address})`, entries.join(','));
    addresses.set(address, p.name);
  }
  if (peers.length > 0 && !names.has(self)) {
    throw new PeersProblem(`a list that includes this replica's own name ${self} (its entry is the address its peers listener binds)`, entries.join(','));
  }
  return { self, peers };
}

/** The single replica a pgroute without a peer list is. */
export function singleReplica(name: string = defaultReplicaName()): Replicas {
  return { self: name, peers: [] };
}

/** This replica's own entry, when a peer list was given. */
export function selfPeer(r: Replicas): Peer | undefined {
  return r.peers.find((p) => p.name === r.self);
}

/** The other replicas. */
export function remotePeers(r: Replicas): Peer[] {
  return r.peers.filter((p) => p.name !== r.self);
}

/** What haproxy/partials/peers.hbs places: the local peer's bind address and the remote peers. */
export interface PeersContext {
  readonly section: string;
  /** The keepalive table's name inside the section. */
  readonly aliveTable: string;
  readonly self: string;
  /** `host:port` of this replica's entry, else `unix@<state-dir>/haproxy-peers.sock`. */
  readonly bind: string;
  readonly remotes: readonly { readonly name: string; readonly address: string }[];
  /** Mutual TLS on the listener and every peer connection (the local one at a reload too); false: clear. */
  readonly tls: false | { readonly cert: string; readonly ca: string };
}

export function peersContext(r: Replicas, localSocket: string, tls?: { readonly cert: string; readonly ca: string }): PeersContext {
  const own = selfPeer(r);
  return {
    section: PEERS_SECTION,
    aliveTable: ALIVE_TABLE_NAME,
    self: r.self,
    bind: own === undefined ? `unix@${localSocket}` : haproxyAddress(own.host, own.port),
    remotes: remotePeers(r).map((p) => ({ name: p.name, address: haproxyAddress(p.host, p.port) })),
    // Alone (a unix socket between the old and the new worker), there is nobody to authenticate.
    tls: own === undefined || tls === undefined ? false : tls,
  };
}
