#!/usr/bin/env bash
# A/B of two commits of pgroute by counts that machine load cannot bend (see bench/README.md, "A/B
# of two commits"). Each commit is built apart (git archive into the scratch directory) and driven
# through its CLI only (dist/cli/pgroute.js), so any two commits compare, however their internals differ.
#
#   bench/ab.sh render  <refA> <refB>            diff of haproxy.cfg / spoe.conf that `up` renders
#   bench/ab.sh icount  <refA> <refB> [reps]     router-only: instructions per connection of HAProxy's
#                                                worker and of pgroute's node process (callgrind)
#   bench/ab.sh syscalls <refA> <refB> [reps]    router-only: system calls per connection (strace -c)
#   bench/ab.sh cputime <refA> <refB> [reps]     router-only: CPU ns per connection of HAProxy and the
#                                                agent, native (load inflates it, both sides alike)
#   bench/ab.sh agent   <refA> <refB> [reps]     agent alone: instructions per decision (callgrind) and
#                                                decisions per agent CPU-second (native)
#   bench/ab.sh apply   <refA> <refB> [reps] [N] N tenants (10,000): generate, cold start, forced reload
#                                                (17 tenants added at once, one more than the spares):
#                                                wall time and CPU time (user+sys) of every process
#
# Environment: BENCH_AB_RELOAD_TIMEOUT_MS (apply: how long both builds wait for HAProxy's new worker
# after a reload; default the builds' own 15 s), BENCH_AB_NO_LIMITS=1 (agent: the tenant without
# admission limits, so the ACK is the route alone), BENCH_AB_LIMITS=none (router modes: the tenant
# with every limit 0; =absent: no limit field, for commits before #12's limits, every mode),
# BENCH_AB_UP_ARGS_A/B, BENCH_AB_SED_A/B, BENCH_AB_SPOE_SED_A/B (router modes: extra `up` flags, a sed of the rendered haproxy.cfg, of spoe.conf), BENCH_AB_PORT_BASE, BENCH_KEEP=1,
# BENCH_AB_HAPROXY (router modes: the HAProxy to run and count, a binary or a launcher of
# scripts/haproxy-versions.sh; default /usr/sbin/haproxy, 2.6): both sides render for it and run it.
# BENCH_AB_AGENT_CONNS="<small> <big>" (icount, icount-agent: the agent's connection window).
#
# Prints one line per measurement (tab-separated, grep-able) and a summary per ref; keeps everything
# in the scratch directory when BENCH_KEEP=1. Ports: BENCH_AB_PORT_BASE (22400: test port block 24)
# up to base + 31.
set -euo pipefail

ROOT="${BENCH_AB_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}"
cd "$ROOT"
MODE="${1:?usage: bench/ab.sh render|icount|syscalls|agent|apply <refA> <refB> [reps] [tenants]}"
REF_A="${2:?refA}"
REF_B="${3:?refB}"
REPS="${4:-3}"
NTEN="${5:-10000}"

BASE="${BENCH_AB_PORT_BASE:-22400}"   # test port block 24; 22500 (block 25) for a second run beside it
P_PG=$BASE                 # pgroute's public port
P_AGENT=$((BASE + 10))     # agent SPOP (tcp transport)
P_AHTTP=$((BASE + 11))     # agent /healthz
P_FAKE=$((BASE + 20))      # fake PostgreSQL backend
P_SOLO=$((BASE + 30))      # the agent alone (mode agent)
P_SOLOHTTP=$((BASE + 31))

RUN="$(mktemp -d /tmp/pgroute-ab.XXXXXX)"
BIN="$RUN/bin"
mkdir -p "$BIN"
BENCH_NAME=ab
# shellcheck source=bench/scratch.sh
. "$(dirname "${BASH_SOURCE[0]}")/scratch.sh"
# shellcheck source=bench/haproxy-cmd.sh
. "$ROOT/bench/haproxy-cmd.sh"
HAPROXY="${BENCH_AB_HAPROXY:-/usr/sbin/haproxy}"
haproxy_cmd "$HAPROXY"
# `pgroute up` (the rendering) checks and renders for this HAProxy's version, and runs it
export PGROUTE_HAPROXY="$HAPROXY"

