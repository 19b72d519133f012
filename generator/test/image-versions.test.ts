// pgroute's image names and tags: every pgroute image the Kubernetes manifests run (and every tag
// kustomize sets) is package.json's version, the one `pgroute --version` prints and
// scripts/build-images.sh tags its builds with, under the repositories that script builds.

import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { describe, expect, it } from 'vitest';

const ROOT = resolve(import.meta.dirname, '..', '..');
const VERSION = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
/** The repositories scripts/build-images.sh builds (IMAGE_PREFIX defaults to pgroute). */
const REPOSITORIES = ['pgroute/pgroute', 'pgroute/haproxy'];

function yamlFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) return yamlFiles(p);
    return /\.ya?ml$/.test(name) ? [p] : [];
  });
}

/** Every `image:` value and every kustomize `images:` entry, with the file it is in. */
function imageRefs(): { file: string; name: string; tag: string | undefined }[] {
  const refs: { file: string; name: string; tag: string | undefined }[] = [];
  const visit = (file: string, node: unknown, key?: string): void => {
    if (Array.isArray(node)) {
      for (const item of node) visit(file, item, key);
      return;
    }
    if (node === null || typeof node !== 'object') {
      if (key === 'image' && typeof node === 'string') {
        const at = node.lastIndexOf(':');
        refs.push({ file, name: node.slice(0, at), tag: node.slice(at + 1) });
      }
      return;
    }
    const obj = node as Record<string, unknown>;
    if (key === 'images' && typeof obj.name === 'string') refs.push({ file, name: obj.name, tag: typeof obj.newTag === 'string' ? obj.newTag : undefined });
    for (const [k, v] of Object.entries(obj)) visit(file, v, k);
  };
  for (const file of yamlFiles(join(ROOT, 'kubernetes'))) {
    for (const doc of parseAllDocuments(readFileSync(file, 'utf8'))) visit(relative(ROOT, file), doc.toJS());
  }
  return refs;
}

describe('image names and versions', () => {
  const pgrouteRefs = imageRefs().filter((r) => r.name.startsWith('pgroute/'));

  it('the manifests run both images the build script makes, by those names', () => {
    expect(new Set(pgrouteRefs.map((r) => r.name))).toEqual(new Set(REPOSITORIES));
    expect(pgrouteRefs.filter((r) => r.file.endsWith('deployment.yaml')).map((r) => r.name).sort()).toEqual([...REPOSITORIES].sort());
  });

  it(`every pgroute image tag in kubernetes/ is package.json's version (${VERSION})`, () => {
    const wrong = pgrouteRefs.filter((r) => r.tag !== VERSION).map((r) => `${r.file}: ${r.name}:${r.tag ?? '(no tag)'}`);
    expect(wrong, `bump these to ${VERSION} with package.json's version`).toEqual([]);
  });

  it('scripts/build-images.sh tags both images <prefix>/<name>:<package.json version>, prefix pgroute', () => {
    const script = readFileSync(join(ROOT, 'scripts/build-images.sh'), 'utf8');
    expect(script).toContain(`version=$(node -p "require('./package.json').version")`);
    expect(script).toContain('prefix=${IMAGE_PREFIX:-pgroute}');
    expect(script).toMatch(/-t "\$prefix\/pgroute:\$version" \.( |$)/m);
    expect(script).toMatch(/-t "\$prefix\/haproxy:\$version" haproxy( |$)/m);
  });
});
