#!/bin/sh
# Install the Debian packages that building and testing need, where missing.
# Used by `make demo` and .ci/run. Needs root (or sudo) only if something
# is missing.
set -eu
need="g++ make python3 perl git sqlite3 catch2 liburing-dev pkg-config mandoc valgrind curl socat redis-server redis-tools binutils"
# The metrics checkers (promtool, a strict OpenMetrics parser): their tests
# skip without them, so a failure to install them is not an error.
optional="prometheus python3-prometheus-client"
missing=""
for p in $need $optional; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -n "$missing" ] || exit 0
echo "installing:$missing"
sudo=""
[ "$(id -u)" = 0 ] || sudo=sudo
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
# shellcheck disable=SC2086
$sudo apt-get install -y -qq --no-install-recommends $missing >/dev/null ||
  $sudo apt-get install -y -qq --no-install-recommends $(echo "$missing" | tr ' ' '\n' | grep -vxF -e prometheus -e python3-prometheus-client) >/dev/null