# stop <pid>: SIGTERM to the process only (pgroute stops its HAProxy itself), wait for it and for
# its descendants (valgrind and strace write their counts when the process they watch exits)
stop() {
  local pids
  pids="$(tree_pids "$1")"
  kill -TERM "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
  until_gone $pids
  # A process that a SIGTERM found before it handled SIGTERM (`pgroute up` until its start-up
  # resolves) dies at once and leaves its HAProxy listening on the bench's port, where the next run
  # would be measured against it: stop what is left of its process group (start() made one).
  if kill -0 -- "-$1" 2>/dev/null; then
    echo "ab: processes of $1 outlived it; stopping its process group" >&2
    kill -TERM -- "-$1" 2>/dev/null || true
    until_gone $pids
  fi
}

# until_gone <pid...>: wait (at most 30 s) until none of them runs
until_gone() {
  local p alive
  for _ in $(seq 1 300); do
    alive=0
    for p in "$@"; do kill -0 "$p" 2>/dev/null && alive=1; done
    [ "$alive" = 1 ] || return 0
    sleep 0.1
  done
}


# build <ref>: the commit built once (bench/build-ref.sh)
. "$ROOT/bench/build-ref.sh"

log "building $REF_A and $REF_B in $RUN"
TREE_A="$(build "$REF_A")"
TREE_B="$(build "$REF_B")"
SHA_A="${TREE_A##*tree-}"
SHA_B="${TREE_B##*tree-}"
# BENCH_AB_RELOAD_TIMEOUT_MS: both builds wait that long (instead of their 15 s) for HAProxy's new
# worker after a reload, so that a loaded machine's slow start is measured instead of rolled back.
# Patched in copies of the builds (the cache keeps them as committed).
patch_reload_timeout() {
  local tree="$1" copy="$RUN/$2-tree-${1##*tree-}" js
  cp -a "$tree" "$copy"
  js="$copy/dist/generator/src/haproxy/reload.js"
  sed -i "s/timeoutMs = 15_000/timeoutMs = $BENCH_AB_RELOAD_TIMEOUT_MS/" "$js"
  grep -q "timeoutMs = $BENCH_AB_RELOAD_TIMEOUT_MS" "$js" || { echo "ab: cannot patch the reload timeout in $js" >&2; exit 1; }
  echo "$copy"
}
if [ -n "${BENCH_AB_RELOAD_TIMEOUT_MS:-}" ]; then
  TREE_A="$(patch_reload_timeout "$TREE_A" A)"
  TREE_B="$(patch_reload_timeout "$TREE_B" B)"
fi
gcc -O2 -Wall -Wextra -o "$BIN/fakepg" bench/c/fakepg.c
gcc -O2 -Wall -Wextra -o "$BIN/connload" bench/c/connload.c
"$ROOT/node_modules/.bin/tsc" -p bench/tsconfig.json

start fakepg "$BIN/fakepg" "$P_FAKE"
FAKE_PID=$STARTED
# The default admission limits apply (the policy rules run as for any tenant), but the rate limit
# is set out of reach: a path fast enough under callgrind or natively would otherwise be refused
# over the default 1000 new connections a second, and a refused connection is not the one measured.
# BENCH_AB_LIMITS=none: the tenant sets every limit to 0 (no limit; HAProxy still counts its
# connections for status and metrics), for policies on vs off (#12). BENCH_AB_LIMITS=absent: no limit
# field at all, for commits from before per-tenant limits (#12), whose tenants files refuse them.
case "${BENCH_AB_LIMITS:-}" in
  none) LIMIT_LINES='    maxClientConnections: 0\n    maxConnectionRate: 0\n' ;;
  absent) LIMIT_LINES='' ;;
  *) LIMIT_LINES='    maxConnectionRate: 1000000\n' ;;
esac
printf "tenants:\n  - id: bench\n    host: 127.0.0.1\n    port: %s\n$LIMIT_LINES" "$P_FAKE" >"$RUN/tenants.yaml"

