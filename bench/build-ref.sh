# Sourced by bench/ab.sh and bench/generate.sh (needs ROOT, the checkout, and RUN, the scratch directory).
# build <ref>: the commit's pgroute, built once in $BENCH_AB_CACHE/tree-<sha> (a commit does not change,
# so later runs reuse the build); prints the directory
CACHE="${BENCH_AB_CACHE:-/tmp/pgroute-ab-trees}"
build() {
  local sha dir tmp
  sha="$(git -C "$ROOT" rev-parse --short "$1^{commit}")"
  dir="$CACHE/tree-$sha"
  if [ ! -f "$dir/dist/cli/pgroute.js" ]; then
    mkdir -p "$CACHE"
    tmp="$(mktemp -d "$CACHE/building-$sha.XXXXXX")"
    git -C "$ROOT" archive "$sha" agent/src generator/src cli haproxy package.json tsconfig.json tsconfig.build.json | tar -x -C "$tmp"
    ln -s "$ROOT/node_modules" "$tmp/node_modules"
    (cd "$tmp" && "$ROOT/node_modules/.bin/tsc" -p tsconfig.build.json) >"$RUN/build-$sha.log" 2>&1 || { cat "$RUN/build-$sha.log" >&2; exit 1; }
    rm -rf "$dir"
    mv "$tmp" "$dir"
  fi
  # A cached tree may come from another checkout, since removed: its CLI needs this one's packages.
  ln -sfn "$ROOT/node_modules" "$dir/node_modules"
  echo "$dir"
}
