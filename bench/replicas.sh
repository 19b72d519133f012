#!/usr/bin/env bash
# The replicas benchmark (bench/replicas/main.ts): cancel across replicas, access-switch convergence,
# router-only conn/s with peers on vs off, 10,000 tenants with peers on vs off, in one run, ratios
# first. Result: bench/results/<date>-session5-replicas[-quick].md.
#   bench/replicas.sh [quick]
# Needs root (PostgreSQL runs as `postgres`), gcc, haproxy, PostgreSQL 15; ports of portBlock(30..34).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
BIN="$(mktemp -d /tmp/pgroute-bench-replicas-bin.XXXXXX)"
trap 'rm -rf "$BIN"' EXIT
[ "${BENCH_SKIP_BUILD:-}" = 1 ] || npm run build >/dev/null
gcc -O2 -Wall -Wextra -o "$BIN/fakepg" bench/c/fakepg.c
gcc -O2 -Wall -Wextra -o "$BIN/connload" bench/c/connload.c
BENCH_BIN_DIR="$BIN" npx vite-node bench/replicas/main.ts -- "$@"