# until_routes <port> <database> <seconds> [<pid>...]: a StartupMessage for <database> gets
# ReadyForQuery; fails at once when one of the pids has exited
until_routes() {
  local deadline=$((SECONDS + $3)) port="$1" db="$2" p
  shift 3
  while [ "$SECONDS" -lt "$deadline" ]; do
    for p in "$@"; do kill -0 "$p" 2>/dev/null || { echo "ab: process $p exited (see $RUN/*.log)" >&2; return 1; }; done
    "$BIN/connload" "$port" 1 2 0 app "$db" 1 2>/dev/null | grep -q '"ok":1,' && return 0
    sleep 0.05
  done
  echo "ab: $db not routable on :$port after the wait" >&2
  return 1
}

# learned <haproxy.cfg>: tells the HAProxy started from it that it has learned the replicated tables,
# as `pgroute up`/`watch` do once its peers resync is done (docs/cancel.md "Across a reload"): a
# worker started here from a config is otherwise unmarked for 30 s and records every cancel through
# the slow path into its handover table, which no running deployment measures. An older config has
# no such table: HAProxy's "unknown table" answer is ignored.
learned() {
  local sock
  sock="$(awk '/^ *stats socket /{print $3; exit}' "$1")"
  [ -n "$sock" ] || return 0
  echo "set table pgroute-learned key 0" | admin "$sock" >/dev/null || true
}

