#!/usr/bin/env bash
# pgroute machine setup for Debian bookworm (dev boxes, CI, containers).
#
# Idempotent and fast when nothing is missing:
#   1. installs the Debian packages the tests need (HAProxy 2.6, PostgreSQL 15
#      server/contrib/client, procps, iproute2, ca-certificates; PgBouncer, the stormy tenant's
#      pooler in test/e2e/tenant-policy-storm.test.ts, its own service neither started nor enabled)
#      -- apt-get update and apt-get install only run if something is missing;
#   2. leaves the machine's own PostgreSQL/HAProxy services alone, unless one listens on the
#      demo's port (PGROUTE_PORT, default 5432): that one is stopped after saying so, never
#      disabled;
#   3. runs `npm ci` if node_modules is missing or does not match package-lock.json;
#   4. runs `npm run build` (skip with SETUP_SKIP_BUILD=1);
#   5. only with SETUP_DOCKER=1 (scripts/test.sh sets it; the demo does not): installs Docker and
#      starts dockerd for the Docker end-to-end tests.
#
# Usage: scripts/setup.sh        (from any directory; must run as root or with sudo)
set -euo pipefail

cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.."
REPO_ROOT=$PWD

PG_MAJOR=15
PG_BIN=/usr/lib/postgresql/$PG_MAJOR/bin
HAPROXY_BIN=/usr/sbin/haproxy
HAPROXY_SERIES=2.6
PACKAGES=(haproxy postgresql postgresql-contrib postgresql-client procps iproute2 ca-certificates)

say() { printf 'setup: %s\n' "$*"; }
die() { printf 'setup: ERROR: %s\n' "$*" >&2; exit 1; }

SUDO=()
if [[ $(id -u) -ne 0 ]]; then
  command -v sudo >/dev/null 2>&1 || die "run as root (or install sudo)"
  SUDO=(sudo)
fi
as_root() { "${SUDO[@]}" "$@"; }

[[ -r /etc/debian_version ]] || die "this script supports Debian (bookworm) only"

# --- 1. Debian packages ----------------------------------------------------

dpkg_installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q '^install ok installed$'; }

# Is the package (or what the tests need from it) present? Metapackages count as
# present when the versioned package providing the files is (postgresql-client
# vs postgresql-client-15).
pkg_present() {
  case $1 in
    haproxy) [[ -x $HAPROXY_BIN ]] ;;
    postgresql) [[ -x $PG_BIN/postgres && -x $PG_BIN/initdb && -x $PG_BIN/pg_ctl && -x $PG_BIN/pgbench ]] && id -u postgres >/dev/null 2>&1 ;;
    postgresql-contrib) dpkg_installed postgresql-contrib || [[ -f /usr/share/postgresql/$PG_MAJOR/extension/pg_stat_statements.control ]] ;;
    postgresql-client) [[ -x $PG_BIN/psql ]] ;;
    procps) command -v ps >/dev/null && command -v pgrep >/dev/null && command -v pkill >/dev/null ;;
    iproute2) command -v ss >/dev/null && command -v ip >/dev/null ;;
    ca-certificates) [[ -s /etc/ssl/certs/ca-certificates.crt ]] ;;
    pgbouncer) [[ -x /usr/sbin/pgbouncer ]] ;;
    *) dpkg_installed "$1" ;;
  esac
}

# SETUP_FORCE_PACKAGES="pkg ..." treats those packages as missing (re-install / test the install path).
missing=()
for p in "${PACKAGES[@]}"; do
  if [[ " ${SETUP_FORCE_PACKAGES:-} " == *" $p "* ]] || ! pkg_present "$p"; then missing+=("$p"); fi
done

