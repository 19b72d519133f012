#!/usr/bin/env bash
# `pgroute generate` of several commits side by side (issue #8's "10k-tenant apply"): each commit
# built apart (bench/build-ref.sh) and run through its CLI only, the variants alternating in one run.
#
#   bench/generate.sh [reps] [N] <label>=<ref> <label>=<ref> ...   (<ref>: a commit, or a built tree's directory)
#
# Per repetition and variant (the order rotates every repetition): `generate` of N tenants and of one
# tenant, each in a fresh state directory. CPU seconds (user + system) of the whole command, of its
# `haproxy -c` alone (PGROUTE_HAPROXY points at a wrapper that times it) and of node (the difference);
# node at one tenant is the start-up (module loading, settings, templates, a tiny render), node at N
# minus node at one the per-tenant work. BENCH_GEN_ICOUNT=1 adds callgrind instruction counts of the
# node process (children not followed) at N and at one tenant, and of `haproxy -c` of the rendered
# files: counts that load bends far less than time (minutes a run). The same ref under two labels
# shows the noise band. Ratios are to the first label. Rendered files are compared between the
# variants (paths of state directory and tree replaced) and their digests printed.
# BENCH_AB_CACHE: where builds are kept (default /tmp/pgroute-ab-trees); BENCH_KEEP=1 keeps the scratch.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
REPS="${1:?usage: bench/generate.sh reps N label=ref...}"
NTEN="${2:?N}"
shift 2
[ "$#" -ge 2 ] || { echo "generate: give at least two label=ref" >&2; exit 2; }

RUN="$(mktemp -d /tmp/pgroute-gen.XXXXXX)"
trap 'rc=$?; if [ "$rc" -eq 0 ] && [ "${BENCH_KEEP:-0}" != 1 ]; then rm -rf "$RUN"; else echo "generate: scratch kept: $RUN" >&2; fi' EXIT
. "$ROOT/bench/build-ref.sh"

