#!/usr/bin/env bash
# Sets this machine up (packages, npm ci, build) and runs every test: the unit project (pure code),
# the e2e projects (real HAProxy, PostgreSQL, psql, node-postgres, Docker) and, on a full run, the
# self-test of the test harness (test/support-selftest, its own vitest config). Extra arguments go
# to vitest (and skip the harness self-test).
set -euo pipefail
cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.."
scripts/setup.sh
npx tsc -p tsconfig.json --noEmit
if [ "$#" -eq 0 ]; then
  npx vitest run --config test/support-selftest/vitest.config.ts
fi
exec npx vitest run "$@"
