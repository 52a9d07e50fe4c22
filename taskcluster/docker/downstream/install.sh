#!/usr/bin/env bash
# The downstream stand-in image (what a build or test task that consumes the harness needs):
# curl and unzip to fetch and unpack mozharness.zip, python3 to run it, and run-mozharness.sh,
# which fetches, verifies the sha256 and unpacks before running the harness. Idempotent.
#   install.sh <mozharness-archive checkout>
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
src=${1:-$here/../../..}
bash "$here/../common/install-packages.sh" ca-certificates curl unzip python3 coreutils tar gzip
install -D -m 0755 "$src/taskcluster/scripts/run-mozharness.sh" "${BINDIR:-/usr/local/bin}/run-mozharness.sh"
# the task user; uid 1000 as in docker-worker images, when it is free
if ! id -u worker >/dev/null 2>&1; then
  uid=(); getent passwd 1000 >/dev/null || uid=(--uid 1000)
  useradd --create-home "${uid[@]}" --shell /bin/bash worker
fi
