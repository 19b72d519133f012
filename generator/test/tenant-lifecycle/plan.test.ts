// `pgroute tenant create`, pure part: the container, volume and network it asks Docker for.

import { describe, expect, it } from 'vitest';
import { containerClaims } from '../../src/sources/docker/claims.js';
import { accessFile, NO_ACCESS, type AccessFile, type AccessState } from '../../src/access.js';
import {
  checkTenantId,
  containerName,
  describeManaged,
  formatMemory,
  parseCpus,
  parseMemory,
  passwordPath,
  planTenant,
  volumeName,
} from '../../src/tenants-docker/plan.js';

const req = { id: 'acme', image: 'postgres:15', network: 'pgroute-tenants', nanoCpus: 1e9, memory: 512 * 1024 ** 2, port: 5432 };

describe('names and paths', () => {
  it('container, volume and password file follow the tenant id', () => {
    expect(containerName('acme')).toBe('pgroute-tenant-acme');
    expect(volumeName('acme')).toBe('pgroute-tenant-acme-data');
    expect(passwordPath('/var/lib/pgroute', 'acme')).toBe('/var/lib/pgroute/tenants/acme.password');
  });

  it('refuses an invalid tenant id with the rule', () => {
    expect(() => checkTenantId('Acme')).toThrow(/tenant id "Acme" is invalid/);
    expect(() => checkTenantId('../x')).toThrow(/invalid/);
    expect(checkTenantId('acme-2')).toBe('acme-2');
  });
});

describe('limits', () => {
  it('--cpus → NanoCpus', () => {
    expect(parseCpus('1')).toBe(1e9);
    expect(parseCpus('0.5')).toBe(5e8);
    expect(parseCpus('2.25')).toBe(2.25e9);
    for (const bad of ['0', '-1', 'x', '1e3', '0.001', '']) expect(() => parseCpus(bad), bad).toThrow(/--cpus/);
  });

  it('--memory → bytes (binary units, Docker minimum 6m)', () => {
    expect(parseMemory('512m')).toBe(512 * 1024 ** 2);
    expect(parseMemory('1g')).toBe(1024 ** 3);
    expect(parseMemory('1G')).toBe(1024 ** 3);
    expect(parseMemory('65536k')).toBe(64 * 1024 ** 2);
    for (const bad of ['5m', '1t', 'lots', '-1m', '']) expect(() => parseMemory(bad), bad).toThrow(/--memory/);
    expect(formatMemory(512 * 1024 ** 2)).toBe('512m');
    expect(formatMemory(1024 ** 3)).toBe('1g');
    expect(formatMemory(1536 * 1024 ** 2)).toBe('1536m');
  });
});

