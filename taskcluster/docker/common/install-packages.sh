#!/usr/bin/env bash
# install-packages.sh <debian package>...: install the Debian packages that are missing, quietly,
# with no recommends and no daemon started. Idempotent: nothing to do when all are present.
set -euo pipefail
missing=()
for p in "$@"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "installing: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
if [ "${MOZHARNESS_ARCHIVE_IMAGE_BUILD:-0}" = 1 ]; then rm -rf /var/lib/apt/lists/*; fi
