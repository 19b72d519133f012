// What is running: pgroute's own version (package.json), for `pgroute --version` and the
// pgroute_build_info metric.

import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

export interface BuildInfo {
  readonly version: string;
  /** The HAProxy pgroute runs or checks with; "unknown" when it could not be asked. */
  readonly haproxyVersion: string;
  readonly nodeVersion: string;
}

let cached: string | undefined;

/**
 * pgroute's package version: package.json is found by walking up from this file, which sits at
 * agent/src in a checkout and at dist/agent/src once built (the image keeps package.json beside dist).
 */
export function pgrouteVersion(): string {
  if (cached !== undefined) return cached;
  let dir = import.meta.dirname;
  for (;;) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: unknown; version?: unknown };
      if (pkg.name === 'pgroute' && typeof pkg.version === 'string') return (cached = pkg.version);
    } catch {
      // no package.json here: look one level up
    }
    const up = dirname(dir);
    if (up === dir) return (cached = 'unknown');
    dir = up;
  }
}

/** The build info of this process; the HAProxy version comes from the caller, which knows the binary. */
export function buildInfo(haproxyVersion = 'unknown'): BuildInfo {
  return { version: pgrouteVersion(), haproxyVersion, nodeVersion: process.version };
}
