#!/usr/bin/env bash
# Quick start: set up this machine, start three sample PostgreSQL tenants (and declare a disabled
# one), then run `pgroute up` in the foreground. Ctrl-C stops pgroute and the sample servers.
#
#   scripts/demo.sh                   public port 5432 on 127.0.0.1, TLS on
#   PGROUTE_PORT=6543 scripts/demo.sh another port
#   PGROUTE_BIND=0.0.0.0 scripts/demo.sh   reachable from other machines (asked for, not the default)
#
# Everything listens on 127.0.0.1 unless PGROUTE_BIND says otherwise. The sample servers require a
# password (SCRAM); it is made once, printed once, and kept in <state>/pgpass (mode 0600) for
# PGPASSFILE. TLS is on (pgroute's own CA, `pgroute cert ca`), so sslmode=require and verify-full
# work. PGROUTE_DEMO_DIR (default .pgroute/demo) holds it all; DEMO_SKIP_SETUP=1 skips setup.sh.
set -euo pipefail
cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.."

# The demo needs no Docker: setup.sh installs and starts dockerd only for the tests (SETUP_DOCKER=1).
[[ ${DEMO_SKIP_SETUP:-0} == 1 ]] || scripts/setup.sh

PORT=${PGROUTE_PORT:-5432}
BIND=${PGROUTE_BIND:-127.0.0.1}
STATE=$(readlink -f "${PGROUTE_DEMO_DIR:-$PWD/.pgroute/demo}")
PG_BIN=/usr/lib/postgresql/15/bin
TENANTS=(acme globex initech)
FIRST_PG_PORT=${PGROUTE_DEMO_PG_PORT:-15433}
PGPASS=$STATE/pgpass

say() { printf 'demo: %s\n' "$*"; }
as_pg() { if [[ $(id -u) -eq 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi; }

stop_servers() {
  for t in "${TENANTS[@]}"; do
    [[ -f $STATE/pg/$t/postmaster.pid ]] && as_pg "$PG_BIN/pg_ctl" -D "$STATE/pg/$t" -m fast stop >/dev/null 2>&1 || true
  done
}
trap stop_servers EXIT

mkdir -p "$STATE"
chmod 0700 "$STATE"
# One password for the sample roles (postgres and app), made once. Sample servers from an older
# demo trusted everyone: they are made again, with the password.
if [[ ! -s $PGPASS ]]; then
  rm -rf "$STATE/pg"
  password=$(head -c 18 /dev/urandom | base64 | tr '+/' '-_')
  (umask 077; printf '*:*:*:postgres:%s\n*:*:*:app:%s\n' "$password" "$password" > "$PGPASS")
  new_password=true
else
  password=$(awk -F: '$4 == "app" { print $5; exit }' "$PGPASS")
  new_password=false
fi
mkdir -p "$STATE/pg"
if [[ $(id -u) -eq 0 ]]; then chown postgres "$STATE/pg"; chmod 0711 "$STATE"; fi

port=$FIRST_PG_PORT
{
  echo "# Written by scripts/demo.sh: three sample tenants and a disabled one."
  echo "tenants:"
} > "$STATE/tenants.yaml"
for t in "${TENANTS[@]}"; do
  dir=$STATE/pg/$t
  if [[ ! -f $dir/PG_VERSION ]]; then
    say "creating sample tenant $t (PostgreSQL on 127.0.0.1:$port)"
    pwfile=$(mktemp)
    printf '%s\n' "$password" > "$pwfile"
    [[ $(id -u) -eq 0 ]] && chown postgres "$pwfile"
    as_pg "$PG_BIN/initdb" -D "$dir" --auth=scram-sha-256 --pwfile="$pwfile" --username=postgres -E UTF8 --locale=C --no-sync >/dev/null
    rm -f "$pwfile"
  fi
  as_pg "$PG_BIN/pg_ctl" -D "$dir" -l "$dir/server.log" -w \
    -o "-p $port -c listen_addresses=127.0.0.1 -c unix_socket_directories=$dir -c cluster_name=$t -c fsync=off" start >/dev/null
  admin=(env PGPASSWORD="$password" "$PG_BIN/psql" -h 127.0.0.1 -p "$port" -U postgres -qAt)
  "${admin[@]}" -c "DO \$\$BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname='app') THEN CREATE ROLE app LOGIN; END IF; END\$\$;" postgres
  "${admin[@]}" -c "ALTER ROLE app PASSWORD '$password'" postgres
  "${admin[@]}" -c "SELECT 1 FROM pg_database WHERE datname='$t'" postgres | grep -q 1 ||
    "${admin[@]}" -c "CREATE DATABASE $t OWNER app" postgres
  printf '  - id: %s\n    host: 127.0.0.1\n    port: %s\n' "$t" "$port" >> "$STATE/tenants.yaml"
  port=$((port + 1))
done
printf '  - id: umbrella\n    host: 127.0.0.1\n    port: %s\n    enabled: false\n' "$FIRST_PG_PORT" >> "$STATE/tenants.yaml"

if $new_password; then
  say "the sample roles app and postgres have the password $password (shown once; kept in $PGPASS)"
fi
host=127.0.0.1
[[ $BIND == 127.0.0.1 ]] || host=$(hostname)
cat <<TXT

demo: pgroute listens on $BIND:$PORT with TLS. In another terminal:
  export PGPASSFILE=$PGPASS
  psql "host=$host port=$PORT dbname=acme user=app sslmode=require" -c 'SHOW cluster_name'
  psql "host=$host port=$PORT dbname=globex user=app" -c 'SHOW cluster_name'
  psql "host=$host port=$PORT dbname=umbrella user=app"     # disabled: refused
  psql "host=$host port=$PORT dbname=postgres user=app options='-c pgroute.tenant=initech'"
  node dist/cli/pgroute.js cert ca --state-dir $STATE/run > ca.pem   # then sslmode=verify-full sslrootcert=ca.pem
demo: Ctrl-C stops pgroute and the sample servers.

TXT
node dist/cli/pgroute.js up --tenants "$STATE/tenants.yaml" --port "$PORT" --bind "$BIND" --tls auto --state-dir "$STATE/run"
