#!/usr/bin/env bash
# pgroute benchmarks, all paths side by side in one run. See bench/README.md.
#
#   bench/run.sh                 full run (about 4-5 minutes)
#   bench/run.sh quick           shorter run (about 1.5 minutes), no profile
#   bench/run.sh [quick] --only a,c    a subset of the figures (a: router-only, b: pgbench, c: agent)
#   bench/run.sh --no-profile    skip the profiled agent pass of (c)
#
# Env: BENCH_SKIP_BUILD=1 uses dist/ as it is (no `npm run build`); BENCH_KEEP=1 keeps the scratch
# directory (logs, rendered configs, the agent's .cpuprofile) even after a successful run.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

RUN_DIR="$(mktemp -d /tmp/pgroute-bench.XXXXXX)"
chmod 755 "$RUN_DIR"
export BENCH_RUN_DIR="$RUN_DIR"
export BENCH_BIN_DIR="$RUN_DIR/bin"
mkdir -p "$BENCH_BIN_DIR"
: >"$RUN_DIR/pids"

RUNNER_PID=""
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  # The runner stops what it started when told to; give it the chance first.
  if [ -n "$RUNNER_PID" ] && kill -0 "$RUNNER_PID" 2>/dev/null; then
    kill -TERM "$RUNNER_PID" 2>/dev/null || true
    for _ in $(seq 1 150); do kill -0 "$RUNNER_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$RUNNER_PID" 2>/dev/null || true
  fi
  # Anything the runner registered and did not stop (it stops everything itself unless it was killed).
  while read -r pid name; do
    [ -n "${pid:-}" ] || continue
    if kill -0 -- "-$pid" 2>/dev/null; then
      echo "bench: stopping leftover $name (process group $pid)" >&2
      kill -TERM -- "-$pid" 2>/dev/null || true
      sleep 1
      kill -KILL -- "-$pid" 2>/dev/null || true
    fi
  done <"$RUN_DIR/pids"
  if [ -f "$RUN_DIR/pg/data/postmaster.pid" ]; then
    echo "bench: stopping leftover PostgreSQL" >&2
    runuser -u postgres -- /usr/lib/postgresql/15/bin/pg_ctl -D "$RUN_DIR/pg/data" -m immediate -w stop >/dev/null 2>&1 || true
  fi
  if [ "$rc" -eq 0 ] && [ "${BENCH_KEEP:-0}" != 1 ]; then
    rm -rf "$RUN_DIR"
  else
    echo "bench: scratch directory kept: $RUN_DIR" >&2
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "bench: building" >&2
if [ "${BENCH_SKIP_BUILD:-0}" != 1 ]; then
  if ! npm run --silent build >"$RUN_DIR/build.log" 2>&1; then
    if [ -f dist/cli/pgroute.js ]; then
      echo "bench: WARNING: npm run build failed (see below); benchmarking the existing dist/" >&2
      tail -n 20 "$RUN_DIR/build.log" >&2
    else
      cat "$RUN_DIR/build.log" >&2
      exit 1
    fi
  fi
fi
[ -f dist/cli/pgroute.js ] || { echo "bench: dist/cli/pgroute.js missing (npm run build)" >&2; exit 1; }
# Benchmark a snapshot of pgroute (build + templates): others may edit haproxy/ or rebuild dist/
# while this runs, and pgroute reads its templates each time it starts.
SNAP="$RUN_DIR/pgroute"
mkdir -p "$SNAP"
cp -r dist haproxy package.json "$SNAP/"
ln -s "$ROOT/node_modules" "$SNAP/node_modules"
export BENCH_PGROUTE_ROOT="$SNAP"
npx --no-install tsc -p bench/tsconfig.json
gcc -O2 -Wall -Wextra -o "$BENCH_BIN_DIR/fakepg" bench/c/fakepg.c
gcc -O2 -Wall -Wextra -o "$BENCH_BIN_DIR/connload" bench/c/connload.c

node dist-bench/src/main.js "$@" &
RUNNER_PID=$!
wait "$RUNNER_PID"
