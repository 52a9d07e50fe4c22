#!/bin/sh
# run-mozharness.sh: fetch the mozharness archive a task depends on (tar.gz or zip), verify it,
# unpack it safely and run a mozharness script from it. POSIX sh; needs curl, sha256sum and python3
# (its standard library reads both formats, under the rules described at the unpack step).
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

for tool in curl sha256sum; do
  command -v "$tool" >/dev/null 2>&1 || die 3 "$tool is required but not installed"
done
# python3 unpacks (a safe reader of both formats); MOZHARNESS_PYTHON may name another interpreter
python3=python3
command -v "$python3" >/dev/null 2>&1 || python3=$python
command -v "$python3" >/dev/null 2>&1 || die 3 "python3 is required to unpack the archive but is not installed"

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
archive=$work/archive

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

# --- unpack safely beside the destination, then swap it into place -------------------------------
# The archive (tar.gz or zip, told apart by its first bytes) is read by python3's tarfile/zipfile
# against an in-memory model of the tree, with the same rules as mozharness-archive's own unpack:
# every symlink resolved through the links before it and refused when it leaves the tree at any
# depth, nothing written through a link, hard links only to earlier files, no devices, FIFOs or
# setuid/setgid bits, names up to 4096 bytes (components 255), and at most 100,000 entries,
# 512 MiB per file, 4 GiB in all and 200 times the archive's size (beyond 64 MiB). A first pass
# checks every entry and writes nothing; only then is anything written, into a private directory.
mkdir "$work/tree"
status=0
"$python3" - "$archive" "$work/tree" >"$work/unpacked" 2>"$work/unpack.err" <<'PYTHON' || status=$?
import os, stat, sys, tarfile, zipfile, zlib

MAX_FILES, MAX_FILE, MAX_TOTAL, MAX_RATIO, FLOOR = 100000, 512 << 20, 4 << 30, 200, 64 << 20
PATH_MAX, NAME_MAX, HOPS, STEPS, MISSING = 4096, 255, 40, 8192, 64


class Refused(Exception):
    pass


def refuse(name, why):
    raise Refused("%s: %s" % (name[:300], why))


def too_long(what, s):
    b = s.encode("utf-8", "surrogateescape")
    if len(b) > PATH_MAX:
        return "%s is %d bytes long, over the limit of %d" % (what, len(b), PATH_MAX)
    for c in b.split(b"/"):
        if len(c) > NAME_MAX:
            return "%s has a component of %d bytes, over the limit of %d" % (what, len(c), NAME_MAX)
    return None


def norm(name):
    p = name.rstrip("/")
    while p.startswith("./"):
        p = p[2:]
    return "" if p == "." else p


def unsafe(rel):
    if "\0" in rel:
        return "NUL byte in path"
    if "\n" in rel or "\r" in rel:
        return "line break in path"
    if rel.startswith("/") or (len(rel) > 2 and rel[1] == ":" and rel[2] in "\\/"):
        return "absolute path"
    for seg in rel.split("/"):
        if seg == "..":
            return '".." component'
        if seg in ("", "."):
            return "empty or . component"
    return None


