#!/usr/bin/env bash
# Pause/resume latency of a held connection (bench/src/pause-main.ts): builds pgroute and the
# benchmark, then runs it. Arguments: [rounds, default 5] [held connections per round, default 20].
# Writes bench/results/2026-12-06-session5-pause.md. Needs root (PostgreSQL runs as postgres) and
# ports 22700-22799.
set -euo pipefail
cd "$(dirname "$0")/.."
[[ ${BENCH_SKIP_BUILD:-0} == 1 ]] || npm run build >/dev/null
npx tsc -p bench/tsconfig.json
exec node dist-bench/bench/src/pause-main.js "$@"
