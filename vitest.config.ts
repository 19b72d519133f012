import { defineConfig } from 'vitest/config';

// Two projects: `unit` is pure and fast; `e2e` starts real HAProxy, PostgreSQL and clients.
// Each e2e file owns a fixed port block (see test/support/ports.ts) so files run in parallel.
export default defineConfig({
  test: {
    maxWorkers: 2,
    minWorkers: 1,
    projects: [
      {
        test: {
          name: 'unit',
          include: ['agent/test/**/*.test.ts', 'generator/test/**/*.test.ts', 'cli/test/**/*.test.ts'],
        },
      },
      {
        test: {
          name: 'e2e',
          include: ['test/e2e/**/*.test.ts'],
          testTimeout: 60_000,
          hookTimeout: 120_000,
          pool: 'forks',
        },
      },
    ],
  },
});