class Tree:
    """The tree as built so far; mirrors the engine's TreeModel."""

    def __init__(self):
        self.nodes = {}
        self.pending = {}

    def add(self, name, kind, target=""):
        why = too_long("name", name)
        if why:
            refuse(name, why)
        rel = norm(name)
        if rel == "":
            if kind == "dir":
                return rel
            refuse(name, "a %s at the root of the tree" % kind)
        why = unsafe(rel)
        if why:
            refuse(name, why)
        parts = rel.split("/")
        for i in range(1, len(parts)):
            k = self.nodes.get("/".join(parts[:i]), (None,))[0]
            if k == "symlink":
                refuse(name, "goes through the symlink %s" % "/".join(parts[:i]))
            if k == "file":
                refuse(name, "goes through the file %s" % "/".join(parts[:i]))
        if rel in self.nodes:
            if self.nodes[rel][0] == "dir" and kind == "dir":
                return rel
            refuse(name, "duplicate or conflicting entry")
        if kind == "symlink":
            if target == "":
                refuse(name, "empty link target")
            why = too_long("link target", target)
            if why:
                refuse(name, why)
            if "\0" in target or target.startswith("/"):
                refuse(name, "symlink to %s points outside the tree" % target)
        if kind == "hardlink":
            why = too_long("link target", target)
            to = norm(target)
            if why or unsafe(to) or self.nodes.get(to, (None,))[0] != "file":
                refuse(name, "hard link to %s points outside the tree or names no earlier file" % target[:300])
        for i in range(1, len(parts)):
            self.nodes.setdefault("/".join(parts[:i]), ("dir", None))
        self.nodes[rel] = ("symlink", target) if kind == "symlink" else ("file" if kind == "hardlink" else kind, None)
        if kind == "symlink":
            why = self.resolve(rel, target)
            if why:
                del self.nodes[rel]
                refuse(name, "symlink to %s %s" % (target[:300], why))
            waiting = set()
            for i in range(1, len(parts) + 1):
                waiting |= self.pending.get("/".join(parts[:i]), set())
            for link in sorted(waiting):
                why = self.resolve(link, self.nodes[link][1])
                if why:
                    del self.nodes[rel]
                    refuse(name, "symlink to %s makes the earlier symlink %s %s" % (target[:300], link, why))
        return rel

    def resolve(self, rel, target):
        stack = rel.split("/")[:-1]
        queue = target.split("/")
        hops = steps = missing = 0
        while queue:
            steps += 1
            if steps > STEPS:
                return "takes more than %d steps to resolve" % STEPS
            c = queue.pop(0)
            if c in ("", "."):
                continue
            if c == "..":
                if not stack:
                    return "points outside the tree"
                stack.pop()
                continue
            stack.append(c)
            key = "/".join(stack)
            node = self.nodes.get(key)
            if node and node[0] == "symlink":
                hops += 1
                if hops > HOPS:
                    return "is a symlink loop (more than %d links)" % HOPS
                stack.pop()
                if node[1].startswith("/"):
                    return "points outside the tree"
                queue[0:0] = node[1].split("/")
            elif node is None and (len(stack) == 1 or "/".join(stack[:-1]) in self.nodes):
                missing += 1
                if missing > MISSING:
                    return "goes through more than %d paths that do not exist" % MISSING
                self.pending.setdefault(key, set()).add(rel)
        return None


def tar_entries(path):
    tf = tarfile.open(path, "r:gz")
    for m in tf:
        if m.type in (tarfile.REGTYPE, tarfile.AREGTYPE, tarfile.CONTTYPE):
            kind = "file"
        elif m.isdir():
            kind = "dir"
        elif m.issym():
            kind = "symlink"
        elif m.islnk():
            kind = "hardlink"
        else:
            kind = "other"
        yield m.name, kind, m.mode, m.size if kind == "file" else 0, m.linkname, (lambda m=m: tf.extractfile(m))
    tf.close()


def zip_entries(path):
    zf = zipfile.ZipFile(path)
    infos = zf.infolist()
    if len(infos) > MAX_FILES:
        raise Refused("the archive has more than %d entries (%d)" % (MAX_FILES, len(infos)))
    for i in infos:
        mode = (i.external_attr >> 16) & 0xFFFF if i.create_system == 3 else 0
        fmt = stat.S_IFMT(mode)
        if fmt:
            kind = {stat.S_IFREG: "file", stat.S_IFDIR: "dir", stat.S_IFLNK: "symlink"}.get(fmt, "other")
        else:
            kind = "dir" if i.filename.endswith("/") else "file"
        if i.flag_bits & 1:
            kind = "other"
        target = ""
        if kind == "symlink":
            if i.file_size > PATH_MAX:
                target = "x" * (PATH_MAX + 1)
            else:
                with zf.open(i) as f:
                    target = f.read(PATH_MAX + 1).decode("utf-8", "surrogateescape")
        yield i.filename, kind, mode & 0o7777 or 0o644, i.file_size if kind == "file" else 0, target, (lambda i=i: zf.open(i))


