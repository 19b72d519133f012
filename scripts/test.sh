#!/usr/bin/env bash
# Sets this machine up (packages, npm ci, build) and runs every test: the unit project (pure code),
# the e2e projects (real HAProxy, PostgreSQL, psql, node-postgres, Docker) and, on a full run, the
# self-test of the test harness (test/support-selftest, its own vitest config). Extra arguments go
# to vitest (and skip the harness self-test).
set -euo pipefail
cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.."
# Setup (npm ci with the committed lock file, the build) and the tests must leave every tracked file
# as it was (committed, or as the developer left it): compared before and after.
tracked_state() { git diff HEAD 2>/dev/null | sha1sum; }
tracked_before=$(tracked_state)
tracked_clean() {
  [[ $(tracked_state) == "$tracked_before" ]] && return 0
  printf 'test: %s changed tracked files:\n%s\n' "$1" "$(git status --porcelain --untracked-files=no)" >&2
  return 1
}
# The Docker end-to-end tests need dockerd: only the test path installs and starts it.
SETUP_DOCKER=1 scripts/setup.sh
tracked_clean "setup" || exit 1
npx tsc -p tsconfig.json --noEmit
if [ "$#" -eq 0 ]; then
  npx vitest run --config test/support-selftest/vitest.config.ts
fi
npx vitest run "$@"

# HAProxy version matrix (only for a full run, i.e. without arguments): the data path, TLS (to clients
# and to servers), reload (health, cancel records, signals), per-tenant policy (stick tables, the
# refusal delay's Lua sleep), the verdict memo (hits, invalidation under churn, an agent outage), an
# agent that fails, stalls or is paused, held connections (paused tenants, targets a reload adds), the durable access switch, replicas (peers,
# cancel records), sessions and queue limits, the traffic log, `plan`'s haproxy -c, the CLI's
# start-up and exit codes and version tests again on HAProxy 3.0 and 3.2,
# from Debian roots that scripts/haproxy-versions.sh makes once and caches (minutes the first time,
# under a second after). A version whose root cannot be made fails the run (after the others ran):
# pgroute supports it, so its tests are not skipped. PGROUTE_HAPROXY_MATRIX=0 leaves the matrix out
# (a developer's choice; .ci/run never sets it).
missing_versions=''
if [[ $# -eq 0 && ${PGROUTE_HAPROXY_MATRIX:-1} != 0 ]]; then
  matrix=(test/e2e/routing.test.ts test/e2e/tls.test.ts test/e2e/file-source.test.ts test/e2e/haproxy-versions.test.ts test/e2e/tenant-policy.test.ts test/e2e/agent-stall.test.ts test/e2e/agent-burst.test.ts test/e2e/pause-agent-apart.test.ts test/e2e/replicas.test.ts test/e2e/cancel-replicas.test.ts test/e2e/cli-answers.test.ts
    test/e2e/verdict-memo.test.ts test/e2e/verdict-memo-tls.test.ts test/e2e/memo-agent-down.test.ts test/e2e/agent-failure.test.ts test/e2e/plan.test.ts
    test/e2e/reload-health.test.ts test/e2e/cancel-reload.test.ts test/e2e/signal-handover.test.ts test/e2e/tenant-pause.test.ts test/e2e/pending-target.test.ts test/e2e/access-durable.test.ts
    test/e2e/backend-tls.test.ts test/e2e/sessions.test.ts test/e2e/queue-limit.test.ts test/e2e/log-format.test.ts test/e2e/log-escaping.test.ts)
  versions=$(scripts/haproxy-versions.sh) || true
  for series in 3.0 3.2; do
    grep -q "^$series " <<<"$versions" || missing_versions+=" $series"
  done
  while read -r series launcher version; do
    [[ -n ${series:-} ]] || continue
    echo "test: HAProxy $version ($launcher): ${matrix[*]}"
    PGROUTE_HAPROXY=$launcher npx vitest run "${matrix[@]}"
  done <<<"$versions"
fi

tracked_clean "the test run" || exit 1
if [[ -n $missing_versions ]]; then
  echo "test: HAProxy$missing_versions could not be made ready (scripts/haproxy-versions.sh says why above): their tests did not run" >&2
  exit 1
fi