# up_args <tree> <state dir> <extra>: `pgroute up` as bench/run.sh starts it, plus <extra> flags
# (@STATE@ in them is the state directory)
up_args() {
  echo node "$1/dist/cli/pgroute.js" up --tenants "$RUN/tenants.yaml" --port "$P_PG" --bind 127.0.0.1 \
    --agent-port "$P_AGENT" --agent-http-port "$P_AHTTP" --stats-port 0 --log off --state-dir "$2" ${3//@STATE@/$2}
}

# rendered <A|B>: the state directory of what `pgroute up` of that side renders (run once, natively,
# until a connection routes, then stopped); the measured runs start HAProxy and the agent from it
rendered() {
  local side="$1" tree extra dir pid
  dir="$RUN/rendered-$side"
  if [ ! -f "$dir/haproxy.cfg" ]; then
    if [ "$side" = A ]; then tree="$TREE_A"; extra="${BENCH_AB_UP_ARGS_A:-}"; else tree="$TREE_B"; extra="${BENCH_AB_UP_ARGS_B:-}"; fi
    # shellcheck disable=SC2046
    start "rendered-$side" $(up_args "$tree" "$dir" "$extra")
    pid=$STARTED
    until_routes "$P_PG" bench 120 "$pid"
    stop "$pid"
    # Experiments: BENCH_AB_SED_A / _B edit that side's rendered haproxy.cfg (sed expression)
    local edit
    if [ "$side" = A ]; then edit="${BENCH_AB_SED_A:-}"; else edit="${BENCH_AB_SED_B:-}"; fi
    [ -z "$edit" ] || sed -i -e "$edit" "$dir/haproxy.cfg"
    # BENCH_AB_SPOE_SED_A / _B: the same for the side's spoe.conf
    if [ "$side" = A ]; then edit="${BENCH_AB_SPOE_SED_A:-}"; else edit="${BENCH_AB_SPOE_SED_B:-}"; fi
    [ -z "$edit" ] || sed -i -e "$edit" "$dir/spoe.conf"
  fi
  echo "$dir"
}

# relaxed <state dir>: haproxy-relaxed.cfg + spoe-relaxed.conf next to the rendered files, the same
# but for the waits on the agent (timeout processing 30s) and without health checks of the agent: the
# agent under valgrind on a loaded machine can take longer than 1 s for a decision while V8 compiles
# (HAProxy would refuse the connection), and a check every second (a connection, HELLO, DISCONNECT)
# would add instructions in proportion to the run's duration, which load stretches. Nothing else
# changes in the work per connection.
relaxed() {
  local dir="$1"
  if [ ! -f "$dir/haproxy-relaxed.cfg" ]; then
    sed -e 's/timeout processing .*/timeout processing 30s/' -e 's/timeout hello .*/timeout hello 30s/' "$dir/spoe.conf" >"$dir/spoe-relaxed.conf"
    sed -e "s#$dir/spoe.conf#$dir/spoe-relaxed.conf#" -e 's/^\( *server agent1 [^ ]*\) check .*/\1/' \
      -e '/^backend pgroute-agent/,/^$/ s/timeout connect .*/timeout connect 30s/' "$dir/haproxy.cfg" >"$dir/haproxy-relaxed.cfg"
  fi
  echo "$dir/haproxy-relaxed.cfg"
}

# callgrind_total <file>: the "totals:" line of a callgrind output file
callgrind_total() { awk '/^totals:/ { print $2 }' "$1"; }

# agent_args <tree> <state dir>: the tree's `pgroute agent` where that haproxy.cfg looks for it
agent_args() {
  local sock
  sock="$(sed -n 's/^ *server agent1 unix@\([^ ]*\) .*/\1/p' "$2/haproxy.cfg")"
  if [ -n "$sock" ]; then
    echo node "$1/dist/cli/pgroute.js" agent --routes "$2/routes.json" --socket "$sock" --http-port "$P_AHTTP"
  else
    echo node "$1/dist/cli/pgroute.js" agent --routes "$2/routes.json" --port "$P_AGENT" --http-port "$P_AHTTP"
  fi
}

# router_once <A|B> <tool> <n>: HAProxy (one process, -db) with the side's rendered haproxy.cfg and
# spoe.conf, the side's agent, n connections (concurrency 8); <tool> counts one of them:
# haproxy = HAProxy under callgrind, node = the agent under callgrind (HAProxy with relaxed() waits),
# strace = HAProxy's system calls, cpu = CPU ns of both (schedstat), native.
# HAProxy runs on one thread (taskset -c 0; its default nbthread is the CPUs it may use) so that
# valgrind's serialised threads add no spin-waits; both sides get the same. Prints the count.
router_once() {
  local side="$1" tool="$2" n="$3" out dir tree hap agent hpid apid r try
  [ "$side" = A ] && tree="$TREE_A" || tree="$TREE_B"
  dir="$(rendered "$side")"
  for try in 1 2 3; do
    out="$(mktemp -d "$RUN/r.XXXXXX")"
    hap=(taskset -c 0 "${HAPROXY_CMD[@]}" -db -f "$dir/haproxy.cfg")
    # shellcheck disable=SC2207
    agent=($(agent_args "$tree" "$dir"))
    case "$tool" in
      haproxy) hap=(taskset -c 0 valgrind --tool=callgrind --callgrind-out-file="$out/count.%p" "${HAPROXY_CMD[@]}" -db -f "$dir/haproxy.cfg") ;;
      strace) hap=(taskset -c 0 strace -f -c -o "$out/count.strace" "${HAPROXY_CMD[@]}" -db -f "$dir/haproxy.cfg") ;;
      node)
        agent=(valgrind --tool=callgrind --callgrind-out-file="$out/count.%p" "${agent[@]}")
        hap=(taskset -c 0 "${HAPROXY_CMD[@]}" -db -f "$(relaxed "$dir")")
        ;;
    esac
    start "$(basename "$out")-agent" "${agent[@]}"
    apid=$STARTED
    # HAProxy only once the agent answers, so that no run counts HAProxy's retries of a late agent
    local deadline=$((SECONDS + 600))
    until (exec 3<>"/dev/tcp/127.0.0.1/$P_AHTTP") 2>/dev/null; do
      [ "$SECONDS" -lt "$deadline" ] && kill -0 "$apid" 2>/dev/null || { echo "ab: the agent did not start (see $RUN/*-agent.log)" >&2; exit 1; }
      sleep 0.1
    done
    # Nothing may answer on the port before this HAProxy does (it would be measured instead)
    if (exec 3<>"/dev/tcp/127.0.0.1/$P_PG") 2>/dev/null; then echo "ab: something already listens on :$P_PG (ss -ltnp)" >&2; exit 1; fi
    start "$(basename "$out")-haproxy" "${hap[@]}"
    hpid=$STARTED
    until_routes "$P_PG" bench 600 "$apid" "$hpid"
    learned "$dir/haproxy.cfg"
    local h0 a0
    h0="$(cpu_ns "$hpid")"; a0="$(cpu_ns "$apid")"
    r="$("$BIN/connload" "$P_PG" 8 900 0 app bench "$n")"
    echo "$(($(cpu_ns "$hpid") - h0)) $(($(cpu_ns "$apid") - a0))" >"$out/cpu"
    # strace writes its counts when HAProxy exits: stop HAProxy, not strace
    if [ "$tool" = strace ]; then kill -TERM "$(pgrep -P "$hpid")" 2>/dev/null || true; fi
    stop "$hpid"
    stop "$apid"
    echo "$r" | grep -q "\"ok\":$n,\"errors\":0," && break
    echo "ab: $side $tool $n: not every connection routed ($r); again" >&2
    [ "$try" -lt 3 ] || { echo "ab: giving up" >&2; exit 1; }
  done
  case "$tool" in
    haproxy|node) callgrind_total "$out"/count.* ;;
    cpu) awk '{ printf "%.0f %.0f %.0f\n", $1 + $2, $1, $2 }' "$out/cpu" ;;
    strace) awk '$NF == "total" { print $4 }' "$out/count.strace" ;;
  esac
}

