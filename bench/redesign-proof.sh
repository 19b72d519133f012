#!/usr/bin/env bash
# Issue #8's benchmark proof in one run: the redesign against the commit before it, by the existing
# scripts in turn (each commit built apart, driven through its CLI), ratios first.
#
#   bench/redesign-proof.sh <before> <after> [info]     e.g. 4fe1ed6 h/proof8-r8fix main
#
# (a) the agent alone: instructions per decision (callgrind) and decisions per agent CPU-second
#     (native): bench/ab.sh agent <before> <after>; and <before> against [info] when given
# (b) router-only: instructions per connection of HAProxy's worker and of the agent (callgrind):
#     bench/ab.sh icount <before> <after>, the agent past its warm-up (connections PROOF_AGENT_CONNS,
#     default 3000 to 9000); then the agent in ab.sh's default window (200 to 1,200: V8's warm-up)
# (c) `generate` of PROOF_TENANTS (10,000) tenants: bench/generate.sh with BENCH_GEN_ICOUNT=1,
#     <before> twice (the noise band) and <after>
# The tenant sets no admission limit (BENCH_AB_LIMITS=absent): commits before #12 refuse the field.
# PROOF_REPS (default 1): repetitions of each ab.sh pair and of generate.sh. The load average is
# sampled every 10 s for the whole run. Ports: bench/ab.sh's (BENCH_AB_PORT_BASE); generate opens none.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
BEFORE="${1:?usage: bench/redesign-proof.sh <before> <after> [info]}"
AFTER="${2:?after}"
INFO="${3:-}"
REPS="${PROOF_REPS:-1}"
NTEN="${PROOF_TENANTS:-10000}"
export BENCH_AB_LIMITS="${BENCH_AB_LIMITS:-absent}"
RUN="$(mktemp -d /tmp/pgroute-proof.XXXXXX)"
( while :; do echo "$(date -u +%H:%M:%S) $(cut -d' ' -f1 /proc/loadavg)"; sleep 10; done ) >"$RUN/load" &
SAMPLER=$!
trap 'kill "$SAMPLER" 2>/dev/null || true' EXIT

# section <name> <command...>: the command's output kept (stderr too), its RATIO lines collected
section() {
  local name="$1"; shift
  echo "### $name: $* (started $(date -u +%H:%M:%S), load $(cut -d' ' -f1-3 /proc/loadavg))" >>"$RUN/raw"
  "$@" >"$RUN/$name.out" 2>"$RUN/$name.err" || { cat "$RUN/$name.err" >&2; echo "proof: $name failed" >&2; exit 1; }
  cat "$RUN/$name.out" >>"$RUN/raw"
  grep -v '^ab: building\|^$' "$RUN/$name.err" | sed 's/^/stderr: /' >>"$RUN/raw" || true
  echo "### $name ended $(date -u +%H:%M:%S)" >>"$RUN/raw"
  awk -F'\t' -v s="$name" '$1 == "RATIO" { print s "\t" $2 "\t" $3 "\t" $4 }' "$RUN/$name.out" >>"$RUN/ratios"
}
: >"$RUN/ratios"; : >"$RUN/raw"

section agent bench/ab.sh agent "$BEFORE" "$AFTER" "$REPS"
section router env BENCH_AB_AGENT_CONNS="${PROOF_AGENT_CONNS:-3000 9000}" bench/ab.sh icount "$BEFORE" "$AFTER" "$REPS"
section router-warmup bench/ab.sh icount-agent "$BEFORE" "$AFTER" "$REPS"
section generate env BENCH_GEN_ICOUNT=1 bench/generate.sh "$REPS" "$NTEN" "before=$BEFORE" "before2=$BEFORE" "after=$AFTER"
[ -z "$INFO" ] || section agent-info bench/ab.sh agent "$BEFORE" "$INFO" "$REPS"

echo "# Issue #8's benchmark proof: before = $BEFORE ($(git rev-parse --short "$BEFORE")), after = $AFTER ($(git rev-parse --short "$AFTER"))${INFO:+, info = $INFO ($(git rev-parse --short "$INFO"))}"
echo "$(nproc) CPUs, $(haproxy -v | head -1), node $(node -v); load average sampled every 10 s: $(awk '{ print $2 }' "$RUN/load" | sort -n | awk '{ v[NR] = $1 } END { printf "min %s, median %s, max %s (%d samples)", v[1], v[int((NR + 1) / 2)], v[NR], NR }')"
echo
echo "## Ratios (after / before, or the named label / before; medians of the runs)"
echo
echo "| section | figure | which | ratio |"
echo "|---|---|---|---|"
awk -F'\t' '{ printf "| %s | %s | %s | %s |\n", $1, $2, $3, $4 }' "$RUN/ratios"
echo
echo "## Raw output"
echo
echo '```'
cat "$RUN/raw"
echo '```'
echo
echo "## Load average (every 10 s)"
echo
echo '```'
paste -d' ' - - - - - - <"$RUN/load"
echo '```'
rm -rf "$RUN"
