// pgroute_build_info: one series, 1, labelled with what runs.

import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { buildInfo, pgrouteVersion } from '../src/build-info.js';
import { createAgentMetrics, setBuildInfo } from '../src/metrics.js';

const PACKAGE_VERSION = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;

describe('build info', () => {
  it('is the version of package.json', () => {
    expect(pgrouteVersion()).toBe(PACKAGE_VERSION);
  });

  it('pgroute_build_info is one series; setting the HAProxy version replaces it', async () => {
    const m = createAgentMetrics(false);
    const series = async (): Promise<string[]> => (await m.registry.metrics()).split('\n').filter((l) => l.startsWith('pgroute_build_info{'));
    expect(await series()).toEqual([`pgroute_build_info{version="${PACKAGE_VERSION}",haproxy_version="unknown",node_version="${process.version}"} 1`]);
    setBuildInfo(m.buildInfo, buildInfo('3.2.26-1'));
    expect(await series()).toEqual([`pgroute_build_info{version="${PACKAGE_VERSION}",haproxy_version="3.2.26-1",node_version="${process.version}"} 1`]);
  });
});
