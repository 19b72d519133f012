import { describe, expect, it } from 'vitest';
import { containerAddress, containerClaims, containerWhere, type ContainerSummary } from '../../src/sources/docker/claims.js';
import { EventLineParser, isRelevantEvent } from '../../src/sources/docker/events.js';
import { mergeClaims } from '../../src/sources/labels.js';

// Shaped like `GET /v1.41/containers/json` entries from Docker 20.10 (trimmed to what matters).
function container(name: string, id: string, created: number, labels: Record<string, string>, networks: Record<string, string> = { bridge: '172.17.0.2' }, state = 'running'): ContainerSummary {
  return {
    Id: id.padEnd(64, '0'),
    Names: [`/${name}`],
    Created: created,
    Labels: labels,
    State: state,
    NetworkSettings: {
      Networks: Object.fromEntries(Object.entries(networks).map(([net, ip]) => [net, { IPAddress: ip, NetworkID: `${net}-id`, Gateway: '', MacAddress: '' }])),
    },
  };
}

const acme = container('acme-db', 'a1a1a1a1a1a1', 1_700_000_000, { 'pgroute.tenant': 'acme', 'com.docker.compose.project': 'x' });

describe('containerClaims', () => {
  it('turns a labelled container into a claim: IP, default port, created ms, where', () => {
    const { claims, refused } = containerClaims([acme]);
    expect(refused).toEqual([]);
    expect(claims).toEqual([
      {
        tenant: 'acme',
        target: 'primary',
        host: '172.17.0.2',
        port: 5432,
        enabled: undefined,
        where: 'docker container acme-db (a1a1a1a1a1a1)',
        owner: '',
        createdAt: 1_700_000_000_000,
      },
    ]);
  });

  it('ignores unlabelled and not-running containers', () => {
    const plain = container('web', 'b2b2', 1, { 'com.example': 'x' });
    const exited = container('old', 'c3c3', 1, { 'pgroute.tenant': 'old' }, { bridge: '' }, 'exited');
    expect(containerClaims([plain, exited])).toEqual({ claims: [], refused: [] });
  });

  it('reads port, target, enabled and maxconn labels; passes bad values on for validation', () => {
    const pool = container('acme-pool', 'd4d4', 2, { 'pgroute.tenant': 'acme', 'pgroute.target': 'pool', 'pgroute.port': '6432', 'pgroute.maxconn': '50', 'pgroute.enabled': 'FALSE' });
    const bad = container('bad-port', 'e5e5', 3, { 'pgroute.tenant': 'badport', 'pgroute.port': 'http' });
    const { claims } = containerClaims([pool, bad]);
    expect(claims.map((c) => [c.target, c.port, c.enabled, c.maxconn])).toEqual([
      ['pool', 6432, false, 50],
      ['primary', 'http', undefined, undefined],
    ]);
    const snap = mergeClaims(claims).snapshot;
    expect(snap.refused).toEqual([
      { where: 'docker container acme-pool (d4d400000000)', id: 'acme', reason: 'tenant acme has no primary target (only pool)' },
      { where: 'docker container bad-port (e5e500000000)', id: 'badport', reason: 'port must be an integer from 1 to 65535, got "http"' },
    ]);
  });

  it('accepts xdatabase-proxy labels (pooled -> pool, destination port)', () => {
    const x = container('globex', 'f6f6', 5, {
      'xdatabase-proxy-enabled': 'true',
      'xdatabase-proxy-deployment-id': 'globex',
      'xdatabase-proxy-database-type': 'postgresql',
      'xdatabase-proxy-pooled': 'true',
      'xdatabase-proxy-destination-port': '6432',
    });
    expect(containerClaims([x]).claims).toMatchObject([{ tenant: 'globex', target: 'pool', port: 6432 }]);
  });

  it('refuses what the labels refuse, with the container named', () => {
    const mysql = container('shop', '0707', 5, { 'xdatabase-proxy-enabled': 'true', 'xdatabase-proxy-deployment-id': 'shop', 'xdatabase-proxy-database-type': 'mysql' });
    expect(containerClaims([mysql])).toEqual({
      claims: [],
      refused: [{ where: 'docker container shop (070700000000)', reason: expect.stringContaining('PostgreSQL only') }],
    });
  });

  it('refuses a labelled container without an address (host network mode)', () => {
    const host = container('hosty', '0808', 5, { 'pgroute.tenant': 'hosty' }, { host: '' });
    expect(containerClaims([host]).refused).toEqual([
      { where: 'docker container hosty (080800000000)', id: 'hosty', reason: expect.stringMatching(/no IP address on any Docker network \(networks: host\)/) },
    ]);
  });

  it('merges a pool target and refuses a duplicate claim (the younger one)', () => {
    const young = container('acme-db-2', '0909', 1_800_000_000, { 'pgroute.tenant': 'acme' }, { bridge: '172.17.0.9' });
    const pool = container('acme-pool', '0a0a', 1_750_000_000, { 'pgroute.tenant': 'acme', 'pgroute.target': 'pool', 'pgroute.port': '6432' }, { bridge: '172.17.0.3' });
    const { claims, refused } = containerClaims([young, pool, acme]);
    const view = mergeClaims(claims, refused);
    expect(view.snapshot.tenants).toEqual([
      { id: 'acme', enabled: true, targets: { primary: { host: '172.17.0.2', port: 5432 }, pool: { host: '172.17.0.3', port: 6432 } } },
    ]);
    expect(view.where).toEqual({ acme: 'docker container acme-db (a1a1a1a1a1a1)' });
    expect(view.snapshot.refused).toEqual([{ where: 'docker container acme-db-2 (090900000000)', id: 'acme', reason: expect.stringContaining('already served by docker container acme-db') }]);
  });
});

