# Sourced by bench/ab.sh and bench/cost.sh. haproxy_cmd <haproxy>: sets HAPROXY_CMD to the command
# that runs that HAProxy with no shell in between, so that valgrind or strace put before it count
# HAProxy itself. <haproxy> is a binary (/usr/sbin/haproxy: itself) or a launcher of
# scripts/haproxy-versions.sh (a debootstrap root's haproxy, 3.0 or 3.2): a `sh` script whose one
# `exec` runs the root's loader with the root's libraries on the root's binary; its words are taken
# as they are (valgrind can run a loader as the program: it follows the binary that loader loads).
haproxy_cmd() {
  local bin="$1" line
  if head -c 4 "$bin" | grep -q ELF; then HAPROXY_CMD=("$bin"); return 0; fi
  # The exec line with its continuation lines joined, without `exec` and the trailing "$@"
  line="$(sed -e ':a' -e '/\\$/{N;s/\\\n//;ba' -e '}' "$bin" | sed -n 's/^exec \(.*\) "\$@" *$/\1/p')"
  [ -n "$line" ] || { echo "haproxy_cmd: $bin is neither an ELF binary nor a launcher of scripts/haproxy-versions.sh (no 'exec ... \"\$@\"' line)" >&2; return 1; }
  eval "HAPROXY_CMD=($line)"
}
