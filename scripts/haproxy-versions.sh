#!/usr/bin/env bash
# Makes HAProxy 3.0 and 3.2 runnable on this machine for the version matrix of scripts/test.sh.
#
# Debian ships one HAProxy per release: trixie 3.0.x, forky (testing) 3.2.x. For each, a minimal
# debootstrap root with the haproxy package is made once and cached; a launcher runs that root's
# haproxy with the root's own loader and libraries, so nothing of the host changes. The launcher is
# what PGROUTE_HAPROXY takes.
#
# Idempotent: a root that already has its haproxy is reused (seconds); a missing one takes minutes
# and needs network to deb.debian.org. A root that cannot be made is reported and skipped; the
# others are still made. Exit status 0 when at least one version is ready.
#
# Usage: scripts/haproxy-versions.sh [series...]     (default: 3.0 3.2; must run as root)
#   HAPROXY_ROOTS_DIR   cache directory (default /var/cache/pgroute/haproxy-roots)
#   DEBIAN_MIRROR       mirror (default http://deb.debian.org/debian)
# Prints one line per ready version: "<series> <launcher path> <haproxy version>".
set -uo pipefail

ROOTS_DIR=${HAPROXY_ROOTS_DIR:-/var/cache/pgroute/haproxy-roots}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}

say() { printf 'haproxy-versions: %s\n' "$*" >&2; }

# The Debian suite that ships each HAProxy series.
suite_of() {
  case $1 in
    3.0) echo trixie ;;
    3.2) echo forky ;;
    *) return 1 ;;
  esac
}

# debootstrap knows a suite by a script of its name; bookworm's has none for forky, and sid's
# script serves every current suite.
suite_script() {
  local scripts=/usr/share/debootstrap/scripts
  if [[ -e $scripts/$1 ]]; then echo "$scripts/$1"; else echo "$scripts/sid"; fi
}

ensure_debootstrap() {
  command -v debootstrap >/dev/null 2>&1 && return 0
  [[ $(id -u) -eq 0 ]] || { say "debootstrap is missing and this is not root: install it (apt-get install debootstrap)"; return 1; }
  say "installing debootstrap from apt"
  apt-get install -y -qq debootstrap >/dev/null 2>&1 || {
    apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq debootstrap >/dev/null 2>&1
  } || { say "could not install debootstrap with apt-get"; return 1; }
}

write_launcher() {
  local root=$1 launcher=$2
  cat >"$launcher.tmp" <<EOF
#!/bin/sh
# Runs the haproxy of $root with that root's loader and libraries (made by scripts/haproxy-versions.sh).
# argv[0] is this launcher: a master re-executes argv[0] at a reload, which must be this version again
# (a bare "haproxy" would be found on PATH: the host's 2.6).
exec "$root/lib64/ld-linux-x86-64.so.2" --argv0 "$launcher" \\
  --library-path "$root/lib/x86_64-linux-gnu:$root/usr/lib/x86_64-linux-gnu" \\
  "$root/usr/sbin/haproxy" "\$@"
EOF
  chmod 0755 "$launcher.tmp" && mv "$launcher.tmp" "$launcher"
}

# Makes (or reuses) the root for one series; prints "<series> <launcher> <version>" when ready.
prepare() {
  local series=$1 suite root launcher log version
  suite=$(suite_of "$series") || { say "unknown HAProxy series $series (known: 3.0 3.2)"; return 1; }
  root=$ROOTS_DIR/$suite
  launcher=$ROOTS_DIR/haproxy-$series
  if [[ ! -x $root/usr/sbin/haproxy ]]; then
    ensure_debootstrap || return 1
    log=$ROOTS_DIR/$suite.log
    # Build beside the final place and rename, so an interrupted run never leaves a half root that
    # looks ready.
    rm -rf "$root.partial"
    say "making the Debian $suite root for HAProxy $series in $root (takes minutes; log: $log)"
    if ! debootstrap --variant=minbase --include=haproxy "$suite" "$root.partial" "$MIRROR" \
      "$(suite_script "$suite")" >"$log" 2>&1; then
      say "FAILED to make the $suite root for HAProxy $series (no network to $MIRROR $suite?); see $log; skipping $series"
      rm -rf "$root.partial"
      return 1
    fi
    rm -rf "$root" && mv "$root.partial" "$root"
  fi
  write_launcher "$root" "$launcher"
  version=$("$launcher" -v 2>/dev/null | sed -n 's/^HAProxy version \([^ ]*\).*/\1/p')
  if [[ $version != "$series".* ]]; then
    say "the $suite root's haproxy reports version '${version:-none}', not $series.x: remove $root and run again"
    return 1
  fi
  printf '%s %s %s\n' "$series" "$launcher" "$version"
}

series=("$@")
[[ ${#series[@]} -gt 0 ]] || series=(3.0 3.2)
# One run at a time per cache: a second one waits, then finds the roots made.
mkdir -p "$ROOTS_DIR" || { say "cannot create $ROOTS_DIR (run as root, or set HAPROXY_ROOTS_DIR)"; exit 1; }
exec 9>"$ROOTS_DIR/.lock"
flock 9
ready=0
for s in "${series[@]}"; do
  prepare "$s" && ready=$((ready + 1))
done
[[ $ready -gt 0 ]]
