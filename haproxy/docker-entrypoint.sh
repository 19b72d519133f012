#!/bin/sh
# Entrypoint of pgroute's HAProxy image: waits until pgroute (`pgroute watch`, in its own container
# on the same state volume) has rendered and validated haproxy.cfg, then runs HAProxy in
# master-worker mode in the foreground, with the master CLI in the state dir so pgroute can reload
# it (`reload`, `show proc`) and the admin socket (declared in haproxy.cfg) to drive it.
#
# Arguments starting with "-" are added to HAProxy's command line; any other command is run as is
# (e.g. `docker run --rm <image> haproxy -vv`). `--health` (the image's HEALTHCHECK) succeeds when
# the public port PGROUTE_PORT (default 5432) listens.
set -eu

if [ "${1:-}" = --health ]; then
  hex=$(printf '%04X' "${PGROUTE_PORT:-5432}")
  # Local address is field 2 (ADDR:PORT in hex), state is field 4 (0A = LISTEN).
  cat /proc/net/tcp /proc/net/tcp6 2>/dev/null | awk -v port=":$hex" '$4 == "0A" && substr($2, length($2) - 4) == port { found = 1 } END { exit !found }'
  exit
fi

if [ "$#" -gt 0 ] && [ "${1#-}" = "$1" ]; then
  exec "$@"
fi

STATE_DIR=${PGROUTE_STATE_DIR:-/var/lib/pgroute}
CFG=$STATE_DIR/haproxy.cfg
MASTER=$STATE_DIR/haproxy-master.sock

# Unbounded on purpose: pgroute shares this container's network namespace in the compose
# deployment, so this container must stay up while pgroute starts (or restarts).
i=0
while [ ! -s "$CFG" ]; do
  if [ $((i % 50)) -eq 0 ]; then
    echo "pgroute-haproxy: waiting for $CFG (rendered by pgroute watch on the same state volume)" >&2
  fi
  i=$((i + 1))
  sleep 0.2
done

echo "pgroute-haproxy: starting HAProxy with $CFG, master CLI $MASTER" >&2
exec haproxy -W -db -S "$MASTER,mode,600" -f "$CFG" "$@"
