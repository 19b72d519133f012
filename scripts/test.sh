#!/usr/bin/env bash
# Sets this machine up (packages, npm ci, build) and runs every test: the unit project (pure code)
# and the e2e project (real HAProxy, PostgreSQL, psql, node-postgres). Extra arguments go to vitest.
set -euo pipefail
cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.."
scripts/setup.sh
npx tsc -p tsconfig.json --noEmit
exec npx vitest run "$@"
