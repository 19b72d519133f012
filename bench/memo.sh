#!/usr/bin/env bash
# The verdict memo (#13, docs/memo.md), router-only, side by side in one run per HAProxy version:
# static HAProxy, the Lua router (bench/baselines), pgroute --memo off, pgroute --memo on with a
# hit-heavy load (every connection sends the same StartupMessage) and a miss-heavy one (every
# StartupMessage differs: CONNLOAD_UNIQUE=1), and pgroute --memo off with a tenant that sets no
# admission limit (the policy's counters still run, for the metrics; issue #12's "policies on vs
# off"). Per path: conn/s (concurrency 8, rounds in rotating
# order) and CPU time per connection of HAProxy and of pgroute's node process (agent + generator),
# from /proc schedstat over each measured window. First (before the rounds) the memo's memory at
# 100,000 entries.
#
#   bench/memo.sh [haproxy binary or launcher...]   default: /usr/sbin/haproxy and the 3.0 launcher
#   BENCH_MEMO_ROUNDS=2 BENCH_MEMO_SECONDS=5        rounds per path, seconds per measurement
#   BENCH_MEMO_STARTS=1                             how often every HAProxy and pgroute is started afresh (per HAProxy,
#                                                   the versions in turn), ROUNDS rounds each time: the
#                                                   same config in two processes can differ by up to 10 %
#                                                   for a whole run (where the scheduler puts their
#                                                   threads), which more rounds in one process do not average;
#                                                   the memory measurement runs in the first start only
#   BENCH_MEMO_PATHS="static lua memo-on-hits"      only these paths (default: all six); with many short
#                                                   rounds, for the per-round paired ratios' median
#                                                   Also (never by default) the steps from static to the
#                                                   Lua router, on the baseline HAProxy
#                                                   (bench/baselines/haproxy-wait-cost.cfg): first-byte,
#                                                   whole-packet (ratios to static), lua-spoe-filter,
#                                                   lua-smart-connect, lua-smart-accept, lua-defer-accept
#                                                   (ratios to Lua)
#   BENCH_MEMO_MEMORY=0                             skip the memory measurement (any value but 1 does)
#   BENCH_MEMO_OUT=bench/results/x.md               where the Markdown tables go (also printed)
#
# Uses the built dist/ (run `npm run build` first). Ports 23600-23699 (test port block 36).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
HAPROXIES=("$@")
[ "${#HAPROXIES[@]}" -gt 0 ] || HAPROXIES=(/usr/sbin/haproxy /var/cache/pgroute/haproxy-roots/haproxy-3.0)
ROUNDS="${BENCH_MEMO_ROUNDS:-2}"
STARTS="${BENCH_MEMO_STARTS:-1}"
[[ $ROUNDS =~ ^[1-9][0-9]*$ && $STARTS =~ ^[1-9][0-9]*$ ]] || { echo "memo bench: BENCH_MEMO_ROUNDS and BENCH_MEMO_STARTS must be whole numbers from 1" >&2; exit 2; }
SECONDS_PER="${BENCH_MEMO_SECONDS:-5}"
OUT="${BENCH_MEMO_OUT:-bench/results/2026-12-06-session5-memo-run.md}"
B=23600
P_STATIC=$((B + 1)); P_LUA=$((B + 2)); P_OFF=$((B + 3)); P_OFF_HTTP=$((B + 5)); P_ON=$((B + 6)); P_ON_HTTP=$((B + 8)); P_NL=$((B + 9)); P_NL_HTTP=$((B + 10)); P_FAKE=$((B + 20))
# The wait-cost steps (bench/baselines/haproxy-wait-cost.cfg), served by the baseline HAProxy.
P_FIRST=$((B + 30)); P_WHOLE=$((B + 31)); P_LSPOE=$((B + 32)); P_LSCON=$((B + 33)); P_LSACC=$((B + 34)); P_LDEFER=$((B + 35)); P_NOAGENT=$((B + 36))

