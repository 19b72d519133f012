import { describe, expect, it } from 'vitest';
import { peersOfSlices, shortenedPods } from '../../src/replicas/endpoint-slices.js';
import { parseReplicas, shortPeerName } from '../../src/replicas/peers.js';

const pod = (name: string, ip: string, ready = true) => ({ addresses: [ip], conditions: { ready }, targetRef: { kind: 'Pod', name } });

describe('peersOfSlices', () => {
  it('one peer per pod across slices, ready or not, sorted by name, on the peers port', () => {
    const peers = peersOfSlices(
      [
        { addressType: 'IPv4', endpoints: [pod('pgroute-b', '10.0.0.2'), pod('pgroute-a', '10.0.0.1', false)] },
        { addressType: 'IPv4', endpoints: [pod('pgroute-c', '10.0.0.3'), pod('pgroute-a', '10.0.0.1')] },
      ],
      10000,
    );
    expect(peers).toEqual([
      { name: 'pgroute-a', host: '10.0.0.1', port: 10000 },
      { name: 'pgroute-b', host: '10.0.0.2', port: 10000 },
      { name: 'pgroute-c', host: '10.0.0.3', port: 10000 },
    ]);
  });

  it('leaves out what names no pod: FQDN slices, endpoints without a Pod reference or an address, odd names', () => {
    expect(
      peersOfSlices(
        [
          { addressType: 'FQDN', endpoints: [pod('pgroute-x', 'db.example.com')] },
          { addressType: 'IPv4', endpoints: [{ addresses: ['10.0.0.9'] }, { addresses: [], targetRef: { kind: 'Pod', name: 'pgroute-y' } }, { addresses: ['10.0.0.8'], targetRef: { kind: 'Node', name: 'n1' } }, pod('Bad Name', '10.0.0.7')] },
          { addressType: 'IPv6', endpoints: [pod('pgroute-z', 'fd00::1')] },
        ],
        10000,
      ),
    ).toEqual([{ name: 'pgroute-z', host: 'fd00::1', port: 10000 }]);
    expect(peersOfSlices([], 10000)).toEqual([]);
  });
});

describe('pod names longer than a HAProxy peer name (63 characters)', () => {
  const long = `${'statefulset-with-a-very-long-name-'.repeat(2)}0`; // 69 characters
  const longer = `${'statefulset-with-a-very-long-name-'.repeat(2)}1`;

  it('get a stable short name, the same that the pod derives from its own --name', () => {
    const peers = peersOfSlices([{ addressType: 'IPv4', endpoints: [pod(long, '10.0.0.1'), pod(longer, '10.0.0.2'), pod('short', '10.0.0.3')] }], 6712);
    const names = peers.map((p) => p.name);
    expect(names).toContain('short');
    for (const n of names) expect(n.length).toBeLessThanOrEqual(63);
    expect(new Set(names).size).toBe(3);
    expect(names).toContain(shortPeerName(long));
    expect(shortPeerName(long)).toMatch(/^statefulset-with-a-very-long-name-statefulset-with-[0-9a-f]{12}$/);
    // The pod's own replica name, from --name (PGROUTE_NAME = metadata.name): the same.
    expect(parseReplicas(long, peers.map((p) => `${p.name}=${p.host}:${p.port}`)).self).toBe(shortPeerName(long));
    expect(shortenedPods([{ addressType: 'IPv4', endpoints: [pod(long, '10.0.0.1'), pod('short', '10.0.0.3')] }])).toEqual([{ pod: long, peer: shortPeerName(long) }]);
  });

  it('a name within the limit, or one HAProxy would refuse anyway, is left as it is', () => {
    expect(shortPeerName('pgroute-7d9f8c6b5-x2x9k')).toBe('pgroute-7d9f8c6b5-x2x9k');
    expect(shortPeerName('a'.repeat(63))).toBe('a'.repeat(63));
    expect(shortPeerName(`${'a'.repeat(70)} b`)).toBe(`${'a'.repeat(70)} b`);
  });
});
