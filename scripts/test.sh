#!/usr/bin/env bash
# Sets this machine up (packages, npm ci, build) and runs every test: the unit project (pure code)
# and the e2e project (real HAProxy, PostgreSQL, psql, node-postgres). Extra arguments go to vitest.
set -euo pipefail
cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.."
# The Docker end-to-end tests need dockerd: only the test path installs and starts it.
SETUP_DOCKER=1 scripts/setup.sh
npx tsc -p tsconfig.json --noEmit
exec npx vitest run "$@"
