#!/usr/bin/env bash
# HAProxy's work per router-only connection, before and after a change (issues #12 and #13), by
# callgrind instruction counts of HAProxy's worker, which machine load cannot bend: every pgroute path
# through bench/ab.sh icount-haproxy (both commits built apart, side by side in one run), and the
# static HAProxy and Lua router baselines (bench/baselines) counted the same way in the same run.
#
#   bench/cost.sh <before> <after> [reps]
#
# Paths (pgroute, both commits): memo off and memo hits (every connection the same StartupMessage),
# each with the default limits (cap 1024; the rate set out of reach, as ab.sh does) and with every
# limit 0 ("policies off": HAProxy still counts the connections for status and metrics); memo misses
# (every StartupMessage differs). COST_PATHS picks some (names below).
# COST_HAPROXY: the HAProxy counted (a binary, or a launcher of scripts/haproxy-versions.sh for 3.0
# or 3.2; default /usr/sbin/haproxy, 2.6), for the baselines and both commits alike.
# Ports: BENCH_AB_PORT_BASE (default 22400) up to base + 52: ab.sh's base to base + 31, the
# baselines base + 50 to base + 52 (22450-22452; 22550-22552 with base 22500).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
BEFORE="${1:?usage: bench/cost.sh <before> <after> [reps]}"
AFTER="${2:?after}"
REPS="${3:-1}"
PATHS="${COST_PATHS:-static lua off off-nolimits hit hit-nolimits miss}"
N_SMALL=500
N_BIG=2500

RUN="$(mktemp -d /tmp/pgroute-cost.XXXXXX)"
BENCH_NAME=cost
# shellcheck source=bench/scratch.sh
. "$ROOT/bench/scratch.sh"
# shellcheck source=bench/haproxy-cmd.sh
. "$ROOT/bench/haproxy-cmd.sh"
export BENCH_AB_HAPROXY="${COST_HAPROXY:-/usr/sbin/haproxy}"
haproxy_cmd "$BENCH_AB_HAPROXY"
PORT_BASE="${BENCH_AB_PORT_BASE:-22400}"
: >"$RUN/results"

# pgroute <name> <env...>: ab.sh's median per connection of both commits (A = before, B = after)
pgroute_path() {
  local name="$1" out
  shift
  out="$(env "$@" bench/ab.sh icount-haproxy "$BEFORE" "$AFTER" "$REPS" 2>"$RUN/$name.err")" || { cat "$RUN/$name.err" >&2; exit 1; }
  echo "$out" | grep -E '^(A = |RAW)' | sed "s/^/$name\t/" >&2
  local a b
  a="$(echo "$out" | awk -F'\t' '$1 == "SUMMARY" && $3 == "A" { sub(/^median /, "", $4); print $4 }')"
  b="$(echo "$out" | awk -F'\t' '$1 == "SUMMARY" && $3 == "B" { sub(/^median /, "", $4); print $4 }')"
  echo "$name $a $b" >>"$RUN/results"
}