describe('containerAddress', () => {
  const multi = container('m', '1111', 1, { 'pgroute.tenant': 'm' }, { backend: '10.1.0.5', bridge: '172.17.0.4', empty: '' });

  it('uses the first network with an IP by default', () => {
    expect(containerAddress(multi)).toEqual({ host: '10.1.0.5' });
    expect(containerAddress(container('m', '1', 1, {}, { a: '', b: '10.2.0.2' }))).toEqual({ host: '10.2.0.2' });
  });

  it('uses the network named by the pgroute.network label', () => {
    expect(containerAddress({ ...multi, Labels: { 'pgroute.network': 'bridge' } })).toEqual({ host: '172.17.0.4' });
    expect(containerAddress({ ...multi, Labels: { 'pgroute.network': 'nope' } })).toEqual({ problem: expect.stringMatching(/label pgroute.network names network "nope", but the container is not attached to it \(networks: backend, bridge, empty\)/) });
  });

  it('the network option wins over the label', () => {
    expect(containerAddress({ ...multi, Labels: { 'pgroute.network': 'bridge' } }, { network: 'backend' })).toEqual({ host: '10.1.0.5' });
    expect(containerAddress(multi, { network: 'empty' })).toEqual({ problem: expect.stringMatching(/Docker network "empty", but the container has no IP address on it/) });
  });

  it('names containers without a name by their id', () => {
    expect(containerWhere({ Id: 'abcdef0123456789', Created: 0, Names: [] })).toBe('docker container abcdef012345 (abcdef012345)');
  });
});

describe('docker events', () => {
  it('splits JSON lines across chunks and skips garbage', () => {
    const p = new EventLineParser();
    expect(p.push('{"Type":"container","Action":"st')).toEqual([]);
    expect(p.push('art"}\nnot json\n{"Type":"network","Action":"connect"}\n{"Ty')).toEqual([
      { Type: 'container', Action: 'start' },
      { Type: 'network', Action: 'connect' },
    ]);
    expect(p.push('pe":"container","Action":"die"}\n')).toEqual([{ Type: 'container', Action: 'die' }]);
  });

  it('re-lists on lifecycle, rename, health and network connect events; not on exec or create', () => {
    const relevant = (Type: string, Action: string): boolean => isRelevantEvent({ Type, Action });
    for (const a of ['start', 'die', 'stop', 'kill', 'destroy', 'rename', 'pause', 'unpause', 'update', 'health_status: healthy']) expect(relevant('container', a)).toBe(true);
    for (const a of ['create', 'exec_create: pg_isready', 'exec_start: pg_isready', 'exec_die', 'attach', 'resize', 'top']) expect(relevant('container', a)).toBe(false);
    expect(relevant('network', 'connect')).toBe(true);
    expect(relevant('network', 'disconnect')).toBe(true);
    expect(relevant('network', 'create')).toBe(false);
    expect(relevant('image', 'pull')).toBe(false);
  });
});
