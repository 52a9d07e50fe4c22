#!/bin/sh
# run-mozharness.sh: fetch the mozharness archive a task depends on, verify it, unpack it safely
# and run a mozharness script from it. POSIX sh; needs only curl, tar and sha256sum.
#
#   MOZHARNESS_URL=<queue artifact URL> MOZHARNESS_SHA256=<hex> \
#     run-mozharness.sh scripts/fx_desktop_build.py --config builds/linux64.py
#
# Environment:
#   MOZHARNESS_URL      where the archive is (redirects are followed; e.g. the queue artifact URL)
#   MOZHARNESS_SHA256   the archive's expected sha256 (64 hex digits)
#   MOZHARNESS_DEST     directory to unpack into (default: mozharness); replaced atomically
#   MOZHARNESS_PYTHON   interpreter for .py scripts (default: python3); .sh scripts run with sh
#   MOZHARNESS_RETRIES  download retries after the first attempt (default: 5)
#   MOZHARNESS_RETRY_DELAY       first backoff in seconds, doubling up to 60 (default: 2)
#   MOZHARNESS_CONNECT_TIMEOUT   seconds (default: 30)
#   MOZHARNESS_MAX_TIME          seconds per attempt (default: 1800)
#   MOZHARNESS_STALL_TIME        abort an attempt after this many seconds without data (default: 60)
#
# Exit status: the script's own, or 2 usage, 3 infrastructure (download failed), 4 verification
# (sha256 mismatch, unsafe or unreadable archive). Error lines start with "run-mozharness: error:".
set -eu

me=run-mozharness
info() { printf '%s: %s\n' "$me" "$*" >&2; }
die() {
  code=$1
  shift
  printf '%s: error: %s\n' "$me" "$*" >&2
  exit "$code"
}

url=${MOZHARNESS_URL:-}
expected=${MOZHARNESS_SHA256:-}
dest=${MOZHARNESS_DEST:-mozharness}
python=${MOZHARNESS_PYTHON:-python3}
retries=${MOZHARNESS_RETRIES:-5}
delay=${MOZHARNESS_RETRY_DELAY:-2}
connect_timeout=${MOZHARNESS_CONNECT_TIMEOUT:-30}
max_time=${MOZHARNESS_MAX_TIME:-1800}
stall_time=${MOZHARNESS_STALL_TIME:-60}

[ $# -ge 1 ] || die 2 "usage: $me <mozharness script> [args...] (with MOZHARNESS_URL and MOZHARNESS_SHA256 set)"
script=$1
shift

[ -n "$url" ] || die 2 "MOZHARNESS_URL is not set"
case $url in
  http://* | https://*) ;;
  *) die 2 "MOZHARNESS_URL must be an http(s) URL" ;;
esac
[ -n "$expected" ] || die 2 "MOZHARNESS_SHA256 is not set"
expected=$(printf '%s' "$expected" | tr 'A-F' 'a-f')
case $expected in
  *[!0-9a-f]*) die 2 "MOZHARNESS_SHA256 is not a sha256 digest: $expected" ;;
esac
[ ${#expected} -eq 64 ] || die 2 "MOZHARNESS_SHA256 is not a sha256 digest (64 hex digits): $expected"
for n in "$retries" "$delay" "$connect_timeout" "$max_time" "$stall_time"; do
  case $n in '' | *[!0-9]*) die 2 "retry and timeout settings must be whole numbers, got '$n'" ;; esac
done
case $script in
  '' | /* | .. | ../* | */../* | */..) die 2 "the mozharness script must be a path inside the archive: $script" ;;
esac
case $dest in
  '' | / | . | ..) die 2 "MOZHARNESS_DEST must name a directory to create: '$dest'" ;;
esac
dest=${dest%/}

for tool in curl tar sha256sum; do
  command -v "$tool" >/dev/null 2>&1 || die 3 "$tool is required but not installed"
done

# Never print query strings: signed URLs carry credentials there.
shown_url=${url%%\?*}
[ "$shown_url" = "$url" ] || shown_url="$shown_url?..."

parent=$(dirname -- "$dest")
mkdir -p -- "$parent" || die 3 "cannot create $parent"
work=$(mktemp -d "$parent/.run-mozharness.XXXXXX") || die 3 "cannot create a temporary directory in $parent"
cleanup() { rm -rf -- "$work"; }
trap cleanup EXIT
trap 'cleanup; exit 130' INT
trap 'cleanup; exit 143' TERM
archive=$work/archive.tar.gz

# --- download, with retries of network errors, truncation, 408/429 and 5xx --------------------
attempt=0
wait_s=$delay
while :; do
  attempt=$((attempt + 1))
  status=0
  http_code=$(curl --fail --location --silent --show-error \
    --connect-timeout "$connect_timeout" --max-time "$max_time" \
    --speed-limit 1 --speed-time "$stall_time" \
    --user-agent "$me" --output "$archive" --write-out '%{http_code}' -- "$url") || status=$?
  if [ "$status" -eq 0 ]; then
    break
  fi
  case $http_code in
    4??)
      if [ "$http_code" != 408 ] && [ "$http_code" != 429 ]; then
        die 3 "download of $shown_url failed: HTTP $http_code (not retried)"
      fi
      ;;
  esac
  reason="curl exit $status${http_code:+, HTTP $http_code}"
  if [ "$attempt" -gt "$retries" ]; then
    die 3 "download of $shown_url failed after $attempt attempts ($reason)"
  fi
  info "download attempt $attempt failed ($reason); retrying in ${wait_s}s"
  sleep "$wait_s"
  wait_s=$((wait_s * 2))
  [ "$wait_s" -le 60 ] || wait_s=60
