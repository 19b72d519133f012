// Vitest globalSetup of the e2e projects: the e2e tests run the built CLI (dist/), so dist/ is
// built from the sources first, once per vitest run (also when a single e2e file is run), and a
// test can never exercise stale code. A full build, not an incremental one: incremental build info
// does not notice outputs written by another build (`npm run build`) after it, and could then keep
// them.

import { execFile } from 'node:child_process';
import { join, resolve } from 'node:path';

const REPO_ROOT = resolve(import.meta.dirname, '..', '..');
// Both e2e projects name this file; their global setups run in the one vitest process.
const BUILT = 'PGROUTE_E2E_DIST_BUILT';

export default async function buildDist(): Promise<void> {
  if (process.env[BUILT] === '1') return;
  const tsc = join(REPO_ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
  const args = [tsc, '-p', 'tsconfig.build.json'];
  await new Promise<void>((done, fail) => {
    execFile(process.execPath, args, { cwd: REPO_ROOT, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err === null) return done();
      fail(new Error(`building dist/ for the e2e tests failed (tsc -p tsconfig.build.json); fix the errors below and run again:\n${stdout}${stderr}`));
    });
  });
  process.env[BUILT] = '1';
}