def unpack(path, fmt, root):
    entries = tar_entries if fmt == "tar.gz" else zip_entries
    size = os.path.getsize(path)
    cap = max(FLOOR, MAX_RATIO * size)
    # first pass: check everything, write nothing; second pass: write
    for write in (False, True):
        tree = Tree()
        count = total = 0
        for name, kind, mode, fsize, target, opener in entries(path):
            if kind == "other":
                refuse(name, "not a regular file, directory or link")
            if mode & 0o6000:
                refuse(name, "setuid/setgid bit")
            rel = tree.add(name, kind, target)
            if rel == "":
                continue
            count += 1
            if count > MAX_FILES:
                refuse(name, "the archive has more than %d entries" % MAX_FILES)
            if kind == "file":
                if fsize > MAX_FILE:
                    refuse(name, "%d bytes, over the limit of %d" % (fsize, MAX_FILE))
                total += fsize
                if total > MAX_TOTAL:
                    refuse(name, "archive content over the limit of %d bytes" % MAX_TOTAL)
                if total > cap:
                    refuse(name, "archive content over %d times the archive's %d bytes (a compression bomb?)" % (MAX_RATIO, size))
            if not write:
                continue
            dest = os.path.join(root, *rel.split("/"))
            os.makedirs(os.path.dirname(dest), 0o755, exist_ok=True)
            if kind == "dir":
                os.makedirs(dest, 0o755, exist_ok=True)
            elif kind == "symlink":
                os.symlink(target, dest)
            elif kind == "hardlink":
                os.link(os.path.join(root, *norm(target).split("/")), dest)
            else:
                m = 0o755 if mode & 0o100 else 0o644
                fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, m)
                n = 0
                with os.fdopen(fd, "wb") as out, opener() as src:
                    while True:
                        chunk = src.read(1 << 20)
                        if not chunk:
                            break
                        n += len(chunk)
                        if n > fsize:
                            refuse(name, "more data than its declared size")
                        out.write(chunk)
                    os.fchmod(out.fileno(), m)
                if n != fsize:
                    refuse(name, "truncated: %d of %d bytes" % (n, fsize))
    return count


def main():
    path, root = sys.argv[1], sys.argv[2]
    with open(path, "rb") as f:
        magic = f.read(4)
    if magic[:2] == b"\x1f\x8b":
        fmt = "tar.gz"
    elif magic[:2] == b"PK" and magic[2:3] in (b"\x03", b"\x05"):
        fmt = "zip"
    else:
        sys.stderr.write("the archive is neither a tar.gz nor a zip file\n")
        return 5
    try:
        n = unpack(path, fmt, root)
    except Refused as e:
        sys.stderr.write("unsafe archive entry refused: %s\n" % e)
        return 4
    except (tarfile.TarError, zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError, UnicodeError) as e:
        sys.stderr.write("the %s archive is not readable: %s\n" % (fmt, e))
        return 5
    print("%s %d" % (fmt, n))
    return 0


sys.exit(main())
PYTHON
case $status in
  0) ;;
  4) die 4 "$(head -n 1 "$work/unpack.err")" ;;
  5) die 4 "$(head -n 3 "$work/unpack.err")" ;;
  *) die 4 "unpacking failed: $(tail -n 3 "$work/unpack.err")" ;;
esac
if [ -e "$dest" ] || [ -L "$dest" ]; then
  mv -- "$dest" "$work/previous" || die 3 "cannot move the existing $dest aside"
fi
mv -- "$work/tree" "$dest" || die 3 "cannot move the unpacked tree to $dest"
read -r format entries <"$work/unpacked"
rm -rf -- "$work"
trap - EXIT INT TERM
info "unpacked $entries entries ($format) into $dest/"

# --- run -----------------------------------------------------------------------------------------
target=$dest/$script
[ -f "$target" ] || die 2 "$script is not in the archive (looked for $target)"
case $script in
  *.sh) set -- sh "$target" "$@" ;;
  *) set -- "$python" "$target" "$@" ;;
esac
info "running $*"
exec "$@"
