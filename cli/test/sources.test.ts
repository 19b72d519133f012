// --source: one or several sources, repeatable or comma-separated (PGROUTE_SOURCE=file,docker).

import { describe, expect, it } from 'vitest';
import { ConfigError, describePorts } from '../../generator/src/index.js';
import { checkSourceFlags, sourceNames, type SourceFlags } from '../sources.js';

describe('--source', () => {
  it('takes one, several, repeated or comma-separated', () => {
    expect(sourceNames(['file'])).toEqual(['file']);
    expect(sourceNames('file,kubernetes')).toEqual(['file', 'kubernetes']);
    expect(sourceNames(['docker', 'file, kubernetes'])).toEqual(['docker', 'file', 'kubernetes']);
  });

  it('refuses an unknown source, one named twice, or none, naming the flag', () => {
    expect(() => sourceNames(['file', 'consul'])).toThrow(new ConfigError('--source (PGROUTE_SOURCE): unknown source "consul" (known: file, docker, kubernetes)'));
    expect(() => sourceNames('file,file')).toThrow('--source (PGROUTE_SOURCE): file is named twice');
    expect(() => sourceNames(' , ')).toThrow('--source (PGROUTE_SOURCE): name at least one of file, docker, kubernetes');
  });
});

describe('the source flags, checked whichever sources are named', () => {
  const base: SourceFlags = { source: ['file'], tenants: 'tenants.yaml', stateDir: '.pgroute', kubeAddress: 'dns', kubeOwnership: 'first-claim', kubeRequestTimeout: '30s' };

  it('reads what each source is built from once', () => {
    const c = checkSourceFlags({ ...base, source: 'file,kubernetes', namespace: 'a, b', kubeAllowedPorts: ['5432', '7000-7001'], dockerConstraint: 'network=pg' });
    expect(c.names).toEqual(['file', 'kubernetes']);
    expect(c.namespaces).toEqual(['a', 'b']);
    expect(describePorts(c.policy.ports)).toBe('5432,7000-7001');
    expect(c.admission.constraints).toEqual([{ kind: 'network', name: 'pg' }]);
    expect(c.listDeadlineMs).toBe(30_000);
  });

  it('a mistyped value of a source not named is refused, naming the flag and its variable (it was accepted until the source was turned on)', () => {
    expect(() => checkSourceFlags({ ...base, kubeAllowedPorts: 'banana' })).toThrow(
      new ConfigError('--kube-allowed-ports (PGROUTE_KUBE_ALLOWED_PORTS): "banana" is not a port (1 to 65535) or a range of ports (low-high, such as 5432-5439)'),
    );
    expect(() => checkSourceFlags({ ...base, dockerConstraint: ['junk'] })).toThrow(
      new ConfigError('--docker-constraint (PGROUTE_DOCKER_CONSTRAINTS) "junk": expected compose-project=NAME, network=NAME or label=KEY=VALUE'),
    );
    expect(() => checkSourceFlags({ ...base, kubeRequestTimeout: 'soon' })).toThrow(/^--kube-request-timeout \(PGROUTE_KUBE_REQUEST_TIMEOUT\) must be a duration/);
  });

  it('--tenants with no file source is refused: no source would read it', () => {
    expect(() => checkSourceFlags({ ...base, source: 'docker' })).toThrow(
      new ConfigError('--tenants is read by --source file only, and --source (PGROUTE_SOURCE) is docker: add file to --source, or drop --tenants'),
    );
    expect(checkSourceFlags({ ...base, source: 'docker,file' }).names).toEqual(['docker', 'file']);
  });

  it('the file source without --tenants is refused before anything is written (it was found once the state dir and certificate were made)', () => {
    const { tenants: _, ...none } = base;
    expect(() => checkSourceFlags(none)).toThrow(new ConfigError('--source file needs --tenants <file>'));
  });
});