# baseline <static|lua>: HAProxy with bench/baselines/haproxy-baseline.cfg under callgrind (one
# thread, as ab.sh runs pgroute), per connection = (count at N_BIG - count at N_SMALL) / difference
baseline_path() {
  local name="$1" port n out pid counts=()
  local p_static=$((PORT_BASE + 50)) p_lua=$((PORT_BASE + 51)) p_fake=$((PORT_BASE + 52))
  [ "$name" = static ] && port=$p_static || port=$p_lua
  [ -x "$RUN/connload" ] || { gcc -O2 -Wall -Wextra -o "$RUN/connload" bench/c/connload.c; gcc -O2 -Wall -Wextra -o "$RUN/fakepg" bench/c/fakepg.c; }
  start "fakepg-$name" "$RUN/fakepg" "$p_fake"
  local fake=$STARTED
  for n in $N_SMALL $N_BIG; do
    out="$(mktemp -d "$RUN/b.XXXXXX")"
    start "$(basename "$out")" env BENCH_LUA="$ROOT/bench/baselines/lua-router.lua" BENCH_STATIC_PORT="$p_static" BENCH_LUA_PORT="$p_lua" \
      BENCH_TENANT_PORT="$p_fake" BENCH_PIDFILE="$out/pid" taskset -c 0 valgrind --tool=callgrind --callgrind-out-file="$out/count.%p" \
      "${HAPROXY_CMD[@]}" -db -f bench/baselines/haproxy-baseline.cfg
    pid=$STARTED
    local deadline=$((SECONDS + 300))
    until "$RUN/connload" "$port" 1 2 0 app bench 1 2>/dev/null | grep -q '"ok":1,'; do
      [ "$SECONDS" -lt "$deadline" ] && kill -0 "$pid" 2>/dev/null || { log "baseline $name did not route"; exit 1; }
      sleep 0.1
    done
    "$RUN/connload" "$port" 8 900 0 app bench "$n" | grep -q "\"ok\":$n,\"errors\":0," || { log "baseline $name: not every connection routed"; exit 1; }
    kill -TERM -- "-$pid" 2>/dev/null || true
    for _ in $(seq 1 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    counts+=("$(awk '/^totals:/ { s += $2 } END { print s }' "$out"/count.*)")
  done
  kill -TERM -- "-$fake" 2>/dev/null || true
  local v
  v="$(echo "scale=1; (${counts[1]} - ${counts[0]}) / ($N_BIG - $N_SMALL)" | bc)"
  echo -e "$name\tRAW\t$N_SMALL connections: ${counts[0]}\t$N_BIG connections: ${counts[1]}\tper connection: $v" >&2
  echo "$name $v $v" >>"$RUN/results"
}

log "before = $BEFORE ($(git rev-parse --short "$BEFORE")), after = $AFTER ($(git rev-parse --short "$AFTER")); $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg); $("${HAPROXY_CMD[@]}" -v | head -1)"
for p in $PATHS; do
  case "$p" in
    static|lua) baseline_path "$p" ;;
    off) pgroute_path off ;;
    off-nolimits) pgroute_path off-nolimits BENCH_AB_LIMITS=none ;;
    hit) pgroute_path hit BENCH_AB_UP_ARGS_A='--memo on' BENCH_AB_UP_ARGS_B='--memo on' ;;
    hit-nolimits) pgroute_path hit-nolimits BENCH_AB_LIMITS=none BENCH_AB_UP_ARGS_A='--memo on' BENCH_AB_UP_ARGS_B='--memo on' ;;
    miss) pgroute_path miss CONNLOAD_UNIQUE=1 BENCH_AB_UP_ARGS_A='--memo on' BENCH_AB_UP_ARGS_B='--memo on' ;;
    *) log "unknown path $p"; exit 2 ;;
  esac
done

# Ratios first, then the counts (HAProxy instructions per router-only connection).
/usr/bin/python3 - "$RUN/results" <<'EOF'
import sys
rows = {}
for line in open(sys.argv[1]):
    name, a, b = line.split()
    rows[name] = (float(a), float(b))
def ratio(x, y, i):
    return f"{rows[x][i] / rows[y][i]:.2f}" if x in rows and y in rows else "-"
print("| ratio | before | after |")
print("|---|---|---|")
for x, y, what in [("hit", "static", "memo hit / static"), ("hit", "lua", "memo hit / Lua"), ("off", "static", "memo off / static"),
                   ("off", "lua", "memo off / Lua"), ("off", "off-nolimits", "memo off: limits / no limits (#12)"),
                   ("hit", "hit-nolimits", "memo hit: limits / no limits (#12)")]:
    print(f"| {what} | {ratio(x, y, 0)} | {ratio(x, y, 1)} |")
print()
print("| path | before | after | after / before |")
print("|---|---|---|---|")
for name, (a, b) in rows.items():
    print(f"| {name} | {a:,.0f} | {b:,.0f} | {b / a:.3f} |")
EOF
