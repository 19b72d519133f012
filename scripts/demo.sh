#!/usr/bin/env bash
# Quick start: set up this machine, start three sample PostgreSQL tenants (and declare a disabled
# one), then run `pgroute up` in the foreground. Ctrl-C stops pgroute and the sample servers.
#
#   scripts/demo.sh            public port 5432 (PGROUTE_PORT=6543 scripts/demo.sh for another)
set -euo pipefail
cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.."

scripts/setup.sh

PORT=${PGROUTE_PORT:-5432}
STATE=$PWD/.pgroute/demo
PG_BIN=/usr/lib/postgresql/15/bin
TENANTS=(acme globex initech)
FIRST_PG_PORT=${PGROUTE_DEMO_PG_PORT:-15433}

say() { printf 'demo: %s\n' "$*"; }
as_pg() { if [[ $(id -u) -eq 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi; }

stop_servers() {
  for t in "${TENANTS[@]}"; do
    [[ -f $STATE/pg/$t/postmaster.pid ]] && as_pg "$PG_BIN/pg_ctl" -D "$STATE/pg/$t" -m fast stop >/dev/null 2>&1 || true
  done
}
trap stop_servers EXIT

mkdir -p "$STATE/pg"
[[ $(id -u) -eq 0 ]] && chown postgres "$STATE/pg"
port=$FIRST_PG_PORT
{
  echo "# Written by scripts/demo.sh: three sample tenants and a disabled one."
  echo "tenants:"
} > "$STATE/tenants.yaml"
for t in "${TENANTS[@]}"; do
  dir=$STATE/pg/$t
  if [[ ! -f $dir/PG_VERSION ]]; then
    say "creating sample tenant $t (PostgreSQL on 127.0.0.1:$port)"
    as_pg "$PG_BIN/initdb" -D "$dir" --auth=trust --username=postgres -E UTF8 --locale=C --no-sync >/dev/null
  fi
  as_pg "$PG_BIN/pg_ctl" -D "$dir" -l "$dir/server.log" -w \
    -o "-p $port -c listen_addresses=127.0.0.1 -c unix_socket_directories=$dir -c cluster_name=$t -c fsync=off" start >/dev/null
  as_pg "$PG_BIN/psql" -h 127.0.0.1 -p "$port" -U postgres -qAt -c \
    "DO \$\$BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname='app') THEN CREATE ROLE app LOGIN; END IF; END\$\$;" postgres
  as_pg "$PG_BIN/psql" -h 127.0.0.1 -p "$port" -U postgres -qAt -c "SELECT 1 FROM pg_database WHERE datname='$t'" postgres | grep -q 1 ||
    as_pg "$PG_BIN/createdb" -h 127.0.0.1 -p "$port" -U postgres -O app "$t"
  printf '  - id: %s\n    host: 127.0.0.1\n    port: %s\n' "$t" "$port" >> "$STATE/tenants.yaml"
  port=$((port + 1))
done
printf '  - id: umbrella\n    host: 127.0.0.1\n    port: %s\n    enabled: false\n' "$FIRST_PG_PORT" >> "$STATE/tenants.yaml"

cat <<TXT

demo: pgroute listens on port $PORT. In another terminal:
  psql "host=127.0.0.1 port=$PORT dbname=acme user=app" -c 'SHOW cluster_name'
  psql "host=127.0.0.1 port=$PORT dbname=globex user=app" -c 'SHOW cluster_name'
  psql "host=127.0.0.1 port=$PORT dbname=umbrella user=app"     # disabled: refused
  psql "host=127.0.0.1 port=$PORT dbname=postgres user=app options='-c pgroute.tenant=initech'"
demo: Ctrl-C stops pgroute and the sample servers.

TXT
node dist/cli/pgroute.js up --tenants "$STATE/tenants.yaml" --port "$PORT" --state-dir "$STATE/run"
