// The replica list: parsed from --name/--peer, refused naming the first fault, rendered as the
// peers section (a unix-socket local peer when alone, the self entry's address otherwise).

import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { defaultReplicaName, parsePeer, parseReplicas, peerEntries, peersContext, PeersProblem } from '../../src/replicas/peers.js';

const problem = (f: () => unknown): string => {
  try {
    f();
  } catch (err) {
    if (err instanceof PeersProblem) return err.message;
    throw err;
  }
  throw new Error('no PeersProblem');
};

describe('parsePeer', () => {
  it('reads name=host:port, IPv4, host names and bracketed IPv6', () => {
    expect(parsePeer('a=10.0.0.1:10000')).toEqual({ name: 'a', host: '10.0.0.1', port: 10000 });
    expect(parsePeer('pgroute-0=pgroute-0.pgroute.ns.svc:7000')).toEqual({ name: 'pgroute-0', host: 'pgroute-0.pgroute.ns.svc', port: 7000 });
    expect(parsePeer('b=[fd00::2]:7000')).toEqual({ name: 'b', host: 'fd00::2', port: 7000 });
  });

  it('refuses malformed entries with the rule and the entry', () => {
    for (const bad of ['a', 'a=', 'a=host', '=h:1', 'a=h:0', 'a=h:65536', 'a=h:x', 'a=fd00::2:7000', 'a=[10.0.0.1]:1', 'a b=h:1', '-a=h:1', 'a=h_x:1', 'a=h:1 # x', 'a=fe80::1%eth0:1', 'a=[fe80::1%eth0]:1']) {
      expect(() => parsePeer(bad), bad).toThrow(PeersProblem);
    }
    expect(problem(() => parsePeer('a=h:0'))).toBe('a peer port from 1 to 65535, got "a=h:0"');
  });

  it('never accepts an entry that could add a word to haproxy.cfg', () => {
    fc.assert(
      fc.property(fc.string(), (s) => {
        try {
          const p = parsePeer(s);
          return !/[\s#'"\\]/.test(p.name + p.host);
        } catch (err) {
          return err instanceof PeersProblem;
        }
      }),
      { numRuns: 2_000 },
    );
  });
});

describe('parseReplicas', () => {
  it('without a peer list: one replica named after the host', () => {
    expect(parseReplicas(undefined, [])).toEqual({ self: defaultReplicaName(), peers: [] });
    expect(parseReplicas('r1', [])).toEqual({ self: 'r1', peers: [] });
  });

  it('keeps every replica, this one included', () => {
    const r = parseReplicas('b', peerEntries(['a=127.0.0.1:7001,b=127.0.0.1:7002', 'c=127.0.0.1:7003']));
    expect(r.self).toBe('b');
    expect(r.peers.map((p) => p.name)).toEqual(['a', 'b', 'c']);
  });

  it('refuses a name listed twice, a shared address, and a list without this replica', () => {
    expect(problem(() => parseReplicas('a', ['a=127.0.0.1:7001', 'a=127.0.0.1:7002']))).toMatch(/^a list naming each replica once \(a is listed twice\)/);
    expect(problem(() => parseReplicas('a', ['a=127.0.0.1:7001', 'b=127.0.0.1:7001']))).toMatch(/^a distinct address for each replica \(a and b both use 127.0.0.1:7001\)/);
    expect(problem(() => parseReplicas('c', ['a=127.0.0.1:7001', 'b=127.0.0.1:7002']))).toMatch(/^a list that includes this replica's own name c/);
    expect(problem(() => parseReplicas('bad name', []))).toMatch(/^a replica name of letters/);
  });
});

describe('defaultReplicaName', () => {
  it('makes any host name a valid peer name', () => {
    expect(defaultReplicaName('pgroute-7d9f-abcde')).toBe('pgroute-7d9f-abcde');
    expect(defaultReplicaName('host name!')).toBe('host-name');
    expect(defaultReplicaName('---')).toBe('pgroute');
    fc.assert(fc.property(fc.string(), (h) => /^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,61}[A-Za-z0-9])?$/.test(defaultReplicaName(h))));
  });
});

describe('peersContext', () => {
  it('alone: the local peer listens on the state dir socket, no remote', () => {
    expect(peersContext({ self: 'a', peers: [] }, '/s/haproxy-peers.sock')).toEqual({ section: 'pgroute', aliveTable: 'alive', self: 'a', bind: 'unix@/s/haproxy-peers.sock', remotes: [], tls: false });
  });

  it('with peers: binds its own entry, connects to the others', () => {
    const r = parseReplicas('b', ['a=10.0.0.1:7000', 'b=[fd00::2]:7000', 'c=c.example:7000']);
    expect(peersContext(r, '/s/p.sock')).toEqual({
      section: 'pgroute',
      aliveTable: 'alive',
      self: 'b',
      bind: '[fd00::2]:7000',
      remotes: [
        { name: 'a', address: '10.0.0.1:7000' },
        { name: 'c', address: 'c.example:7000' },
      ],
      tls: false,
    });
  });

  it('with --peers-tls-*: TLS when it binds its own entry; alone (a unix socket between workers) never', () => {
    const tls = { cert: '/etc/p/peer.pem', ca: '/etc/p/ca.pem' };
    expect(peersContext(parseReplicas('b', ['a=10.0.0.1:7000', 'b=10.0.0.2:7000']), '/s/p.sock', tls).tls).toEqual(tls);
    expect(peersContext({ self: 'a', peers: [] }, '/s/p.sock', tls).tls).toBe(false);
  });
});
