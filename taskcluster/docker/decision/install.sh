#!/usr/bin/env bash
# The decision image: node (from the base image), Mercurial and git to check out the push, and the
# mozharness-archive CLI, which renders and submits the task graph. Idempotent.
#   install.sh <mozharness-archive checkout>
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bash "$here/../common/install-packages.sh" ca-certificates mercurial git
bash "$here/../common/install-cli.sh" "${1:-$here/../../..}"
# the task user; uid 1000 as in docker-worker images, when it is free
if ! id -u worker >/dev/null 2>&1; then
  uid=(); getent passwd 1000 >/dev/null || uid=(--uid 1000)
  useradd --create-home "${uid[@]}" --shell /bin/bash worker
fi