LABELS=(); TREES=()
for spec in "$@"; do
  LABELS+=("${spec%%=*}")
  # a directory with a built pgroute (dist/cli/pgroute.js) stands for itself: an experiment not committed
  if [ -f "${spec#*=}/dist/cli/pgroute.js" ]; then TREES+=("$(cd "${spec#*=}" && pwd)"); else TREES+=("$(build "${spec#*=}")"); fi
done

tenants() {
  python3 - "$RUN/tenants-$1.yaml" "$1" <<'EOF'
import sys
path, n = sys.argv[1], int(sys.argv[2])
with open(path, "w") as f:
    f.write("tenants:\n")
    for i in range(n):
        f.write(f"  - id: t{i}\n    host: 127.0.0.1\n    port: 22620\n")
EOF
}
tenants "$NTEN"
tenants 1

cat >"$RUN/haproxy" <<'EOF'
#!/bin/sh
exec /usr/bin/time -a -o "$GEN_HAPTIME" -f '%U %S' /usr/sbin/haproxy "$@"
EOF
chmod +x "$RUN/haproxy"

# once <tree> <n> [callgrind]: prints "total haproxy node" CPU seconds, or the node's instructions
once() {
  local tree="$1" n="$2" out tool=()
  out="$(mktemp -d "$RUN/g.XXXXXX")"
  [ "${3:-}" != callgrind ] || tool=(valgrind --tool=callgrind --callgrind-out-file="$out/cg")
  GEN_HAPTIME="$out/haproxy.time" PGROUTE_HAPROXY="$RUN/haproxy" /usr/bin/time -o "$out/all.time" -f '%U %S' \
    "${tool[@]}" node "$tree/dist/cli/pgroute.js" generate --tenants "$RUN/tenants-$n.yaml" --state-dir "$out/state" \
    --port 22600 --bind 127.0.0.1 --agent-port 22610 --stats-port 0 --log off >"$out/log" 2>&1 || { cat "$out/log" >&2; exit 1; }
  if [ "${3:-}" = callgrind ]; then
    awk '/^totals:/ { print $2 }' "$out/cg"
  else
    python3 - "$out/all.time" "$out/haproxy.time" <<'EOF'
import sys
total = sum(float(x) for x in open(sys.argv[1]).read().split())
hap = sum(float(x) for x in open(sys.argv[2]).read().split())
print(f"{total:.2f} {hap:.2f} {total - hap:.2f}")
EOF
  fi
  echo "$out" >"$RUN/last"
}

echo "generate of $NTEN tenants; $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg), $(haproxy -v | head -1), node $(node -v)"
for k in "${!LABELS[@]}"; do echo "VARIANT	${LABELS[$k]}	${TREES[$k]}"; done

# What each variant writes at N tenants (and its haproxy -c instruction count when asked)
for k in "${!LABELS[@]}"; do
  once "${TREES[$k]}" "$NTEN" >/dev/null
  out="$(cat "$RUN/last")"
  d="$(cat "$out/state/haproxy.cfg" "$out/state/spoe.conf" "$out/state/routes.json" | sed -e "s#$out/state#<state>#g; s#${TREES[$k]}#<tree>#g" | sha256sum | cut -c1-16)"
  printf 'OUTPUT\t%s\thaproxy.cfg + spoe.conf + routes.json digest %s\n' "${LABELS[$k]}" "$d"
  if [ "${BENCH_GEN_ICOUNT:-0}" = 1 ]; then
    valgrind --tool=callgrind --callgrind-out-file="$out/hap.cg" /usr/sbin/haproxy -c -f "$out/state/haproxy.cfg" >/dev/null 2>&1
    printf 'RAW\thaproxy -c instructions\t%s\t%s\n' "${LABELS[$k]}" "$(awk '/^totals:/ { print $2 }' "$out/hap.cg")"
  fi
done

: >"$RUN/values"
for i in $(seq 1 "$REPS"); do
  for j in "${!LABELS[@]}"; do
    k=$(( (j + i - 1) % ${#LABELS[@]} ))
    l="${LABELS[$k]}"; t="${TREES[$k]}"
    read -r tn hn nn <<<"$(once "$t" "$NTEN")"
    read -r t1 h1 n1 <<<"$(once "$t" 1)"
    printf 'RAW\tcpu s\trep %s\t%s\tload %s\t%s tenants: total %s haproxy-c %s node %s\t1 tenant: total %s haproxy-c %s node %s\n' "$i" "$l" "$(cut -d' ' -f1 /proc/loadavg)" "$NTEN" "$tn" "$hn" "$nn" "$t1" "$h1" "$n1"
    {
      echo "$l|generate $NTEN, CPU s (all)|$tn"
      echo "$l|generate $NTEN, CPU s of node|$nn"
      echo "$l|generate $NTEN, CPU s of haproxy -c|$hn"
      echo "$l|generate 1, CPU s of node (start-up)|$n1"
      echo "$l|node per-tenant work, CPU s ($NTEN minus 1)|$(echo "$nn - $n1" | bc)"
    } >>"$RUN/values"
    if [ "${BENCH_GEN_ICOUNT:-0}" = 1 ]; then
      a="$(once "$t" "$NTEN" callgrind)"; b="$(once "$t" 1 callgrind)"
      printf 'RAW\tnode instructions\trep %s\t%s\t%s tenants: %s\t1 tenant: %s\n' "$i" "$l" "$NTEN" "$a" "$b"
      {
        echo "$l|node instructions (G), $NTEN tenants|$(echo "scale=4; $a / 1000000000" | bc)"
        echo "$l|node instructions (G), 1 tenant (start-up)|$(echo "scale=4; $b / 1000000000" | bc)"
        echo "$l|node instructions (G), per-tenant work|$(echo "scale=4; ($a - $b) / 1000000000" | bc)"
      } >>"$RUN/values"
    fi
  done
done

python3 - "$RUN/values" "${LABELS[@]}" <<'EOF'
import sys, statistics
path, labels = sys.argv[1], sys.argv[2:]
vals, figures = {}, []
for line in open(path):
    l, fig, v = line.rstrip("\n").split("|")
    if fig not in figures: figures.append(fig)
    vals.setdefault((fig, l), []).append(float(v))
for fig in figures:
    med = {l: statistics.median(vals[(fig, l)]) for l in labels if (fig, l) in vals}
    for l in labels:
        v = vals.get((fig, l), [])
        if v: print(f"SUMMARY\t{fig}\t{l}\tmedian {med[l]:.3f}\tmin {min(v):.3f}\tmax {max(v):.3f}\tn {len(v)}\t[{' '.join(f'{x:.3f}' for x in v)}]")
    base = labels[0]
    for l in labels[1:]:
        if l in med and med.get(base): print(f"RATIO\t{fig}\t{l}/{base}\t{med[l] / med[base]:.3f}")
EOF