RUN="$(mktemp -d /tmp/pgroute-memo-bench.XXXXXX)"
BENCH_NAME="memo bench"
# shellcheck source=bench/scratch.sh
. "$ROOT/bench/scratch.sh"
stop_group() { kill -TERM -- "-$1" 2>/dev/null || true; for _ in $(seq 1 100); do kill -0 -- "-$1" 2>/dev/null || return 0; sleep 0.1; done; kill -KILL -- "-$1" 2>/dev/null || true; }
wait_tcp() { local deadline=$((SECONDS + $2)); until (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; do [ "$SECONDS" -lt "$deadline" ] || { log "nothing listens on $1"; exit 1; }; sleep 0.1; done; }

gcc -O2 -Wall -Wextra -o "$RUN/fakepg" bench/c/fakepg.c
gcc -O2 -Wall -Wextra -o "$RUN/connload" bench/c/connload.c
[ -f dist/cli/pgroute.js ] || { log "dist/cli/pgroute.js missing: run npm run build"; exit 1; }
start fakepg "$RUN/fakepg" "$P_FAKE"
wait_tcp "$P_FAKE" 10
# No per-tenant rate limit: the default (1000 new connections a second) would refuse part of the load.
printf 'tenants:\n  - id: bench\n    host: 127.0.0.1\n    port: %s\n    maxConnectionRate: 0\n' "$P_FAKE" >"$RUN/tenants.yaml"
# No limit at all (0: none): the policy's rules only count.
printf 'tenants:\n  - id: bench\n    host: 127.0.0.1\n    port: %s\n    maxConnectionRate: 0\n    maxClientConnections: 0\n' "$P_FAKE" >"$RUN/tenants-nolimits.yaml"

RESULTS="$RUN/results.tsv"
: >"$RESULTS"
MACHINE="$(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), kernel $(uname -r), node $(node -v), git $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- . 2>/dev/null || echo '-wip')"

# path -> port and whether every connection sends its own startup packet. The wait-cost steps
# (bench/baselines/haproxy-wait-cost.cfg), like static and Lua, are served by the baseline HAProxy.
WAIT_STEPS=(first-byte whole-packet lua-spoe-filter lua-smart-connect lua-smart-accept lua-defer-accept)
declare -A PORT=([static]=$P_STATIC [lua]=$P_LUA [memo-off]=$P_OFF [memo-on-hits]=$P_ON [memo-on-misses]=$P_ON [memo-off-nolimits]=$P_NL
  [first-byte]=$P_FIRST [whole-packet]=$P_WHOLE [lua-spoe-filter]=$P_LSPOE [lua-smart-connect]=$P_LSCON [lua-smart-accept]=$P_LSACC [lua-defer-accept]=$P_LDEFER)
declare -A UNIQ=()
for path in "${!PORT[@]}"; do UNIQ[$path]=0; done
UNIQ[memo-on-misses]=1
mapfile -t LISTEN < <(printf '%s\n' "${PORT[@]}" | sort -un)
read -r -a PATHS <<<"${BENCH_MEMO_PATHS:-static lua memo-off memo-on-hits memo-on-misses memo-off-nolimits}"
for path in "${PATHS[@]}"; do [ -n "${PORT[$path]:-}" ] || { log "unknown path $path in BENCH_MEMO_PATHS"; exit 1; }; done

# Every process started afresh STARTS times, the versions in turn (not indented: one body).
for START in $(seq 1 "$STARTS"); do
for HAP in "${HAPROXIES[@]}"; do
  VER="$("$HAP" -v 2>/dev/null | awk 'NR == 1 { print $3 }')"
  log "HAProxy $VER ($HAP), start $START of $STARTS"
  S="$VER-$START"
  # Static and Lua: the benchmark's own baseline configuration.
  start "baseline-$S" env BENCH_LUA="$ROOT/bench/baselines/lua-router.lua" BENCH_STATIC_PORT="$P_STATIC" BENCH_LUA_PORT="$P_LUA" \
    BENCH_TENANT_PORT="$P_FAKE" BENCH_PIDFILE="$RUN/baseline-$S.pid" BENCH_FIRST_BYTE_PORT="$P_FIRST" BENCH_WHOLE_PACKET_PORT="$P_WHOLE" \
    BENCH_LUA_SPOE_PORT="$P_LSPOE" BENCH_LUA_SMART_CONNECT_PORT="$P_LSCON" BENCH_LUA_SMART_ACCEPT_PORT="$P_LSACC" BENCH_LUA_DEFER_PORT="$P_LDEFER" \
    BENCH_SPOE_CONF="$ROOT/bench/baselines/unused-spoe.conf" BENCH_SPOE_PORT="$P_NOAGENT" \
    "$HAP" -db -f bench/baselines/haproxy-baseline.cfg -f bench/baselines/haproxy-wait-cost.cfg
  BASE_PID=$STARTED
  start "off-$S" env PGROUTE_HAPROXY="$HAP" node dist/cli/pgroute.js up --tenants "$RUN/tenants.yaml" --state-dir "$RUN/off-$S" \
    --port "$P_OFF" --bind 127.0.0.1 --agent-http-port "$P_OFF_HTTP" --stats-port 0 --log off --memo off
  OFF_PID=$STARTED
  start "on-$S" env PGROUTE_HAPROXY="$HAP" node dist/cli/pgroute.js up --tenants "$RUN/tenants.yaml" --state-dir "$RUN/on-$S" \
    --port "$P_ON" --bind 127.0.0.1 --agent-http-port "$P_ON_HTTP" --stats-port 0 --log off --memo on
  ON_PID=$STARTED
  start "nolimits-$S" env PGROUTE_HAPROXY="$HAP" node dist/cli/pgroute.js up --tenants "$RUN/tenants-nolimits.yaml" --state-dir "$RUN/nl-$S" \
    --port "$P_NL" --bind 127.0.0.1 --agent-http-port "$P_NL_HTTP" --stats-port 0 --log off --memo off
  NL_PID=$STARTED
  for p in "${LISTEN[@]}"; do
    wait_tcp "$p" 60
    "$RUN/connload" "$p" 1 2 0 app bench 1 | grep -q '"ok":1,' || { log "port $p does not route"; exit 1; }
  done
  # The processes whose CPU counts as HAProxy (and, for pgroute, as the agent) per path.
  declare -A OWNER=([memo-off]=$OFF_PID [memo-on-hits]=$ON_PID [memo-on-misses]=$ON_PID [memo-off-nolimits]=$NL_PID)
  for path in static lua "${WAIT_STEPS[@]}"; do OWNER[$path]=$BASE_PID; done
  if [ "${BENCH_MEMO_MEMORY:-1}" = 1 ] && [ "$START" = 1 ]; then
    # Memo memory at 100,000 entries: HAProxy's worker RSS and pool use before and after filling the
    # table, measured first, while the table is empty (filled later, the rounds' misses would have filled
    # it already: earlier runs counted only the entries the fill added, up to none). Then emptied again,
    # so that the rounds run as before (a hit looks its key up in a table of a few entries).
    ADM="$RUN/on-$S/haproxy-admin.sock"
    node_pid="$(pgrep -P "$ON_PID" -x node || echo "$ON_PID")"
    worker="$(tree_pids "$node_pid" | grep -vx "$node_pid" | tail -1)"
    rss0="$(awk '/VmRSS/ { print $2 }' /proc/"$worker"/status)"
    echo "show info" | admin "$ADM" | grep -E '^(PoolUsed_MB|PoolAlloc_MB)' >"$RUN/pool0-$VER" || true
    # Filled by real misses (100,000 unique startups): HAProxy 2.6 cannot insert a binary key through
    # its CLI ("not supported"), and real misses are what fills it anyway.
    used0="$(echo "show table" | admin "$ADM" | sed -n 's/^# table: pgroute-memo, .*used:\([0-9]*\).*/\1/p')"
    CONNLOAD_UNIQUE=1 "$RUN/connload" "$P_ON" 8 600 0 fill bench 100000 >"$RUN/fill-$VER.json"
    used="$(echo "show table" | admin "$ADM" | sed -n 's/^# table: pgroute-memo, .*used:\([0-9]*\).*/\1/p')"
    rss1="$(awk '/VmRSS/ { print $2 }' /proc/"$worker"/status)"
    echo "show info" | admin "$ADM" | grep -E '^(PoolUsed_MB|PoolAlloc_MB)' >"$RUN/pool1-$VER" || true
    echo "clear table pgroute-memo" | admin "$ADM" >/dev/null
    printf 'MEMORY\t%s\t%s\t%s\t%s\t%s\t%s\n' "$VER" "$((used - used0))" "$rss0" "$rss1" "$(tr '\n' ' ' <"$RUN/pool0-$VER")" "$(tr '\n' ' ' <"$RUN/pool1-$VER")" >>"$RESULTS"
    tail -1 "$RESULTS" >&2
  fi
  # Warm-up (JIT, pools, the memo's first entry), not measured.
  # The unique packets' names restart from the same counter at every connload run: the user name
  # (not a tenant key) differs per round instead, so that a later round's misses are not the
  # earlier rounds' (session 5's runs repeated them: rounds 2 and later were partly hits).
  for path in "${PATHS[@]}"; do CONNLOAD_UNIQUE="${UNIQ[$path]}" "$RUN/connload" "${PORT[$path]}" 8 1 0 warm bench >/dev/null; done
  for r in $(seq 1 "$ROUNDS"); do
    rn=$(((START - 1) * ROUNDS + r))   # rounds numbered across starts: each start's are their own pairs
    # Rotate the order each round, so that no path always runs first or last.
    ORDER=("${PATHS[@]:$(((rn - 1) % ${#PATHS[@]}))}" "${PATHS[@]:0:$(((rn - 1) % ${#PATHS[@]}))}")
    for path in "${ORDER[@]}"; do
      owner="${OWNER[$path]}"
      # HAProxy: every haproxy process under the owner (baseline: itself); agent: pgroute's node process.
      if [ "$owner" = "$BASE_PID" ]; then hap_pids="$owner"; agent_pids=""; else
        node_pid="$(pgrep -P "$owner" -x node || echo "$owner")"
        hap_pids="$(tree_pids "$node_pid" | grep -vx "$node_pid" | tr '\n' ' ')"; agent_pids="$node_pid"
      fi
      # shellcheck disable=SC2086
      h0="$(cpu_ns $hap_pids)"; a0="$(cpu_ns $agent_pids)"
      user=app; [ "${UNIQ[$path]}" = 0 ] || user="miss$rn"
      out="$(CONNLOAD_UNIQUE="${UNIQ[$path]}" "$RUN/connload" "${PORT[$path]}" 8 "$SECONDS_PER" 0 "$user" bench)"
      # shellcheck disable=SC2086
      h1="$(cpu_ns $hap_pids)"; a1="$(cpu_ns $agent_pids)"
      load="$(cut -d' ' -f1 /proc/loadavg)"
      python3 - "$VER" "$rn" "$path" "$out" "$h0" "$h1" "$a0" "$a1" "$load" >>"$RESULTS" <<'EOF'
import json, sys
ver, r, path, out, h0, h1, a0, a1, load = sys.argv[1:]
o = json.loads(out)
# No warm-up inside the run: the CPU window and the connections counted are the same.
conns_total = max(1, o["ok"] + o["errors"])
print("\t".join([ver, r, path, f'{o["rate"]:.0f}', str(o["errors"]), f'{(int(h1) - int(h0)) / 1000 / conns_total:.1f}', f'{(int(a1) - int(a0)) / 1000 / conns_total:.1f}', f'{o["p50Ms"]:.3f}', load]))
EOF
      tail -1 "$RESULTS" >&2
    done
  done

  stop_group "$NL_PID"; stop_group "$ON_PID"; stop_group "$OFF_PID"; stop_group "$BASE_PID"
  sleep 1
done
done

WAIT_STEPS="${WAIT_STEPS[*]}" python3 - "$RESULTS" "$MACHINE" "$ROUNDS rounds in each of $STARTS process start(s)" "$SECONDS_PER" >"$RUN/report.md" <<'EOF'
import os, sys, statistics
path, machine, rounds, secs = sys.argv[1:5]
rows, mem = [], []
for line in open(path):
    f = line.rstrip("\n").split("\t")
    if f[0] == "MEMORY": mem.append(f[1:])
    else: rows.append(f)
vers = list(dict.fromkeys(r[0] for r in rows))
WAIT_STEPS = os.environ["WAIT_STEPS"].split()
paths = ["static"] + WAIT_STEPS[:2] + ["lua"] + WAIT_STEPS[2:] + ["memo-off", "memo-on-hits", "memo-on-misses", "memo-off-nolimits"]
def agg(ver, p, i):
    v = [float(r[i]) for r in rows if r[0] == ver and r[2] == p]
    return statistics.mean(v) if v else float("nan")
# Ratios: of the paths' means, and (more robust on a shared machine, where a whole round can run
# slow) the median of each round's own ratio, with the rounds' range.
RATIOS = [("memo off / static", "memo-off", "static"), ("memo on, hits / static", "memo-on-hits", "static"),
          ("memo on, misses / static", "memo-on-misses", "static"), ("memo on, hits / Lua", "memo-on-hits", "lua"),
          ("memo off / Lua", "memo-off", "lua"), ("memo on, hits / memo off", "memo-on-hits", "memo-off"),
          ("Lua / static", "lua", "static"), ("limits / no limits (memo off)", "memo-off", "memo-off-nolimits")]
RATIOS += [(f"{p} / static", p, "static") for p in WAIT_STEPS[:2]] + [(f"{p} / Lua", p, "lua") for p in WAIT_STEPS[2:]]
present = set(r[2] for r in rows)
ratios = [x for x in RATIOS if x[1] in present and x[2] in present]
bold = lambda name, text: f"**{text}**" if name in ("memo on, hits / static", "memo on, hits / Lua") else text
print("## Ratios first (router-only conn/s, mean of %s, %s s each, concurrency 8)\n" % (rounds, secs))
print("| HAProxy | " + " | ".join(x[0] for x in ratios) + " |")
print("|---|" + "---|" * len(ratios))
for v in vers:
    print(f"| {v} | " + " | ".join(bold(n, f"{agg(v, a, 3) / agg(v, b, 3):.2f}") for n, a, b in ratios) + " |")
def per_round_pairs(v, a, b):
    out = []
    for r in sorted(set(x[1] for x in rows if x[0] == v), key=int):
        ra = [float(x[3]) for x in rows if x[0] == v and x[1] == r and x[2] == a]
        rb = [float(x[3]) for x in rows if x[0] == v and x[1] == r and x[2] == b]
        if ra and rb and rb[0] > 0: out.append((int(r), ra[0] / rb[0]))
    return out
def per_round(v, a, b): return [q for _, q in per_round_pairs(v, a, b)]
def ratio_table(title, cell):
    print(f"\n## {title}\n")
    print("| HAProxy | " + " | ".join(x[0] for x in ratios) + " |")
    print("|---|" + "---|" * len(ratios))
    for v in vers: print(f"| {v} | " + " | ".join(cell(v, n, a, b) for n, a, b in ratios) + " |")
def median_range(v, n, a, b):
    pr = per_round(v, a, b)
    return bold(n, f"{statistics.median(pr):.2f}") + f" ({min(pr):.2f} .. {max(pr):.2f})" if pr else ""
ratio_table("The same ratios per round: median (min .. max) of each round's own ratio", median_range)
# With several process starts (BENCH_MEMO_STARTS): each start's own median, to show what a whole run
# in one set of processes can lean (rows are numbered across starts, `rounds` per start).
per_start = int(rounds.split()[0])
starts = max([(int(x[1]) - 1) // per_start + 1 for x in rows] or [1])
def per_start_medians(v, n, a, b):
    by = {}
    for r, q in per_round_pairs(v, a, b): by.setdefault((r - 1) // per_start, []).append(q)
    return ", ".join(f"{statistics.median(by[k]):.2f}" for k in sorted(by))
if starts > 1: ratio_table("The same ratios per process start: each start's median of its rounds' ratios", per_start_medians)
print("\n## Per path\n")
print("| HAProxy | path | conn/s | errors | HAProxy CPU µs/conn | agent (node) CPU µs/conn | p50 connect ms | load avg |")
print("|---|---|---|---|---|---|---|---|")
for v in vers:
    for p in [p for p in paths if p in present]:
        errs = sum(int(r[4]) for r in rows if r[0] == v and r[2] == p)
        loads = [r[8] for r in rows if r[0] == v and r[2] == p]
        print(f"| {v} | {p} | {agg(v,p,3):.0f} | {errs} | {agg(v,p,5):.1f} | {agg(v,p,6):.1f} | {agg(v,p,7):.3f} | {', '.join(loads)} |")
print("\n## Memo memory at 100,000 entries (filled by 100,000 unique startups; entries = those added)\n")
print("| HAProxy | entries | worker VmRSS before kB | after kB | per entry bytes | pools before | pools after |")
print("|---|---|---|---|---|---|---|")
for m in mem:
    ver, used, r0, r1, p0, p1 = m
    per = (int(r1) - int(r0)) * 1024 / max(1, int(used or 0))
    print(f"| {ver} | {used} | {r0} | {r1} | {per:.0f} | {p0} | {p1} |")
print(f"\nMachine: {machine}. Raw rows: version, round, path, conn/s, errors, HAProxy µs/conn, agent µs/conn, p50 ms, load.\n")
print("```")
for r in rows: print("\t".join(r))
print("```")
EOF
cat "$RUN/report.md"
cp "$RUN/report.md" "$OUT"
log "written to $OUT"
