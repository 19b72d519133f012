#!/usr/bin/env bash
# pgroute benchmarks, all paths side by side in one run. See bench/README.md.
#
#   bench/run.sh                 full run (about 4-5 minutes)
#   bench/run.sh quick           shorter run (about 1.5 minutes), no profile
#   bench/run.sh [quick] --only a,c    a subset of the figures (a: router-only, b: pgbench, c: agent)
#   bench/run.sh --no-profile    skip the profiled agent pass of (c)
#   bench/run.sh generator [quick] [--only l,r,s] [--sources file,kubernetes,docker] [--no-profile]
#                                the generator benchmarks (event-to-routable, reloads, scale; about 3-4 minutes)
#   bench/run.sh tls [quick]     TLS: PostgreSQL, a static HAProxy and pgroute terminating TLS side by side
#                                (pgbench with PGSSLMODE=require, handshakes/s; about 3 minutes, quick about 1)
#
# Env: BENCH_SKIP_BUILD=1 uses dist/ as it is (no `npm run build`); BENCH_KEEP=1 keeps the scratch
# directory (logs, rendered configs, the agent's .cpuprofile) even after a successful run;
# BENCH_HAPROXY_TEMPLATES=<dir> runs pgroute with that copy of haproxy/ (HAProxy-side experiments);
# BENCH_REF=<git ref> (e.g. HEAD) benchmarks that commit of pgroute, built in the scratch directory,
# instead of the working tree's dist/ (useful while others edit the tree).
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
  # Docker objects of the generator benchmark (line 1: container name prefix, line 2: image).
  if [ -f "$RUN_DIR/docker-cleanup" ] && command -v docker >/dev/null 2>&1; then
    local prefix image ids
    { read -r prefix; read -r image; } <"$RUN_DIR/docker-cleanup" || true
    ids="$(docker ps -aq --filter "name=^/${prefix}" 2>/dev/null || true)"
    [ -z "$ids" ] || docker rm -f $ids >/dev/null 2>&1 || true
    [ -z "${image:-}" ] || docker rmi -f "$image" >/dev/null 2>&1 || true
  fi
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

SNAP="$RUN_DIR/pgroute"
echo "bench: building" >&2
if [ -n "${BENCH_REF:-}" ]; then
  # A committed pgroute (e.g. BENCH_REF=HEAD), built apart from the working tree, which others may
  # be editing half-way; bench/ itself is still compiled from the working tree.
  BENCH_REF_SHA="$(git rev-parse --short "$BENCH_REF^{commit}")"
  export BENCH_REF_SHA
  echo "bench: benchmarking pgroute at $BENCH_REF ($BENCH_REF_SHA), not the working tree" >&2
  mkdir -p "$SNAP"
  git archive "$BENCH_REF_SHA" agent/src generator/src cli haproxy package.json tsconfig.json tsconfig.build.json | tar -x -C "$SNAP"
  ln -s "$ROOT/node_modules" "$SNAP/node_modules"
  (cd "$SNAP" && "$ROOT/node_modules/.bin/tsc" -p tsconfig.build.json) >"$RUN_DIR/build.log" 2>&1 || { cat "$RUN_DIR/build.log" >&2; exit 1; }
elif [ "${BENCH_SKIP_BUILD:-0}" != 1 ]; then
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
if [ -z "${BENCH_REF:-}" ]; then
  [ -f dist/cli/pgroute.js ] || { echo "bench: dist/cli/pgroute.js missing (npm run build)" >&2; exit 1; }
  # Benchmark a snapshot of pgroute (build + templates): others may edit haproxy/ or rebuild dist/
  # while this runs, and pgroute reads its templates each time it starts.
  mkdir -p "$SNAP"
  cp -r dist haproxy package.json "$SNAP/"
  ln -s "$ROOT/node_modules" "$SNAP/node_modules"
fi
# Experiments only: BENCH_HAPROXY_TEMPLATES=<dir> benchmarks pgroute with that copy of haproxy/
# (e.g. a variation of spoe.conf.hbs), without touching the real templates.
if [ -n "${BENCH_HAPROXY_TEMPLATES:-}" ]; then
  echo "bench: using HAProxy templates from $BENCH_HAPROXY_TEMPLATES (experiment)" >&2
  rm -rf "$SNAP/haproxy"
  cp -r "$BENCH_HAPROXY_TEMPLATES" "$SNAP/haproxy"
fi
export BENCH_PGROUTE_ROOT="$SNAP"
npx --no-install tsc -p bench/tsconfig.json
gcc -O2 -Wall -Wextra -o "$BENCH_BIN_DIR/fakepg" bench/c/fakepg.c
gcc -O2 -Wall -Wextra -o "$BENCH_BIN_DIR/connload" bench/c/connload.c

RUNNER=dist-bench/bench/src/main.js
if [ "${1:-}" = tls ]; then
  shift
  RUNNER=dist-bench/bench/src/tls-main.js
  gcc -O2 -Wall -Wextra -pthread -o "$BENCH_BIN_DIR/tlsload" bench/c/tlsload.c -lssl -lcrypto
fi
if [ "${1:-}" = generator ]; then
  shift
  RUNNER=dist-bench/bench/src/generator-main.js
  # Docker: fakepg linked statically, for a container image made of that one file.
  gcc -O2 -static -Wall -Wextra -o "$BENCH_BIN_DIR/fakepg-static" bench/c/fakepg.c 2>"$RUN_DIR/gcc-static.log" \
    || echo "bench: gcc -static failed (see $RUN_DIR/gcc-static.log); the Docker source will not be measured" >&2
  # Kubernetes: the tests' fake apiserver, transpiled as it is (no bundling: it imports node: modules only).
  npx --no-install esbuild test/support/fake-kube-apiserver.ts --format=esm --platform=node --target=node20 \
    --log-level=warning --outfile="$BENCH_BIN_DIR/fake-kube-apiserver.mjs" 2>&1 | grep -v 'npm warn' >&2 || true
fi
node "$RUNNER" "$@" &
RUNNER_PID=$!
wait "$RUNNER_PID"
