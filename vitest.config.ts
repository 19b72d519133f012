import { defineConfig } from 'vitest/config';

// Three projects. `unit` is pure and fast. `e2e` starts real HAProxy, PostgreSQL and clients; each
// file owns a fixed port block (test/support/ports.ts), so its files run in parallel. `e2e-docker`
// uses the one Docker engine of the machine (some files restart it), so its files run one at a
// time, after the others (sequence.groupOrder). Both e2e projects run the built CLI: their global
// setup builds dist/ first (test/support/build-dist.ts), so they never test stale code.
const BUILD_DIST = ['test/support/build-dist.ts'];
const DOCKER_FILES = ['test/e2e/docker-*.test.ts', 'test/e2e/compose.test.ts', 'test/e2e/tenant-lifecycle.test.ts'];

export default defineConfig({
  test: {
    maxWorkers: 2,
    minWorkers: 1,
    projects: [
      {
        test: {
          name: 'unit',
          include: ['agent/test/**/*.test.ts', 'generator/test/**/*.test.ts', 'cli/test/**/*.test.ts'],
          // Property tests run thousands of cases; on two busy cores a few take several seconds.
          testTimeout: 30_000,
          sequence: { groupOrder: 0 },
        },
      },
      {
        test: {
          name: 'e2e',
          include: ['test/e2e/**/*.test.ts'],
          exclude: DOCKER_FILES,
          globalSetup: BUILD_DIST,
          testTimeout: 60_000,
          hookTimeout: 120_000,
          pool: 'forks',
          sequence: { groupOrder: 0 },
        },
      },
      {
        test: {
          name: 'e2e-docker',
          include: DOCKER_FILES,
          globalSetup: BUILD_DIST,
          testTimeout: 120_000,
          hookTimeout: 300_000,
          pool: 'forks',
          poolOptions: { forks: { singleFork: true } },
          sequence: { groupOrder: 1 },
        },
      },
    ],
  },
});
