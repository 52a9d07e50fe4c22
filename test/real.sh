#!/usr/bin/env bash
# npm run test:real: the integration tests (test/integration) against the real Taskcluster
# services of ../shared/real-taskcluster (v106 on loopback). Uses a deployment whose env file
# answers; otherwise starts one with its up.sh (a few minutes on a fresh machine, ~30 s when
# installed). Extra arguments go to mocha (e.g. --grep worker).
set -euo pipefail
cd "$(dirname "$0")/.."
shared="${MOZHARNESS_ARCHIVE_SHARED:-$(cd .. && pwd)/shared}"
up="$shared/real-taskcluster/up.sh"
base="${REALTC_BASE:-${XDG_CACHE_HOME:-$HOME/.cache}/real-taskcluster}"

answers() {
  [ -f "$base/env" ] || return 1
  local root
  root=$(sed -n 's/^TASKCLUSTER_ROOT_URL=//p' "$base/env")
  [ -n "$root" ] && curl -fsS --max-time 5 "$root/api/queue/v1/ping" >/dev/null 2>&1
}

if ! answers; then
  if [ ! -f "$up" ]; then
    echo "test:real: $up not found; put the shared folder beside the checkout or set MOZHARNESS_ARCHIVE_SHARED" >&2
    exit 1
  fi
  echo "test:real: starting the real Taskcluster services ($up)"
  log=$(mktemp)
  if ! bash "$up" >"$log" 2>&1; then
    echo "test:real: the real Taskcluster services did not start; up.sh said:" >&2
    tail -n 30 "$log" >&2
    exit 1
  fi
  rm -f "$log"
  answers || { echo "test:real: up.sh finished but $base/env does not answer" >&2; exit 1; }
fi

export MOZHARNESS_TEST_BACKEND=real MOZHARNESS_ARCHIVE_SHARED="$shared"
exec npx --no-install mocha --config .mocharc.real.json "$@"