describe('planTenant', () => {
  const plan = planTenant(req);

  it('a labelled PostgreSQL container on the private network with limits and the data volume', () => {
    expect(plan.container).toEqual({
      name: 'pgroute-tenant-acme',
      Image: 'postgres:15',
      Labels: { 'pgroute.tenant': 'acme', 'pgroute.network': 'pgroute-tenants', 'pgroute.port': '5432', 'pgroute.managed': 'true' },
      Env: ['POSTGRES_PASSWORD_FILE=/run/pgroute/postgres-password', 'PGPORT=5432', 'CLUSTER_NAME=acme', 'PGDATA=/var/lib/postgresql/data'],
      StopSignal: 'SIGINT',
      ExposedPorts: { '5432/tcp': {} },
      HostConfig: {
        NetworkMode: 'pgroute-tenants',
        NanoCpus: 1e9,
        Memory: 536870912,
        MemorySwap: 536870912,
        Mounts: [{ Type: 'volume', Source: 'pgroute-tenant-acme-data', Target: '/var/lib/postgresql/data' }],
        RestartPolicy: { Name: 'unless-stopped' },
      },
      NetworkingConfig: { EndpointsConfig: { 'pgroute-tenants': { Aliases: ['acme'] } } },
    });
    expect(plan.volume).toEqual({ Name: 'pgroute-tenant-acme-data', Labels: { 'pgroute.tenant': 'acme', 'pgroute.managed': 'true' } });
    expect(plan.network).toEqual({ Name: 'pgroute-tenants', Driver: 'bridge', Labels: { 'pgroute.managed': 'true' } });
  });

  it('publishes no host port (the network is private: HAProxy reaches the container address)', () => {
    expect(JSON.stringify(plan)).not.toMatch(/PortBindings|PublishAllPorts/);
  });

  it('carries no password: the container reads it from a file uploaded before it starts', () => {
    expect(Object.keys(req)).not.toContain('password');
    expect(JSON.stringify(plan)).not.toMatch(/POSTGRES_PASSWORD=/);
    expect(plan.container.Env.filter((e) => e.startsWith('POSTGRES_'))).toEqual(['POSTGRES_PASSWORD_FILE=/run/pgroute/postgres-password']);
    // No host path is shared with the daemon (pgroute may run in a container): only the data volume.
    expect(plan.container.HostConfig.Mounts.map((m) => m.Type)).toEqual(['volume']);
    expect(JSON.stringify(plan)).not.toMatch(/"Binds"|"bind"/);
  });

  it('another port goes to PGPORT and pgroute.port', () => {
    const p = planTenant({ ...req, port: 6543 });
    expect(p.container.Env).toContain('PGPORT=6543');
    expect(p.container.Labels['pgroute.port']).toBe('6543');
    expect(p.container.ExposedPorts).toEqual({ '6543/tcp': {} });
  });

  it('the Docker source reads the labels as tenant acme on the tenant network', () => {
    const { claims, refused } = containerClaims(
      [{ Id: 'c1', Names: ['/pgroute-tenant-acme'], Labels: plan.container.Labels, Created: 1, State: 'running', NetworkSettings: { Networks: { bridge: { IPAddress: '172.17.0.2' }, 'pgroute-tenants': { IPAddress: '172.30.0.2' } } } }],
      {},
    );
    expect(refused).toEqual([]);
    expect(claims).toEqual([expect.objectContaining({ tenant: 'acme', target: 'primary', host: '172.30.0.2', port: 5432 })]);
  });

  it('refuses bad input before Docker sees it', () => {
    expect(() => planTenant({ ...req, id: 'ACME' })).toThrow(/invalid/);
    expect(() => planTenant({ ...req, network: 'a b' })).toThrow(/--network/);
    expect(() => planTenant({ ...req, image: 'x;rm -rf' })).toThrow(/--image/);
    expect(() => planTenant({ ...req, port: 0 })).toThrow(/--port/);
  });
});

describe('describeManaged (tenant list)', () => {
  const info = {
    Id: 'abc',
    Names: ['/pgroute-tenant-acme'],
    Image: 'postgres:15',
    State: 'running',
    Labels: { 'pgroute.tenant': 'acme', 'pgroute.network': 'pgroute-tenants', 'pgroute.port': '5432', 'pgroute.managed': 'true' },
    NetworkSettings: { Networks: { 'pgroute-tenants': { IPAddress: '172.30.0.2' } } },
  };

  const switches = (state: AccessState): AccessFile => accessFile({ acme: { state, version: 1 } });

  it('id, state, enabled per access.json, address, image, limits', () => {
    expect(describeManaged(info, switches('disabled'), { NanoCpus: 5e8, Memory: 1024 ** 3 })).toEqual({
      id: 'acme',
      container: 'pgroute-tenant-acme',
      state: 'running',
      enabled: false,
      access: 'disabled',
      address: '172.30.0.2:5432',
      network: 'pgroute-tenants',
      image: 'postgres:15',
      limits: { cpus: 0.5, memory: '1g' },
    });
    expect(describeManaged({ ...info, State: 'exited', NetworkSettings: { Networks: {} } }, NO_ACCESS)).toMatchObject({ enabled: true, access: 'enabled', address: '', limits: {} });
  });

  it('a paused tenant is shown paused, not enabled (and is not disabled)', () => {
    expect(describeManaged(info, switches('paused'))).toMatchObject({ enabled: true, access: 'paused' });
    expect(describeManaged(info, switches('enabled'))).toMatchObject({ enabled: true, access: 'enabled' });
  });

  it('ignores containers pgroute did not create', () => {
    expect(describeManaged({ ...info, Labels: { 'pgroute.tenant': 'acme' } }, NO_ACCESS)).toBeUndefined();
  });
});
