# Sourced by bench/ab.sh and bench/memo.sh (needs RUN, the scratch directory, and BENCH_NAME, the
# name their messages start with): every process a bench starts is in its own process group, listed
# in $RUN/pids, and stopped on any exit (success, failure, Ctrl-C, SIGTERM); the scratch directory
# is removed after a success unless BENCH_KEEP=1.
: >"$RUN/pids"
cleanup() {
  local rc=$? pid
  trap - EXIT INT TERM
  while read -r pid; do
    [ -n "${pid:-}" ] || continue
    kill -0 -- "-$pid" 2>/dev/null || continue
    kill -TERM -- "-$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 -- "-$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL -- "-$pid" 2>/dev/null || true
  done <"$RUN/pids"
  if [ "$rc" -eq 0 ] && [ "${BENCH_KEEP:-0}" != 1 ]; then rm -rf "$RUN"; else echo "$BENCH_NAME: scratch directory kept: $RUN" >&2; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log() { echo "$BENCH_NAME: $*" >&2; }

# start <name> <cmd...>: in its own process group (setsid), pid in $STARTED, output in $RUN/<name>.log
start() {
  local name="$1"; shift
  setsid "$@" >"$RUN/$name.log" 2>&1 &
  STARTED=$!
  echo "$STARTED" >>"$RUN/pids"
}

# tree_pids <pid>: the process and its descendants
tree_pids() {
  local p
  echo "$1"
  for p in $(pgrep -P "$1" || true); do tree_pids "$p"; done
}

# cpu_ns <pid>...: CPU time (ns) of the processes' threads so far, summed (/proc schedstat)
cpu_ns() { local p s=0 v; for p in "$@"; do v="$(cat /proc/"$p"/task/*/schedstat 2>/dev/null | awk '{ s += $1 } END { printf "%.0f", s }')"; s=$((s + ${v:-0})); done; echo "$s"; }

# admin <unix socket>: sends stdin to HAProxy's CLI there and prints the answer
admin() { /usr/bin/python3 -c '
import socket,sys
s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.sendall(sys.stdin.buffer.read())
out=b""
while True:
    d=s.recv(65536)
    if not d: break
    out+=d
sys.stdout.write(out.decode())' "$1"; }
