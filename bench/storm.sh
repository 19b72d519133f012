#!/usr/bin/env bash
# Storm isolation (bench/src/storm-main.ts): the calm tenant's connect latency idle vs during another
# tenant's storm, per storm kind, placement and pgroute deployment, side by side in one run.
# Arguments: [rounds, default 4] [probes per window, default 25]. STORM_DEPLOYMENTS overrides the
# deployments compared (name:--flag=value,...), STORM_KINDS the storms (refused,admitted),
# STORM_PLACES where they run: same (these cores, normal priority) and hosts (emulated hosts: hard
# cgroup CPU quotas per tenant server and client, the router in the root group; default), nice,
# cgroup (cpu.shares 2; both starve the storm on a loaded machine), pooler-root (hosts, and the
# admitted storm goes through the stormy tenant's own PgBouncer: no fork per connection) and pooler
# (the same with the router on a host of its own that gets its CPU first). Writes
# bench/results/2026-12-06-session8-pooler-storm.md (STORM_RESULT overrides the name).
# Session 7's run: STORM_RESULT=2026-12-06-session7-storm.md STORM_DEPLOYMENTS=delay-1s:--refusal-delay=1s bench/storm.sh 6 25
# Session 8's: STORM_KINDS=admitted STORM_PLACES=hosts,pooler-root,pooler STORM_DEPLOYMENTS=delay-1s:--refusal-delay=1s bench/storm.sh 6 25
# (pooler places need pgbouncer: scripts/setup.sh).
# Needs root (PostgreSQL runs as postgres; hosts and cgroup write /sys/fs/cgroup) and ports
# 22800-22899. BENCH_KEEP=1 keeps the scratch directory (logs, HAProxy's traffic log).
set -euo pipefail
cd "$(dirname "$0")/.."
[[ ${BENCH_SKIP_BUILD:-0} == 1 ]] || npm run build >/dev/null
npx tsc -p bench/tsconfig.json
STORM_PLACES=${STORM_PLACES:-same,hosts} exec node dist-bench/bench/src/storm-main.js "$@"