# per_unit <small count> <big count>: (big - small) / (N_BIG - N_SMALL)
per_unit() { echo "scale=1; ($2 - $1) / ($N_BIG - $N_SMALL)" | bc; }

# summary <label> <file with "sha value" lines>: median, min, max per sha, and B/A of the medians
summary() {
  python3 - "$1" "$2" A B <<'EOF'
import sys, statistics
label, path, a, b = sys.argv[1:5]
vals = {}
for line in open(path):
    sha, v = line.split()
    if v == "failed":
        print(f"FAILED\t{label}\t{sha}\tone run did not complete")
        continue
    vals.setdefault(sha, []).append(float(v))
med = {}
for sha in (a, b):
    v = vals.get(sha, [])
    if not v: continue
    med[sha] = statistics.median(v)
    print(f"SUMMARY\t{label}\t{sha}\tmedian {med[sha]:.1f}\tmin {min(v):.1f}\tmax {max(v):.1f}\tspread {(max(v)-min(v))/med[sha]*100:.2f}%\tn {len(v)}\t[{' '.join(f'{x:.1f}' for x in v)}]")
if a in med and b in med:
    print(f"RATIO\t{label}\tB/A\t{med[b]/med[a]:.4f}")
EOF
}

mode_render() {
  local sa sb f
  sa="$(rendered A)"
  sb="$(rendered B)"
  # The state directory and the tree's path differ by construction: leave them out of the diff.
  for f in haproxy.cfg spoe.conf; do
    echo "=== $f: A -> B (state dir and tree path replaced by <state>, <tree>)"
    diff -u <(sed -e "s#$sa#<state>#g; s#$TREE_A#<tree>#g" "$sa/$f") <(sed -e "s#$sb#<state>#g; s#$TREE_B#<tree>#g" "$sb/$f") || true
  done
}

# mode_router <tool> <label> <n small> <n big>: per connection = (big - small) / (n big - n small),
# which leaves out start-up, JIT warm-up and shutdown; sides alternate, the order flips every rep
mode_router() {
  local tool="$1" label="$2" ns="$3" nb="$4" i side s b v
  : >"$RUN/$tool.values"
  for i in $(seq 1 "$REPS"); do
    local order=(A B)
    [ $((i % 2)) -eq 0 ] && order=(B A)
    for side in "${order[@]}"; do
      local sv bv
      read -r -a sv <<<"$(router_once "$side" "$tool" "$ns")"
      read -r -a bv <<<"$(router_once "$side" "$tool" "$nb")"
      s="${sv[0]}"; b="${bv[0]}"
      v="$(echo "scale=1; ($b - $s) / ($nb - $ns)" | bc)"
      printf 'RAW\t%s\trep %s\t%s\t%s connections: %s\t%s connections: %s\tper connection: %s' "$label" "$i" "$side" "$ns" "${sv[*]}" "$nb" "${bv[*]}" "$v"
      # cpu: also HAProxy and the agent apart
      [ "${#bv[@]}" -lt 3 ] || printf '\t(HAProxy %s, agent %s)' "$(echo "scale=1; (${bv[1]} - ${sv[1]}) / ($nb - $ns)" | bc)" "$(echo "scale=1; (${bv[2]} - ${sv[2]}) / ($nb - $ns)" | bc)"
      printf '\n'
      echo "$side $v" >>"$RUN/$tool.values"
    done
  done
  summary "$label per connection" "$RUN/$tool.values"
}

