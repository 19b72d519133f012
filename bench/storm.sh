#!/usr/bin/env bash
# Storm isolation (bench/src/storm-main.ts): the calm tenant's connect latency idle vs during another
# tenant's storm, per storm kind, placement and pgroute deployment, side by side in one run.
# Arguments: [rounds, default 4] [probes per window, default 25]. STORM_DEPLOYMENTS overrides the
# deployments compared (name:--flag=value,...). Writes bench/results/2026-12-06-session6-storm.md.
# Needs root (PostgreSQL runs as postgres; the cgroup variant writes /sys/fs/cgroup/cpu) and ports
# 22800-22899. BENCH_KEEP=1 keeps the scratch directory (logs, HAProxy's traffic log).
set -euo pipefail
cd "$(dirname "$0")/.."
[[ ${BENCH_SKIP_BUILD:-0} == 1 ]] || npm run build >/dev/null
npx tsc -p bench/tsconfig.json
exec node dist-bench/bench/src/storm-main.js "$@"
