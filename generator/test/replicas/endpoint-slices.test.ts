import { describe, expect, it } from 'vitest';
import { peersOfSlices } from '../../src/replicas/endpoint-slices.js';

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