# agent_once <tree> <callgrind|native> <count or seconds>: `pgroute agent` alone, driven by
# bench/src/spop-client.ts (64 NOTIFY frames in flight, one connection), pinned to core 1, client on 0.
agent_once() {
  local tree="$1" how="$2" arg="$3" out pid
  out="$(mktemp -d "$RUN/a.XXXXXX")"
  node "$tree/dist/cli/pgroute.js" generate --tenants "$RUN/tenants.yaml" --state-dir "$out/state" --port "$P_PG" \
    --bind 127.0.0.1 --agent-port "$P_SOLO" --stats-port 0 --log off >"$out/generate.log" 2>&1
  # BENCH_AB_NO_LIMITS=1: the tenant without admission limits in routes.json, so that the ACK carries
  # the three route variables alone (as before per-tenant limits existed)
  if [ "${BENCH_AB_NO_LIMITS:-0}" = 1 ]; then
    python3 -c 'import json, sys
doc = json.load(open(sys.argv[1]))
for t in doc["tenants"]: t.pop("limits", None)
json.dump(doc, open(sys.argv[1], "w"))' "$out/state/routes.json"
  fi
  local agent=(node "$tree/dist/cli/pgroute.js" agent --routes "$out/state/routes.json" --port "$P_SOLO" --http-port "$P_SOLOHTTP")
  if [ "$how" = callgrind ]; then
    start "$(basename "$out")" taskset -c 1 valgrind --tool=callgrind --callgrind-out-file="$out/agent.%p" "${agent[@]}"
  else
    start "$(basename "$out")" taskset -c 1 "${agent[@]}"
  fi
  pid=$STARTED
  local deadline=$((SECONDS + 600)) # node under valgrind on a loaded machine: minutes
  until (exec 3<>"/dev/tcp/127.0.0.1/$P_SOLO") 2>/dev/null; do
    [ "$SECONDS" -lt "$deadline" ] || { echo "ab: agent did not listen" >&2; exit 1; }
    sleep 0.1
  done
  local client=(taskset -c 0 node dist-bench/bench/src/spop-client.js --port "$P_SOLO" --inflight 64 --dport "$P_PG" --agent-pid "$pid")
  local r
  if [ "$how" = callgrind ]; then r="$("${client[@]}" --count "$arg")"; else r="$("${client[@]}" --seconds "$arg" --warmup 1)"; fi
  stop "$pid"
  echo "$r" | grep -q '"error":null' || { echo "ab: spop client failed: $r" >&2; exit 1; }
  echo "$r" | grep -q '"name":"be"' || { echo "ab: no backend decided: $r" >&2; exit 1; }
  if [ "$how" = callgrind ]; then callgrind_total "$out"/agent.*; else
    python3 -c 'import json,sys; r=json.loads(sys.argv[1]); print(round(r["acks"]/r["agentCpuSeconds"]))' "$r"
  fi
}

mode_agent() {
  local i tree sha s b v
  : >"$RUN/agent-ir.values"; : >"$RUN/agent-rate.values"
  for i in $(seq 1 "$REPS"); do
    local order=(A B)
    [ $((i % 2)) -eq 0 ] && order=(B A)
    for sha in "${order[@]}"; do
      [ "$sha" = A ] && tree="$TREE_A" || tree="$TREE_B"
      s="$(agent_once "$tree" callgrind 5000)"
      b="$(agent_once "$tree" callgrind 45000)"
      v="$(echo "scale=1; ($b - $s) / 40000" | bc)"
      printf 'RAW\tagent instructions\trep %s\t%s\t5000 decisions: %s\t45000 decisions: %s\tper decision: %s\n' "$i" "$sha" "$s" "$b" "$v"
      echo "$sha $v" >>"$RUN/agent-ir.values"
    done
    for sha in "${order[@]}"; do
      [ "$sha" = A ] && tree="$TREE_A" || tree="$TREE_B"
      v="$(agent_once "$tree" native 5)"
      printf 'RAW\tagent decisions per agent CPU-second\trep %s\t%s\t%s\n' "$i" "$sha" "$v"
      echo "$sha $v" >>"$RUN/agent-rate.values"
    done
  done
  summary "agent instructions per decision" "$RUN/agent-ir.values"
  summary "agent decisions per agent CPU-second" "$RUN/agent-rate.values"
}

