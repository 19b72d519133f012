// Allowed networks and admission limits from Docker labels and Kubernetes labels + annotation:
// read from the primary's container or Service, validated like the tenants file's fields.

import { describe, expect, it } from 'vitest';
import { containerClaims, type ContainerSummary } from '../../src/sources/docker/claims.js';
import { viewOfServices, type ServiceLike } from '../../src/sources/kubernetes/service-claims.js';
import { mergeClaims } from '../../src/sources/labels.js';

function container(name: string, labels: Record<string, string>): ContainerSummary {
  return { Id: `${name}-0000000000000`, Names: [`/${name}`], Created: 1, Labels: labels, State: 'running', NetworkSettings: { Networks: { bridge: { IPAddress: '172.17.0.2' } } } };
}

function service(name: string, labels: Record<string, string>, annotations: Record<string, string> = {}): ServiceLike {
  return { metadata: { name, namespace: 'team-a', labels, annotations, creationTimestamp: '2026-01-01T00:00:00Z' }, spec: { clusterIP: '10.96.0.9', ports: [{ name: 'postgres', port: 5432 }] } };
}

const OPTIONS = { address: 'dns' as const, clusterDomain: 'cluster.local' };

describe('Docker labels', () => {
  it('pgroute.allow (comma-separated) and the limit labels reach the tenant', () => {
    const c = container('acme-db', { 'pgroute.tenant': 'acme', 'pgroute.allow': '10.0.0.0/8, 2001:db8::/32', 'pgroute.maxClientConnections': '20', 'pgroute.maxConnectionRate': '0' });
    const view = mergeClaims(containerClaims([c]).claims);
    expect(view.snapshot.tenants[0]).toMatchObject({ id: 'acme', allow: ['10.0.0.0/8', '2001:db8::/32'], limits: { maxClientConnections: 20, maxConnectionRate: 0 } });
  });

  it.each([
    [{ 'pgroute.allow': '10.0.0.0/8,not-a-net' }, 'allow[1]: "not-a-net" is not a network'],
    [{ 'pgroute.allow': '' }, 'allow[0]: a network must be text'],
    [{ 'pgroute.maxClientConnections': '-5' }, 'maxClientConnections must be a whole number from 0 to 1000000, got "-5"'],
    [{ 'pgroute.maxClientConnectionRate': 'fast' }, 'maxClientConnectionRate must be a whole number'],
  ])('a bad value %j is refused with its reason', (labels, reason) => {
    const view = mergeClaims(containerClaims([container('acme-db', { 'pgroute.tenant': 'acme', ...labels })]).claims);
    expect(view.snapshot.tenants).toEqual([]);
    expect(view.snapshot.refused[0]?.reason).toContain(reason);
  });
});

describe('Kubernetes', () => {
  it('the annotation pgroute.io/allow and the limit labels reach the tenant', () => {
    const view = viewOfServices([service('acme', { 'pgroute.tenant': 'acme', 'pgroute.maxConnectionRate': '50' }, { 'pgroute.io/allow': '192.0.2.0/24' })], OPTIONS);
    expect(view.snapshot.tenants[0]).toMatchObject({ id: 'acme', allow: ['192.0.2.0/24'], limits: { maxConnectionRate: 50 } });
  });

  it('a malformed network in the annotation is refused with its reason', () => {
    const view = viewOfServices([service('acme', { 'pgroute.tenant': 'acme' }, { 'pgroute.io/allow': '192.0.2.1/24' })], OPTIONS);
    expect(view.snapshot.tenants).toEqual([]);
    expect(view.snapshot.refused[0]?.reason).toContain('did you mean 192.0.2.0/24?');
  });
});
