#!/bin/sh
# The man pages say what the code does, and are lint-clean.
#
# usage: tests/check-man.sh [SRCDIR]     (default: the tree this script is in)
#
# Checks
#   options   every option of pool/options.cpp's table appears in ringpool(7)
#             as "Ev RINGPOOL_<NAME>"
#   commands  every subcommand in tools/ringpool.cpp's usage text appears in
#             ringpool(1) as "Cm <name>", and every --flag there as "Fl \-flag"
#   api       every function and every ringpool_stats field of
#             include/ringpool.h appears in ringpool(3)
#   lint      mandoc -Tlint -W warning reports nothing (skipped without mandoc)
# Names documented but not found in the sources are reported as "# note"
# lines only: the pages may describe what a later change implements.
#
# Prints "ok - ...", "not ok - ..." or "skip - ..." per check and a summary
# line; exits 0 when nothing failed, 1 otherwise.
set -u
top=${1:-$(cd "$(dirname "$0")/.." && pwd)}
cd "$top" || exit 2
man1=man/ringpool.1 man3=man/ringpool.3 man7=man/ringpool.7
suite=check-man
. "$(dirname "$0")/harness.sh"

for f in $man1 $man3 $man7 pool/options.cpp tools/ringpool.cpp include/ringpool.h; do
  [ -f "$f" ] || { echo "$0: $top/$f: missing" >&2; exit 2; }
done

# has FILE FIXED-STRING: the page contains the string.
has() { grep -F -q -e "$2" "$1"; }

# 1. Options: the rows of k_table look like   {"PURGE_DELAY", "help", ...},
options=$(sed -n '/k_table\[\] *= *{/,/^};/p' pool/options.cpp |
  sed -n 's/^[[:space:]]*{[[:space:]]*"\([A-Z0-9_]*\)".*/\1/p')
if [ -z "$options" ]; then
  fail "options: no rows found in pool/options.cpp's k_table (did its shape change?)"
else
  missing=""
  for o in $options; do has $man7 "Ev RINGPOOL_$o" || missing="$missing RINGPOOL_$o"; done
  if [ -z "$missing" ]; then
    pass "options: all $(echo $options | wc -w) options of pool/options.cpp are in ringpool(7)"
  else
    fail "options: missing from ringpool(7):$missing"
  fi
fi
# Documented variables the sources never mention (stale, or not written yet).
for v in $(grep -o 'Ev RINGPOOL_[A-Z0-9_]*' $man7 | sed 's/^Ev //' | sort -u); do
  if ! grep -rqs -w "$v" pool preload tools uring_shim &&
     ! printf '%s\n' $options | sed 's/^/RINGPOOL_/' | grep -qx "$v"; then
    echo "# note: $v is documented in ringpool(7) but not named in the sources"
  fi
done

# 2. Commands and flags: the usage text's lines are
#   "usage: ringpool run [--stats] ...\n"   and   "       ringpool version\n"
usage=$(grep -E '"(usage: +| +)ringpool [a-z]' tools/ringpool.cpp)
commands=$(printf '%s\n' "$usage" | sed -n 's/.*ringpool \([a-z][a-z-]*\).*/\1/p' | sort -u)
flags=$(printf '%s\n' "$usage" | grep -oE -- '--[a-z][a-z-]*' | sort -u)
if [ -z "$commands" ]; then
  fail "commands: no usage lines found in tools/ringpool.cpp (did its shape change?)"
else
  missing=""
  for c in $commands; do has $man1 "Cm $c" || missing="$missing $c"; done
  for f in $flags; do has $man1 "Fl \\-${f#--}" || missing="$missing $f"; done
  if [ -z "$missing" ]; then
    pass "commands: $(echo $commands | wc -w) commands and $(echo $flags | wc -w) flags of the usage text are in ringpool(1)"
  else
    fail "commands: missing from ringpool(1):$missing"
  fi
fi
for c in $(grep -o '^\.Cm [a-z][a-z-]*' $man1 | sed 's/^\.Cm //' | sort -u); do
  printf '%s\n' $commands | grep -qx "$c" ||
    echo "# note: ringpool $c is documented in ringpool(1) but not in the usage text"
done

# 3. The API: functions declared and struct fields of include/ringpool.h.
funcs=$(sed -n 's/^[a-z].*[ *]\(ringpool_[a-z_]*\)(.*;$/\1/p' include/ringpool.h)
fields=$(sed -n '/^struct ringpool_stats {/,/^};/p' include/ringpool.h |
  sed -n 's/^[[:space:]]*[a-z0-9_]*[[:space:]]\{1,\}\([a-z_]*\);.*/\1/p')
missing=""
for f in $funcs; do has $man3 "Fn $f" || missing="$missing $f()"; done
for f in $fields; do grep -q "^ *[a-z0-9_]* $f;" $man3 || missing="$missing .$f"; done
if [ -z "$funcs" ] || [ -z "$fields" ]; then
  fail "api: no functions or no struct fields found in include/ringpool.h"
elif [ -z "$missing" ]; then
  pass "api: $(echo $funcs | wc -w) functions and $(echo $fields | wc -w) stats fields are in ringpool(3)"
else
  fail "api: missing from ringpool(3):$missing"
fi

# 4. Lint.
if command -v mandoc >/dev/null 2>&1; then
  if out=$(mandoc -Tlint -W warning $man1 $man3 $man7 2>&1); then
    pass "lint: mandoc -Tlint -W warning is clean"
  else
    fail "lint: mandoc -Tlint -W warning:"
    printf '%s\n' "$out" | sed 's/^/# /'
  fi
else
  skip "lint (mandoc not installed)"
fi

finish
