#!/bin/sh
# Two builds from the same sources give byte-identical binaries.
#
# usage: tests/check-reproducible.sh [SRCDIR]   (default: this script's tree)
#   MAKE, and CC CXX CFLAGS CXXFLAGS CPPFLAGS LDFLAGS from the environment,
#   reach both builds alike.  KEEP=1 keeps the temporary trees.
#
# Cases
#   build dirs  one tree, built into two temporary BUILD directories
#   tree paths  two copies of the tree at different paths (what Debian's
#               reproducible-builds checks vary), each built in place: the
#               compiler must not write the source path into the binaries
#               (-ffile-prefix-map=$(CURDIR)=.)
# Compared: libringpool.so.$(VERSION) and the ringpool CLI.
# Prints "ok - ..."/"not ok - ..." per case and a summary; exits 0 when both
# cases pass, 1 otherwise.
set -u
suite=check-reproducible
. "$(dirname "$0")/harness.sh"
top=$(cd "${1:-$(dirname "$0")/..}" && pwd)
MAKE=${MAKE:-make}
version=$(cat "$top/VERSION")
lib=libringpool.so.$version
tmp=$(mktemp -d "${TMPDIR:-/tmp}/ringpool-repro.XXXXXX")
if [ -n "${KEEP:-}" ]; then echo "# keeping $tmp"; else trap 'rm -rf "$tmp"' EXIT; fi
differ=0

# copy_tree DEST: the sources as git sees them (tracked and untracked, not
# ignored), else everything but build outputs.
copy_tree() {
  mkdir -p "$1"
  if git -C "$top" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    (cd "$top" && git ls-files -z --cached --others --exclude-standard |
      xargs -0 sh -c 'for f; do [ -e "$f" ] && printf "%s\0" "$f"; done' sh |
      tar --null -T - -cf -) | tar -C "$1" -xf -
  else
    (cd "$top" && tar --exclude=./build --exclude=./.git --exclude-vcs-ignores -cf - .) |
      tar -C "$1" -xf -
  fi
}

# build SRC BUILDDIR LOG: the library and the CLI.
build() {
  "$MAKE" -C "$1" -j2 BUILD="$2" "$2/$lib" "$2/ringpool" >"$3" 2>&1 || {
    echo "# build in $1 (BUILD=$2) failed:"; sed 's/^/#   /' "$3" | tail -20; return 1; }
}

# same CASE DIR_A DIR_B: compare the outputs of two builds.
same() {
  diffs=""
  for f in "$lib" ringpool; do cmp -s "$2/$f" "$3/$f" || diffs="$diffs $f"; done
  if [ -z "$diffs" ]; then
    pass "$1: $lib and ringpool are byte-identical"
  else
    fail "$1: differ:$diffs"; differ=1
    for f in $diffs; do
      if command -v readelf >/dev/null; then
        readelf -wi "$2/$f" 2>/dev/null | grep -E 'DW_AT_(comp_dir|name)' | sort -u >"$tmp/a.dw"
        readelf -wi "$3/$f" 2>/dev/null | grep -E 'DW_AT_(comp_dir|name)' | sort -u >"$tmp/b.dw"
        diff "$tmp/a.dw" "$tmp/b.dw" | grep '^[<>]' | head -4 | sed "s/^/#   $f: /"
      fi
    done
  fi
}

# Case 1: one tree, two build directories.
if build "$top" "$tmp/b1" "$tmp/b1.log" && build "$top" "$tmp/b2" "$tmp/b2.log"; then
  same "build dirs" "$tmp/b1" "$tmp/b2"
else
  fail "build dirs" "a build failed"
fi

# Case 2: two copies of the tree, at paths of different lengths.
copy_tree "$tmp/t1/src"
copy_tree "$tmp/t2/another-src"
if build "$tmp/t1/src" build "$tmp/t1.log" && build "$tmp/t2/another-src" build "$tmp/t2.log"; then
  same "tree paths" "$tmp/t1/src/build" "$tmp/t2/another-src/build"
else
  fail "tree paths" "a build failed"
fi
[ $differ -eq 0 ] || echo "# hint: the source path leaks in; the Makefile's compile lines need -ffile-prefix-map=\$(CURDIR)=."

finish
