import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

// Own config for the harness self-test, so it is not part of the repo's
// `unit`/`e2e` projects. Run: npx vitest run --config test/support-selftest/vitest.config.ts
export default defineConfig({
  root: fileURLToPath(new URL('../..', import.meta.url)),
  test: {
    include: ['test/support-selftest/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    pool: 'forks',
  },
});