done

# --- verify ------------------------------------------------------------------------------------
actual=$(sha256sum "$archive" | cut -d' ' -f1)
if [ "$actual" != "$expected" ]; then
  die 4 "sha256 mismatch for $shown_url: expected $expected, got $actual"
fi
size=$(wc -c <"$archive" | tr -d ' ')
info "downloaded $shown_url ($size bytes, sha256 $actual)"

# --- refuse unsafe entries before anything is extracted -----------------------------------------
LC_ALL=C tar -P -tzf "$archive" >"$work/names" 2>"$work/tar.err" ||
  die 4 "the archive is not a readable tar.gz: $(head -n 3 "$work/tar.err")"
LC_ALL=C tar -P -tvzf "$archive" >"$work/listing" 2>"$work/tar.err" ||
  die 4 "the archive is not a readable tar.gz: $(head -n 3 "$work/tar.err")"

# One awk pass over both listings (same order): names from -t, types/modes/link targets from -tv.
# Prints the first offending entry and why.
bad=$(LC_ALL=C awk '
  function unsafe_path(p,    n, parts, i) {
    if (p ~ /^\//) return "absolute path"
    n = split(p, parts, "/")
    for (i = 1; i <= n; i++) if (parts[i] == "..") return "\"..\" component"
    return ""
  }
  function fail(msg) { print msg; found = 1; exit }
  function clean(p) { sub(/^(\.\/)+/, "", p); sub(/\/+$/, "", p); return p }
  # Does link target t, relative to the directory of entry p, stay inside the tree?
  function escapes(p, t,    n, parts, depth, i) {
    if (t ~ /^\//) return 1
    n = split(p, parts, "/")
    depth = 0
    for (i = 1; i < n; i++) if (parts[i] != "" && parts[i] != ".") depth++
    n = split(t, parts, "/")
    for (i = 1; i <= n; i++) {
      if (parts[i] == "" || parts[i] == ".") continue
      if (parts[i] == "..") { depth--; if (depth < 0) return 1 } else depth++
    }
    return 0
  }
  NR == FNR { names[FNR] = $0; count = FNR; next }
  {
    name = names[FNR]
    if (name == "") { fail("entry " FNR ": empty name") }
    why = unsafe_path(name)
    if (why != "") { fail(name ": " why) }
    type = substr($0, 1, 1)
    mode = substr($0, 1, 10)
    if (type != "-" && type != "d" && type != "l" && type != "h") {
      fail(name ": not a regular file, directory or link (type " type ")")
    }
    if (substr(mode, 4, 1) ~ /[sS]/ || substr(mode, 7, 1) ~ /[sS]/) {
      fail(name ": setuid/setgid bit")
    }
    if (type == "l" || type == "h") {
      sep = (type == "l") ? " -> " : " link to "
      i = index($0, " " name sep)
      if (i == 0) { fail(name ": cannot read the link target") }
      target = substr($0, i + 1 + length(name) + length(sep))
      if (type == "l" && escapes(name, target)) { fail(name ": symlink to " target " points outside the tree") }
      if (type == "h" && unsafe_path(target) != "") { fail(name ": hard link to " target " points outside the tree") }
      if (type == "l") links[clean(name)] = 1
    }
  }
  END {
    if (found) exit
    # No entry may be written through a symlink (e.g. "a -> sub" then "a/x").
    for (k = 1; k <= count; k++) {
      n = split(clean(names[k]), parts, "/")
      prefix = ""
      for (i = 1; i < n; i++) {
        prefix = (i == 1) ? parts[1] : prefix "/" parts[i]
        if (prefix in links) { fail(names[k] ": goes through the symlink " prefix) }
      }
    }
  }
' "$work/names" "$work/listing")
[ -z "$bad" ] || die 4 "unsafe archive entry refused: $bad"
[ "$(wc -l <"$work/names")" -eq "$(wc -l <"$work/listing")" ] ||
  die 4 "the archive listing is inconsistent (unusual file names?); refusing it"

# --- unpack beside the destination, then swap it into place ---------------------------------
mkdir "$work/tree"
tar -xzf "$archive" -C "$work/tree" --no-same-owner --no-same-permissions 2>"$work/tar.err" ||
  die 4 "unpacking failed: $(head -n 3 "$work/tar.err")"
if [ -e "$dest" ] || [ -L "$dest" ]; then
  mv -- "$dest" "$work/previous" || die 3 "cannot move the existing $dest aside"
fi
mv -- "$work/tree" "$dest" || die 3 "cannot move the unpacked tree to $dest"
entries=$(wc -l <"$work/names" | tr -d ' ')
rm -rf -- "$work"
trap - EXIT INT TERM
info "unpacked $entries entries into $dest/"

# --- run -----------------------------------------------------------------------------------------
target=$dest/$script
[ -f "$target" ] || die 2 "$script is not in the archive (looked for $target)"
case $script in
  *.sh) set -- sh "$target" "$@" ;;
  *) set -- "$python" "$target" "$@" ;;
esac
info "running $*"
exec "$@"