# cpu_of <pid...>: utime+stime+cutime+cstime (children waited for: `haproxy -c`, old workers), seconds
cpu_of() {
  local total=0 p f
  for p in "$@"; do
    [ -r "/proc/$p/stat" ] || continue
    f="$(sed -e 's/^.*) //' "/proc/$p/stat")"
    total=$((total + $(echo "$f" | awk '{ print $12 + $13 + $14 + $15 }')))
  done
  echo "scale=2; $total / $(getconf CLK_TCK)" | bc
}

now_ms() { date +%s%3N; }

# apply_once <tree>: N tenants; prints "generate_wall generate_cpu cold_wall cold_cpu reload_wall reload_cpu"
apply_once() {
  local tree="$1" out pid t0 t1 g_wall g_cpu c_wall c_cpu c_node r_wall r_cpu cpu0
  out="$(mktemp -d "$RUN/p.XXXXXX")"
  python3 - "$out/tenants.yaml" "$NTEN" "$P_FAKE" <<'EOF'
import sys
path, n, port = sys.argv[1], int(sys.argv[2]), sys.argv[3]
with open(path, "w") as f:
    f.write("tenants:\n")
    for i in range(n):
        f.write(f"  - id: t{i}\n    host: 127.0.0.1\n    port: {port}\n")
EOF
  # generate: parse + validate + render + write (a process of its own: its rusage is its CPU)
  local TIMEFORMAT='%U %S'
  t0=$(now_ms)
  { time node "$tree/dist/cli/pgroute.js" generate --tenants "$out/tenants.yaml" --state-dir "$out/gen" \
    --port "$P_PG" --bind 127.0.0.1 --agent-port "$P_AGENT" --stats-port 0 --log off >"$out/generate.log" 2>&1; } 2>"$out/generate.time"
  t1=$(now_ms)
  g_wall=$((t1 - t0))
  g_cpu="$(awk '{ print $1 + $2 }' "$out/generate.time")"
  # cold start: until the last tenant routes
  t0=$(now_ms)
  # shellcheck disable=SC2046
  start "$(basename "$out")" node "$tree/dist/cli/pgroute.js" up --tenants "$out/tenants.yaml" --port "$P_PG" --bind 127.0.0.1 \
    --agent-port "$P_AGENT" --agent-http-port "$P_AHTTP" --stats-port 0 --log off --state-dir "$out/state"
  pid=$STARTED
  until_routes "$P_PG" "t$((NTEN - 1))" 180 "$pid"
  t1=$(now_ms)
  c_wall=$((t1 - t0))
  c_cpu="$(cpu_of $(tree_pids "$pid"))"
  # pgroute's node process alone (with its `haproxy -c`, if any): HAProxy's part grows with the wall
  # time (it health-checks every server every 2 s from its start), which load stretches
  c_node="$(cpu_of "$pid")"
  sleep 3 # first health checks and the initial apply settle
  # forced reload: 17 more tenants at once, one more than the 16 spares (the runtime API cannot place
  # them all: write, check, reload). Not a host name: HAProxy's resolvers find no DNS here
  # (localhost is "DNS NX" and its server goes to maintenance).
  local before node0
  before="$(tree_pids "$pid")"
  cpu0="$(cpu_of $before)"
  node0="$(cpu_of "$pid")"
  t0=$(now_ms)
  python3 -c 'import sys; sys.stdout.write("".join(f"  - id: extra{i}\n    host: 127.0.0.1\n    port: {sys.argv[1]}\n" for i in range(17)))' "$P_FAKE" \
    | cat "$out/tenants.yaml" - >"$out/tenants.tmp"
  mv "$out/tenants.tmp" "$out/tenants.yaml"
  if until_routes "$P_PG" extra16 120 "$pid"; then t1=$(now_ms); r_wall=$((t1 - t0)); else r_wall=failed; fi
  r_cpu="$(echo "$(cpu_of $(tree_pids "$pid")) - $cpu0" | bc)"
  # apart: pgroute's node process (render, write, its `haproxy -c`) and the new worker(s) (config
  # load, then health checks until now); the rest of r_cpu is the old worker's and the master's
  local p fresh=() r_node r_worker
  r_node="$(echo "$(cpu_of "$pid") - $node0" | bc)"
  for p in $(tree_pids "$pid"); do grep -qx "$p" <<<"$before" || fresh+=("$p"); done
  r_worker="$(cpu_of "${fresh[@]}")"
  [ "$r_wall" != failed ] || { r_cpu=failed; r_node=failed; r_worker=failed; }
  # what pgroute itself says of the applies (kind, ms), for the record
  grep -o '"kind":"[a-z-]*","detail":"[^"]*"\(,"tenants":[0-9]*\)\?,"ms":[0-9]*' "$RUN/$(basename "$out").log" | sed "s/^/ab: $(basename "$out"): /" >&2 || true
  stop "$pid"
  echo "$g_wall $g_cpu $c_wall $c_cpu $c_node $r_wall $r_cpu $r_node $r_worker"
}

