#!/usr/bin/env bash
# Builds pgroute's two images locally under the names and tag the Kubernetes manifests use
# (kubernetes/base/deployment.yaml): pgroute/pgroute:<version> (Dockerfile) and
# pgroute/haproxy:<version> (haproxy/Dockerfile), <version> being package.json's, the one
# `pgroute --version` prints. Each image is labelled with that version (PGROUTE_VERSION).
#
# Usage: scripts/build-images.sh [--local-bases]        (from any directory)
#   --local-bases  no registry reachable: build on local stand-ins for haproxy:2.6 and
#                  node:20-bookworm-slim made from this host's HAProxy and Node
#                  (test/support/images.ts, as the Docker end-to-end tests do).
# Environment (passed as build arguments when set):
#   HAPROXY_VERSION   HAProxy image series of both images (default 3.2; 3.0, 2.6)
#   HAPROXY_BASE      HAProxy base image (default haproxy:$HAPROXY_VERSION)
#   NODE_BASE         Node base image of pgroute's image (default node:20-bookworm-slim)
#   NPM_CAFILE        CA bundle inside NODE_BASE for npm behind a TLS-intercepting proxy
#   IMAGE_PREFIX      repository prefix (default pgroute, as in the manifests)
set -euo pipefail
cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.."

die() { printf 'build-images: %s\n' "$*" >&2; exit 1; }

local_bases=0
for arg in "$@"; do
  case $arg in
    --local-bases) local_bases=1 ;;
    -h|--help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument '$arg' (see --help)" ;;
  esac
done

command -v docker >/dev/null 2>&1 || die "docker is not on PATH; install Docker (scripts/setup.sh with SETUP_DOCKER=1 does) and retry"
version=$(node -p "require('./package.json').version") || die "cannot read the version from package.json"
prefix=${IMAGE_PREFIX:-pgroute}

if [[ $local_bases == 1 ]]; then
  bases=$(npx vite-node scripts/local-base-images.ts) || die "could not make the local base images (see above)"
  HAPROXY_BASE=$(sed -n 's/^HAPROXY_BASE=//p' <<<"$bases")
  NODE_BASE=$(sed -n 's/^NODE_BASE=//p' <<<"$bases")
  if [[ -z ${NPM_CAFILE+x} && -s /etc/ssl/certs/ca-certificates.crt ]]; then NPM_CAFILE=/etc/ssl/certs/ca-certificates.crt; fi
fi

args=(--build-arg "PGROUTE_VERSION=$version")
for name in HAPROXY_VERSION HAPROXY_BASE; do
  [[ -n ${!name:-} ]] && args+=(--build-arg "$name=${!name}")
done
pgroute_args=("${args[@]}")
for name in NODE_BASE NPM_CAFILE; do
  [[ -n ${!name:-} ]] && pgroute_args+=(--build-arg "$name=${!name}")
done

printf 'build-images: %s/haproxy:%s (haproxy/Dockerfile)\n' "$prefix" "$version"
docker build "${args[@]}" -t "$prefix/haproxy:$version" haproxy || die "docker build of $prefix/haproxy:$version failed (see above)"
printf 'build-images: %s/pgroute:%s (Dockerfile)\n' "$prefix" "$version"
docker build "${pgroute_args[@]}" -t "$prefix/pgroute:$version" . || die "docker build of $prefix/pgroute:$version failed (see above)"
printf 'build-images: built %s/pgroute:%s and %s/haproxy:%s\n' "$prefix" "$version" "$prefix" "$version"
