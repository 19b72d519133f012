// scripts/build-images.sh against the real dockerd: it builds both images (on the local stand-in
// bases, --local-bases, as no registry is reachable here; the layers the compose test built are
// reused from the build cache), tagged with package.json's version; `pgroute --version` in
// pgroute's image prints that version and the HAProxy image's haproxy runs. Built under a per-run
// IMAGE_PREFIX so the developer's own pgroute/* tags are left alone; the tags are removed after.

import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureDocker, testPrefix } from '../support/docker.js';
import { registerCleanup } from '../support/process.js';

const ROOT = resolve(import.meta.dirname, '..', '..');
const VERSION = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
const PREFIX = testPrefix('images').replace(/-$/, '');
const IMAGES = [`${PREFIX}/pgroute:${VERSION}`, `${PREFIX}/haproxy:${VERSION}`];
const BUILD_MS = 15 * 60_000;

function docker(args: readonly string[], timeoutMs = 60_000): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync('docker', args, { encoding: 'utf8', timeout: timeoutMs });
  return { code: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
}

const removeImages = (): void => void docker(['rmi', ...IMAGES]);

describe('scripts/build-images.sh (real dockerd)', () => {
  beforeAll(async () => {
    await ensureDocker();
    registerCleanup({ name: `images ${PREFIX}/*`, stop: async () => removeImages(), stopSync: removeImages });
    const r = spawnSync(join(ROOT, 'scripts/build-images.sh'), ['--local-bases'], {
      cwd: '/tmp', // the script finds the checkout itself
      env: { ...process.env, IMAGE_PREFIX: PREFIX },
      encoding: 'utf8',
      timeout: BUILD_MS,
      maxBuffer: 64 * 1024 * 1024,
    });
    if (r.status !== 0) throw new Error(`scripts/build-images.sh failed (${r.status ?? r.signal}):\n${(r.stdout + r.stderr).split('\n').slice(-60).join('\n')}`);
    expect(r.stdout).toContain(`built ${IMAGES[0]} and ${IMAGES[1]}`);
  }, BUILD_MS + 60_000);

  afterAll(removeImages);

  it("pgroute's image: `pgroute --version` prints package.json's version and the HAProxy it carries", () => {
    const r = docker(['run', '--rm', IMAGES[0]!, '--version']);
    expect(r.code, r.stderr).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines[0]).toBe(`pgroute ${VERSION}`);
    expect(lines[1]).toMatch(/^HAProxy \d+\.\d+\.\S+ \(/);
  });

  it("the HAProxy image: haproxy -v runs", () => {
    const r = docker(['run', '--rm', '--entrypoint', 'haproxy', IMAGES[1]!, '-v']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^HAProxy version \d+\.\d+/);
  });

  it('both images carry the version label', () => {
    for (const image of IMAGES) {
      const r = docker(['inspect', '-f', '{{index .Config.Labels "org.opencontainers.image.version"}}', image]);
      expect(r.stdout.trim(), image).toBe(VERSION);
    }
  });
});
