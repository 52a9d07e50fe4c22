#!/usr/bin/env bash
# Run every image's install.sh on this machine (CI: a fresh Debian machine, as root), twice: the
# second run must change nothing and be quick. Then check what each image promises is there.
# The recipe is tested even where no container engine exists.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
export PREFIX=${PREFIX:-/opt/mozharness-archive}
export PATH="${BINDIR:-/usr/local/bin}:$PATH"
for img in decision archive-worker lookup downstream; do
  for pass in 1 2; do
    start=$(date +%s)
    bash "$here/$img/install.sh" "$src" >/tmp/install-$img-$pass.log 2>&1 ||
      { echo "$img/install.sh failed (pass $pass):"; tail -20 "/tmp/install-$img-$pass.log"; exit 1; }
    echo "$img/install.sh pass $pass: $(( $(date +%s) - start )) s"
  done
done
for tool in hg git curl unzip python3 setpriv run-mozharness.sh mozharness-archive; do
  command -v "$tool" >/dev/null || { echo "missing after install: $tool"; exit 1; }
done
mozharness-archive --help >/dev/null || { echo "the installed CLI does not start"; exit 1; }
echo "image install scripts: ok"
