#!/bin/sh
# `make install` into a staging directory gives a working installation.
#
# usage: tests/check-install.sh [SRCDIR]    (default: this script's tree)
#   MAKE, CC and the usual flags come from the environment; KEEP=1 keeps the
#   temporary directory.  Builds in a temporary BUILD, so the tree's own
#   build/ is left alone.
#
# Cases, for prefix=/usr with libdir=/usr/lib and with the multiarch
# libdir=/usr/lib/<triplet> that Debian uses, each with DESTDIR=<tmp>/root:
#   files      the library (real file, .so.1 and .so links), the CLI, the
#              header, ringpool.pc and the three man pages are where the
#              variables say
#   pc         pkg-config (sysroot and path pointing into DESTDIR) reports
#              VERSION and the right flags
#   example    examples/stats.c compiled with `pkg-config --cflags --libs
#              ringpool` runs with LD_LIBRARY_PATH on the installed library
#              and passes its own checks (they show malloc is ringpool's)
#   run        the installed `ringpool run -- ...` preloads the installed
#              library, found relative to the CLI (it is not in the libdir
#              compiled in, which is under DESTDIR)
#   uninstall  `make uninstall` leaves no file behind
# Prints "ok - ..."/"not ok - ..."/"skip - ..." and a summary; exits 0 when
# nothing failed, 1 otherwise.
set -u
top=$(cd "${1:-$(dirname "$0")/..}" && pwd)
MAKE=${MAKE:-make}
CC=${CC:-cc}
version=$(cat "$top/VERSION")
tmp=$(mktemp -d "${TMPDIR:-/tmp}/ringpool-install.XXXXXX")
if [ -n "${KEEP:-}" ]; then echo "# keeping $tmp"; else trap 'rm -rf "$tmp"' EXIT; fi
suite=check-install
. "$(dirname "$0")/harness.sh"
show() { sed 's/^/#   /' "$1" | tail -${2:-15}; }

triplet=$($CC -print-multiarch 2>/dev/null)
[ -n "$triplet" ] || triplet=$(gcc -dumpmachine 2>/dev/null)

# one_install NAME LIBDIR: the cases above for prefix=/usr libdir=LIBDIR.
one_install() {
  name=$1 libdir=$2 root=$tmp/root-$1
  mkvars="BUILD=$tmp/build prefix=/usr libdir=$libdir DESTDIR=$root"
  if ! "$MAKE" -C "$top" -j2 $mkvars install >"$tmp/$name-install.log" 2>&1; then
    fail "$name: make install failed"; show "$tmp/$name-install.log"; return
  fi

  missing=""
  for f in "$libdir/libringpool.so.$version" usr/bin/ringpool usr/include/ringpool.h \
      "$libdir/pkgconfig/ringpool.pc" usr/share/man/man1/ringpool.1 \
      usr/share/man/man3/ringpool.3 usr/share/man/man7/ringpool.7; do
    [ -f "$root/${f#/}" ] || missing="$missing $f"
  done
  [ "$(readlink "$root$libdir/libringpool.so.1")" = "libringpool.so.$version" ] ||
    missing="$missing $libdir/libringpool.so.1->libringpool.so.$version"
  [ "$(readlink "$root$libdir/libringpool.so")" = "libringpool.so.1" ] ||
    missing="$missing $libdir/libringpool.so->libringpool.so.1"
  if [ -z "$missing" ]; then pass "$name: files installed under DESTDIR"
  else fail "$name: missing or wrong:$missing"; fi

  if ! command -v pkg-config >/dev/null 2>&1; then
    skip "$name: pc and example (pkg-config not installed)"
  else
    # System directories would be dropped from the flags before the sysroot
    # is prepended: keep them.
    pc() {
      PKG_CONFIG_SYSROOT_DIR=$root PKG_CONFIG_LIBDIR=$root$libdir/pkgconfig \
        PKG_CONFIG_PATH= PKG_CONFIG_ALLOW_SYSTEM_CFLAGS=1 PKG_CONFIG_ALLOW_SYSTEM_LIBS=1 \
        pkg-config "$@" ringpool
    }
    # echo: one space between words, none at the end.
    got_v=$(pc --modversion) cflags=$(echo $(pc --cflags)) libs=$(echo $(pc --libs))
    if [ "$got_v" = "$version" ] && [ "$cflags" = "-I$root/usr/include" ] &&
       [ "$libs" = "-L$root$libdir -lringpool" ]; then
      pass "$name: pkg-config says $got_v, $cflags, $libs"
    else
      fail "$name: pkg-config says '$got_v' '$cflags' '$libs'"
    fi
    # The .pc file is written relative to ${prefix}, so that redefining it
    # relocates every path, as with any pkg-config file.
    rel=$(echo $(PKG_CONFIG_LIBDIR=$root$libdir/pkgconfig PKG_CONFIG_PATH= PKG_CONFIG_ALLOW_SYSTEM_CFLAGS=1 \
      PKG_CONFIG_ALLOW_SYSTEM_LIBS=1 pkg-config --define-variable=prefix="$root/usr" --cflags --libs ringpool))
    if [ "$rel" = "-I$root/usr/include -L$root$libdir -lringpool" ]; then
      pass "$name: pkg-config --define-variable=prefix relocates the paths"
    else
      fail "$name: pkg-config --define-variable=prefix=$root/usr says '$rel'"
    fi
    # shellcheck disable=SC2086
    if ! $CC ${CPPFLAGS:-} ${CFLAGS:-} $cflags -o "$tmp/$name-stats" "$top/examples/stats.c" \
         ${LDFLAGS:-} $libs >"$tmp/$name-cc.log" 2>&1; then
      fail "$name: examples/stats.c does not build against the installed files"
      show "$tmp/$name-cc.log"
    elif LD_LIBRARY_PATH=$root$libdir "$tmp/$name-stats" >"$tmp/$name-stats.log" 2>&1; then
      pass "$name: examples/stats.c builds and runs: $(head -1 "$tmp/$name-stats.log")"
    else
      fail "$name: examples/stats.c fails on the installed library"; show "$tmp/$name-stats.log"
    fi
  fi

  # The preloaded library must be the installed one, resolved to its real path.
  want=$(realpath "$root$libdir/libringpool.so.1")
  if "$root/usr/bin/ringpool" run -- true >"$tmp/$name-run.log" 2>&1 &&
     "$root/usr/bin/ringpool" run -- cat /proc/self/maps >"$tmp/$name-maps" 2>>"$tmp/$name-run.log" &&
     grep -q "libringpool" "$tmp/$name-maps"; then
    got=$(grep -o '/[^ ]*libringpool[^ ]*' "$tmp/$name-maps" | head -1)
    if [ "$(realpath "$got")" = "$want" ]; then
      pass "$name: installed ringpool run preloads the installed library"
    else
      fail "$name: installed ringpool run preloads $got, not $want"
    fi
  else
    fail "$name: installed ringpool run does not find the installed library"
    show "$tmp/$name-run.log" 5
  fi

  if ! "$MAKE" -C "$top" $mkvars uninstall >"$tmp/$name-uninstall.log" 2>&1; then
    fail "$name: make uninstall failed"; show "$tmp/$name-uninstall.log"
  else
    left=$(cd "$root" && find . ! -type d | sort | tr '\n' ' ')
    if [ -z "$left" ]; then pass "$name: make uninstall removes every file"
    else fail "$name: make uninstall left: $left"; fi
  fi
}

one_install lib /usr/lib
if [ -n "$triplet" ]; then
  one_install multiarch "/usr/lib/$triplet"
else
  skip "multiarch (no target triplet from $CC)"
fi

finish
