#!/usr/bin/env bash
# The archive worker image: the mozharness-archive CLI (`mozharness-archive worker`), Mercurial and
# git for partial fetches, util-linux's setpriv for running a harness's tests as an unprivileged
# task user, and that user. Idempotent.
#   install.sh <mozharness-archive checkout>
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bash "$here/../common/install-packages.sh" ca-certificates mercurial git util-linux python3
bash "$here/../common/install-cli.sh" "${1:-$here/../../..}"
id -u mozharness-archive >/dev/null 2>&1 ||
  useradd --system --create-home --home-dir /var/lib/mozharness-archive --shell /usr/sbin/nologin mozharness-archive
id -u task >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin task
