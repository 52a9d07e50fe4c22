#!/usr/bin/env bash
# install-cli.sh <source dir>: install the mozharness-archive CLI from a checkout into
# $PREFIX (default /opt/mozharness-archive) with `mozharness-archive` on PATH (/usr/local/bin).
# Production dependencies only. A checkout that already has node_modules and dist/ (CI after
# `npm ci`) is copied and pruned, so no network is needed; otherwise `npm ci` builds it.
# Idempotent: an install of the same package.json and build is left alone.
set -euo pipefail
src=$(cd "${1:?usage: install-cli.sh <source dir>}" && pwd)
prefix=${PREFIX:-/opt/mozharness-archive}
bindir=${BINDIR:-/usr/local/bin}
command -v node >/dev/null || { echo "install-cli.sh: node (>= 20.19) is not installed" >&2; exit 1; }
node -e 'const [a,b]=process.versions.node.split(".").map(Number); process.exit(a>20||(a===20&&b>=19)?0:1)' ||
  { echo "install-cli.sh: node $(node --version) is too old (need >= 20.19)" >&2; exit 1; }
if [ ! -f "$src/dist/cli/main.js" ] || [ ! -d "$src/node_modules" ]; then
  (cd "$src" && npm ci --no-audit --no-fund)
fi
stamp=$( (cat "$src/package.json" "$src/package-lock.json"; find "$src/dist" -type f -name '*.js' -print0 | sort -z | xargs -0 cat) | sha256sum | cut -d' ' -f1)
if [ -f "$prefix/.install-stamp" ] && [ "$(cat "$prefix/.install-stamp")" = "$stamp" ] && [ -x "$bindir/mozharness-archive" ]; then
  echo "mozharness-archive already installed in $prefix"
  exit 0
fi
tmp="$prefix.new.$$"
rm -rf "$tmp"
mkdir -p "$tmp"
cp -a "$src/package.json" "$src/package-lock.json" "$src/bin" "$src/dist" "$src/schemas" "$tmp/"
cp -a "$src/node_modules" "$tmp/node_modules"
(cd "$tmp" && npm prune --omit=dev --no-audit --no-fund --ignore-scripts >/dev/null)
echo "$stamp" >"$tmp/.install-stamp"
rm -rf "$prefix.old"
[ -d "$prefix" ] && mv "$prefix" "$prefix.old"
mv "$tmp" "$prefix"
rm -rf "$prefix.old"
mkdir -p "$bindir"
ln -sfn "$prefix/bin/mozharness-archive.js" "$bindir/mozharness-archive"
chmod 0755 "$prefix/bin/mozharness-archive.js"
"$bindir/mozharness-archive" --help >/dev/null
echo "installed mozharness-archive in $prefix"
