#!/usr/bin/env bash
# The lookup service image: the mozharness-archive CLI (`mozharness-archive serve`, `deploy
# --watch`) and the user it runs as. Lookups need no VCS. Idempotent.
#   install.sh <mozharness-archive checkout>
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bash "$here/../common/install-packages.sh" ca-certificates
bash "$here/../common/install-cli.sh" "${1:-$here/../../..}"
id -u mozharness-archive >/dev/null 2>&1 ||
  useradd --system --create-home --home-dir /var/lib/mozharness-archive --shell /usr/sbin/nologin mozharness-archive