if ((${#missing[@]} > 0)); then
  say "installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  as_root apt-get update -qq
  # Only the missing ones: naming an installed package would upgrade it.
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  for p in "${missing[@]}"; do
    pkg_present "$p" || die "package $p still missing after apt-get install"
  done
  say "packages installed"
else
  say "Debian packages present"
fi

# Installs Debian package $1 without starting its service (policy-rc.d refuses the start during the
# install; an existing policy-rc.d is kept) and disables it where systemd runs.
install_service_off() {
  local policy_rc=/usr/sbin/policy-rc.d had_policy=0
  [[ -e $policy_rc ]] && had_policy=1
  [[ $had_policy == 1 ]] || { printf '#!/bin/sh\nexit 101\n' | as_root tee "$policy_rc" >/dev/null; as_root chmod 755 "$policy_rc"; }
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$1" >/dev/null
  [[ $had_policy == 1 ]] || as_root rm -f "$policy_rc"
  if command -v systemctl >/dev/null 2>&1; then as_root systemctl disable "$1" >/dev/null 2>&1 || true; fi
}

# PgBouncer: the tests run their own (test/support/pgbouncer.ts: a config in a temp dir, a port of
# the test's block), never the packaged service, which would listen on 6432: policy-rc.d refuses
# its start during the install and it is disabled (install_service_off); one already running
# is left alone (nothing of ours needs its port).
if [[ " ${SETUP_FORCE_PACKAGES:-} " == *" pgbouncer "* ]] || ! pkg_present pgbouncer; then
  say "installing Debian package pgbouncer (for the storm e2e test; its service stays off)"
  install_service_off pgbouncer
  pkg_present pgbouncer || die "package pgbouncer still missing after apt-get install"
fi

hv=$("$HAPROXY_BIN" -v 2>/dev/null | head -n1 || true)
[[ $hv == *"version $HAPROXY_SERIES."* ]] || die "need HAProxy $HAPROXY_SERIES (Debian bookworm package), found: ${hv:-nothing at $HAPROXY_BIN}"
id -u postgres >/dev/null 2>&1 || die "OS user 'postgres' missing (postgresql package broken?)"
command -v runuser >/dev/null 2>&1 || die "runuser (util-linux) missing"

# --- 2. packaged services only where they are in the way ------------------------
# The machine's own PostgreSQL and HAProxy services are left alone, except one that listens on the
# port the demo serves (PGROUTE_PORT, default 5432): that one is stopped, after saying so, and not
# disabled (it starts again at the next boot, or with the command printed). The tests use ports
# 20000-32767 and never need them stopped. SETUP_KEEP_SERVICES=1 leaves even a clashing one.

DEMO_PORT=${PGROUTE_PORT:-5432}
port_listening() { ss -Hltn "sport = :$1" 2>/dev/null | grep -q .; }

if [[ ${SETUP_KEEP_SERVICES:-0} != 1 ]] && port_listening "$DEMO_PORT"; then
  # PostgreSQL clusters created by the Debian packages (e.g. 15/main on 5432).
  if command -v pg_lsclusters >/dev/null 2>&1; then
    while read -r ver name port status _rest; do
      [[ $status == online* && $port == "$DEMO_PORT" ]] || continue
      say "the packaged PostgreSQL cluster $ver/$name listens on port $DEMO_PORT, which the demo uses: stopping it (not disabling it; start it again with: pg_ctlcluster $ver $name start; or keep it and use PGROUTE_PORT=<other port>)"
      as_root pg_ctlcluster "$ver" "$name" stop -m fast >/dev/null 2>&1 ||
        as_root pg_ctlcluster "$ver" "$name" stop -m immediate >/dev/null 2>&1 || true
    done < <(pg_lsclusters -h 2>/dev/null || true)
  fi
  # The packaged haproxy (its pid in /run/haproxy.pid), when it is the one on that port.
  if [[ -s /run/haproxy.pid ]] && ss -Hltnp "sport = :$DEMO_PORT" 2>/dev/null | grep -q '"haproxy"'; then
    say "the packaged HAProxy service listens on port $DEMO_PORT, which the demo uses: stopping it (not disabling it; start it again with: service haproxy start; or keep it and use PGROUTE_PORT=<other port>)"
    if [[ -d /run/systemd/system ]] && command -v systemctl >/dev/null 2>&1; then
      as_root systemctl stop haproxy || true
    elif command -v service >/dev/null 2>&1 && [[ -x /etc/init.d/haproxy ]]; then
      as_root service haproxy stop >/dev/null 2>&1 || true
    fi
    if [[ -s /run/haproxy.pid ]] && kill -0 "$(head -n1 /run/haproxy.pid)" 2>/dev/null; then
      as_root kill "$(head -n1 /run/haproxy.pid)" || true
    fi
  fi
  port_listening "$DEMO_PORT" && say "port $DEMO_PORT is still in use by another program; the demo needs PGROUTE_PORT=<free port>"
fi

# --- 3. node modules --------------------------------------------------------

command -v node >/dev/null 2>&1 || die "node (>= 20) is not installed"
command -v npm >/dev/null 2>&1 || die "npm is not installed"
node_major=$(node -p 'process.versions.node.split(".")[0]')
((node_major >= 20)) || die "need node >= 20, found $(node -v)"

# node_modules is fresh when every package in package-lock.json is installed at
# the locked version (optional packages only if they apply to this platform).
node_modules_fresh() {
  [[ -d node_modules && -f package-lock.json ]] || return 1
  node - <<'EOF'
const fs = require('fs');
const lock = JSON.parse(fs.readFileSync('package-lock.json', 'utf8'));
const ok = (list, v) => !list || list.some((x) => x === v) || (list.every((x) => x.startsWith('!')) && !list.includes('!' + v));
for (const [p, meta] of Object.entries(lock.packages || {})) {
  if (p === '' || meta.link || !p.startsWith('node_modules/')) continue;
  let installed;
  try { installed = JSON.parse(fs.readFileSync(p + '/package.json', 'utf8')).version; } catch { installed = undefined; }
  if (installed === meta.version) continue;
  if (installed === undefined && meta.optional) {
    const applies = ok(meta.os, process.platform) && ok(meta.cpu, process.arch) && !(meta.libc && !meta.libc.includes('glibc'));
    if (!applies) continue;
  }
  if (installed === undefined && meta.dev && process.env.NODE_ENV === 'production') continue;
  console.error(`setup: node_modules stale: ${p} is ${installed ?? 'missing'}, lock says ${meta.version}`);
  process.exit(1);
}
EOF
}

if node_modules_fresh; then
  say "node_modules up to date"
else
  say "running npm ci"
  # The lock file lists every platform's optional packages, so `npm ci` takes it as committed with
  # npm 10 and 11; it never falls back to `npm install`, which would rewrite a tracked file.
  npm ci --no-audit --no-fund --loglevel=error || die "npm ci refused package-lock.json (run with npm 10 or 11; the lock file must not be edited by hand)"
fi

# --- 4. build ---------------------------------------------------------------

if [[ ${SETUP_SKIP_BUILD:-0} == 1 ]]; then
  say "skipping build (SETUP_SKIP_BUILD=1)"
else
  say "building (npm run build)"
  npm run --silent build
fi

say "done ($REPO_ROOT; $("$HAPROXY_BIN" -v | head -n1 | awk '{print "haproxy", $3}'); $("$PG_BIN/postgres" --version | awk '{print "postgres", $3}'))"

# --- 5. Docker (the Docker source's end-to-end tests) ---------------------------
# Debian's docker.io (20.10) plus busybox-static (the shell of the locally built test image
# pgroute-test/postgres:15; no registry is reachable). dockerd is started in the background when
# /var/run/docker.sock does not answer: --live-restore keeps containers running across a dockerd
# restart; log in /tmp/pgroute-dockerd.log. Only for the tests: SETUP_DOCKER=1 (scripts/test.sh);
# SETUP_SKIP_DOCKER=1 still skips it.
if [[ ${SETUP_DOCKER:-0} != 1 || ${SETUP_SKIP_DOCKER:-0} == 1 ]]; then
  :
else
  docker_missing=()
  [[ -x /usr/sbin/dockerd || -x /usr/bin/dockerd ]] || docker_missing+=(docker.io)
  [[ -x /bin/busybox ]] || docker_missing+=(busybox-static)
  command -v docker-compose >/dev/null 2>&1 || docker_missing+=(docker-compose)
  if ((${#docker_missing[@]} > 0)); then
    say "installing Debian packages: ${docker_missing[*]}"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${docker_missing[@]}" >/dev/null
  fi
  dockerd_bin=$(command -v dockerd || echo /usr/sbin/dockerd)
  docker_cli=$(command -v docker || true)
  docker_answers() { [[ -n $docker_cli ]] && as_root "$docker_cli" version >/dev/null 2>&1; }
  if docker_answers; then
    say "dockerd running"
  else
    say "starting dockerd in the background (log: /tmp/pgroute-dockerd.log)"
    as_root setsid "$dockerd_bin" --live-restore >>/tmp/pgroute-dockerd.log 2>&1 </dev/null &
    for _ in $(seq 1 300); do docker_answers && break; sleep 0.1; done
    docker_answers || die "dockerd did not answer within 30 s; see /tmp/pgroute-dockerd.log"
    say "dockerd ready"
  fi
fi

# --- 6. Prometheus (the monitoring tests) ------------------------------------------
# Debian's prometheus package: promtool checks monitoring/'s alert rules, and test/e2e/metrics.test.ts
# runs the server itself, in a network namespace, to scrape pgroute. Only for the tests (as Docker).
# Its service is neither started nor enabled: policy-rc.d refuses the start during the install.
if [[ ${SETUP_DOCKER:-0} == 1 && ${SETUP_SKIP_DOCKER:-0} != 1 && ! -x /usr/bin/prometheus ]]; then
  say "installing Debian package prometheus (for promtool and the monitoring e2e test; its service stays off)"
  install_service_off prometheus
fi
