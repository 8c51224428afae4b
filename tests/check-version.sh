#!/bin/sh
# The version is written once, in VERSION; every copy agrees with it.
#
# usage: tests/check-version.sh [SRCDIR]   (default: this script's tree)
# Copies checked: the RINGPOOL_VERSION_* macros of include/ringpool.h and the
# #defines shown in ringpool(3) (`make update-version` rewrites both), and
# the version of debian/changelog's top entry (a native package: `dch -v VERSION`).
# Exits 0 when all agree, 1 otherwise.
set -u
suite=check-version
. "$(dirname "$0")/harness.sh"
top=$(cd "${1:-$(dirname "$0")/..}" && pwd)
cd "$top" || exit 2
v=$(cat VERSION)
major=${v%%.*} rest=${v#*.}
minor=${rest%%.*} patch=${rest#*.}

case $v in
  *[!0-9.]* | *..* | .* | *. ) fail "VERSION '$v' is not MAJOR.MINOR.PATCH" ;;
  *.*.*.*) fail "VERSION '$v' is not MAJOR.MINOR.PATCH" ;;
  *.*.*) pass "VERSION is $v" ;;
  *) fail "VERSION '$v' is not MAJOR.MINOR.PATCH" ;;
esac

# macro FILE NAME: the value of "#define NAME value" in FILE (mdoc .Fd too).
macro() { sed -n "s/^\(\.Fd \)\{0,1\}#define $2 \(.*\)\$/\2/p" "$1" | head -1; }
for f in include/ringpool.h man/ringpool.3; do
  got="$(macro $f RINGPOOL_VERSION_MAJOR).$(macro $f RINGPOOL_VERSION_MINOR).$(macro $f RINGPOOL_VERSION_PATCH)"
  str=$(macro $f RINGPOOL_VERSION_STRING | sed 's/\\(dq/"/g')
  if [ "$got" = "$major.$minor.$patch" ] && [ "$str" = "\"$v\"" ]; then
    pass "$f says $v"
  else
    fail "$f says $got and $str, VERSION says $v (run: make update-version)"
  fi
done

if [ -f debian/changelog ]; then
  deb=$(sed -n '1s/^ringpool (\([^)]*\)).*/\1/p' debian/changelog)
  up=${deb%-*}
  if [ "$up" = "$v" ]; then pass "debian/changelog's top entry is $deb"
  else fail "debian/changelog's top entry is $deb, VERSION says $v (run: dch -v $v)"; fi
fi
finish