mode_apply() {
  local i tree sha r names=(generate_wall_ms generate_cpu_s cold_start_wall_ms cold_start_cpu_s cold_start_node_cpu_s forced_reload_wall_ms forced_reload_cpu_s forced_reload_node_cpu_s forced_reload_new_worker_cpu_s) k
  for k in "${names[@]}"; do : >"$RUN/apply-$k.values"; done
  for i in $(seq 1 "$REPS"); do
    local order=(A B)
    [ $((i % 2)) -eq 0 ] && order=(B A)
    for sha in "${order[@]}"; do
      [ "$sha" = A ] && tree="$TREE_A" || tree="$TREE_B"
      read -r -a r <<<"$(apply_once "$tree")"
      printf 'RAW\tapply %s tenants\trep %s\t%s\tload %s' "$NTEN" "$i" "$sha" "$(cut -d' ' -f1 /proc/loadavg)"
      for k in "${!names[@]}"; do printf '\t%s %s' "${names[$k]}" "${r[$k]}"; echo "$sha ${r[$k]}" >>"$RUN/apply-${names[$k]}.values"; done
      printf '\n'
    done
  done
  for k in "${names[@]}"; do summary "apply $NTEN tenants $k" "$RUN/apply-$k.values"; done
}

# BENCH_AB_AGENT_CONNS="<small> <big>": the agent's window under callgrind (default 200 1200, within
# V8's warm-up: its compilers take half of it; e.g. "3000 9000" for the agent past its warm-up)
AGENT_CONNS="${BENCH_AB_AGENT_CONNS:-200 1200}"
AGENT_WINDOW=""
[ -z "${BENCH_AB_AGENT_CONNS:-}" ] || AGENT_WINDOW=", connections ${AGENT_CONNS/ /-}"
echo "A = $REF_A ($SHA_A)${BENCH_AB_UP_ARGS_A:+ up $BENCH_AB_UP_ARGS_A}${BENCH_AB_SED_A:+ sed $BENCH_AB_SED_A}, B = $REF_B ($SHA_B)${BENCH_AB_UP_ARGS_B:+ up $BENCH_AB_UP_ARGS_B}${BENCH_AB_SED_B:+ sed $BENCH_AB_SED_B}; $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg), $("${HAPROXY_CMD[@]}" -v | head -1), node $(node -v)"
case "$MODE" in
  render) mode_render ;;
  icount)
    mode_router haproxy "HAProxy instructions" 500 4500
    mode_router node "agent (node) instructions$AGENT_WINDOW" $AGENT_CONNS
    ;;
  icount-haproxy) mode_router haproxy "HAProxy instructions" 500 4500 ;;
  icount-agent) mode_router node "agent (node) instructions$AGENT_WINDOW" $AGENT_CONNS ;;
  syscalls) mode_router strace "HAProxy system calls" 500 4500 ;;
  cputime) mode_router cpu "CPU ns (HAProxy + agent, native)" 1000 9000 ;;
  agent) mode_agent ;;
  apply) mode_apply ;;
  *) echo "ab: unknown mode $MODE" >&2; exit 2 ;;
esac
stop "$FAKE_PID"
