#!/bin/sh
# The library exports exactly tests/exported-symbols.txt, unversioned, and
# does not depend on libstdc++.
set -eu
lib=$1
here=$(dirname "$0")
fail=0
if readelf -d "$lib" | grep -q 'libstdc++'; then
  echo "not ok - $lib depends on libstdc++"; fail=1
else
  echo "ok - no libstdc++ dependency"
fi
actual=$(nm -D --defined-only "$lib" | awk '{print $3}' | sort)
expected=$(grep -v '^#' "$here/exported-symbols.txt" | sort)
if [ "$actual" = "$expected" ]; then
  echo "ok - exported symbols match tests/exported-symbols.txt"
else
  echo "not ok - exported symbols differ (< expected, > actual):"
  printf '%s\n' "$expected" > /tmp/rp-exp.$$; printf '%s\n' "$actual" > /tmp/rp-act.$$
  diff /tmp/rp-exp.$$ /tmp/rp-act.$$ || true; rm -f /tmp/rp-exp.$$ /tmp/rp-act.$$
  fail=1
fi
if nm -D --defined-only "$lib" | awk '{print $3}' | grep -E '^(malloc|free|calloc|realloc)@' >/dev/null; then
  echo "not ok - an interposed name carries a symbol version"; fail=1
else
  echo "ok - interposed names are unversioned"
fi
exit $fail
