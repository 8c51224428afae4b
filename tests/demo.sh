#!/bin/sh
# make demo: from a fresh Debian 12 machine, install what is missing, build,
# and run a real, unmodified program under the library with its stats.
set -eu
cd "$(dirname "$0")/.."
tests/deps.sh
make -j"$(nproc)" all
echo
echo "== python3 (PYTHONMALLOC=malloc) under ringpool, stats at exit =="
PYTHONMALLOC=malloc build/ringpool run --stats -- /usr/bin/python3 -c '
d = {}
for i in range(200000):
    d[str(i)] = [i] * (i % 7)
print("python3 built a dict of", len(d), "lists")
'
