#!/bin/sh
# debian/libringpool1.symbols lists exactly the symbols of
# tests/exported-symbols.txt (what the library exports), so that `make deb`
# (dpkg-gensymbols) does not fail on a missing symbol or warn on a new one.
#
# usage: tests/check-debian-symbols.sh [SRCDIR]   (default: this script's tree)
# C++ names are compared demangled, as the symbols file writes them ((c++)
# tags, the 64-bit variant of those that take a size_t).  Needs c++filt
# (binutils).  Exits 0 when both lists agree, 1 otherwise; without the
# symbols file the check is a skip.
set -u
suite=check-debian-symbols
. "$(dirname "$0")/harness.sh"
top=$(cd "${1:-$(dirname "$0")/..}" && pwd)
cd "$top" || exit 2
sym=debian/libringpool1.symbols
[ -f "$sym" ] || { skip "the symbols file" "no $sym"; finish; exit; }
tmp=$(mktemp -d "${TMPDIR:-/tmp}/ringpool-syms.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

grep -v '^#' tests/exported-symbols.txt | sed '/^$/d' | c++filt | sort >"$tmp/exported"
# " name@Base 1.0" and ' (c++)"operator new(unsigned long)@Base" 1.0'; the
# 32-bit variants are skipped.
grep '^ ' "$sym" | grep -v 'arch-bits=32' |
  sed -e 's/^ *([^)]*)"\(.*\)@Base".*/\1/' -e 's/^ *\([^ ]*\)@Base.*/\1/' | sort >"$tmp/listed"
if cmp -s "$tmp/exported" "$tmp/listed"; then
  pass "$sym lists the $(wc -l <"$tmp/listed") exported symbols"
else
  fail "$sym and tests/exported-symbols.txt differ" "< exported, > listed, below"
  diff "$tmp/exported" "$tmp/listed" | grep '^[<>]' | sed 's/^/# /'
fi
finish
