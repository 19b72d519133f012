#!/usr/bin/env bash
# Where HAProxy's CPU per router-only connection goes (issue #13, step 1): bench/ab.sh run with one
# commit on both sides, side B's rendered haproxy.cfg edited to leave one part of the per-connection
# work out. Counts load cannot bend (callgrind instructions of the HAProxy worker, per connection).
#
#   bench/memo-split.sh [ref] [reps] [tool]   tool: icount-haproxy (default) | cputime | syscalls
#
# Variants (B against A = the commit as rendered):
#   nospoe     the SPOE exchange replaced by the verdict the agent gives (set-var be/t/tgt): the
#              `filter spoe` stays (a memo miss needs it), so this is a memo hit's ceiling
#   nocancel   the cancel-record rules left out (cid, ca/cb, the fast path's accept, track-sc2, slots);
#              memo off only (a memo on writes its entries with the id)
#   nopolicy   the per-tenant policy rules left out (track-sc0/sc1, limits)
#   notcpka    the six keepalive lines left out (clitcpka-*/srvtcpka-*)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
REF="${1:-HEAD}"
REPS="${2:-1}"
TOOL="${3:-icount-haproxy}"
export BENCH_AB_PORT_BASE="${BENCH_AB_PORT_BASE:-23800}"
VERDICT='tcp-request content set-var(txn.pgr.be) str(pg.bench.primary) if \1\n    tcp-request content set-var(txn.pgr.t) str(bench) if \1\n    tcp-request content set-var(txn.pgr.tgt) str(primary) if \1'
declare -A SED=(
  [nospoe]="s/tcp-request content send-spoe-group pgroute pgroute-startup if \(.*\)/$VERDICT/"
  [nocancel]="/txn\.pgr\.cid\|pgr_cid\|pgr_cancel_\|txn\.pgr\.c[hs])/d"
  [nopolicy]="/pgr_counted\|pgr_cap\|pgr_rate\|pgr_client_rate\|pgr_over_/d"
  [notcpka]="/tcpka-\(idle\|intvl\|cnt\)/d"
)
for v in ${MEMO_SPLIT_VARIANTS:-nospoe nocancel nopolicy notcpka}; do
  echo "=== variant $v: A = $REF as rendered, B = $REF with: ${SED[$v]}"
  (export BENCH_AB_SED_B="${SED[$v]}"; bench/ab.sh "$TOOL" "$REF" "$REF" "$REPS" 2>&1 || echo "FAILED ab.sh exited $?") | grep -E '^(RAW|SUMMARY|RATIO|FAILED|A = |ab: )' | sed "s/^/$v\t/"
done
