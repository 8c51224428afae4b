#!/bin/sh
# Live statistics from outside a process: ringpool stat (text and JSON)
# against a program with known allocations, the channel's mode, cleanup
# after kill -9, the error cases, and the exit summary.
set -u
cli=$1
lib=$2
target=$3
pass=0
fail=0
ok() { echo "ok - $1"; pass=$((pass + 1)); }
notok() { echo "not ok - $1"; fail=$((fail + 1)); }
check() { if eval "$2"; then ok "$1"; else notok "$1"; fi; }
tmp=$(mktemp -d)
trap 'kill -9 $pid 2>/dev/null; rm -rf "$tmp"' EXIT

fifo=$tmp/ready
mkfifo "$fifo"
LD_PRELOAD=$lib "$target" 30 > "$fifo" &
pid=$!
read -r line < "$fifo"
check "the target started under the library" '[ "$line" = ready ]'

"$cli" stat --json "$pid" > "$tmp/json" 2> "$tmp/err"
check "ringpool stat --json exits 0" '[ $? -eq 0 ]'
python3 - "$tmp/json" > "$tmp/verdict" 2>&1 <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
small = [c for c in s["classes"] if c["kind"] == "small" and c["size"] == 112]
large = [c for c in s["classes"] if c["kind"] == "large"]
errs = []
if not small or not (10000 <= small[0]["live_blocks"] <= 10100):
    errs.append("class 112 live blocks %s, want 10000" % (small[0]["live_blocks"] if small else None))
if not large or large[0]["live_blocks"] != 40:
    errs.append("large live blocks %s, want 40" % (large[0]["live_blocks"] if large else None))
if s["live_bytes"] < 40 * (1 << 20) + 10000 * 100:
    errs.append("live_bytes %d too small" % s["live_bytes"])
if s["resident"] < 40 * (1 << 20):
    errs.append("resident %d below what the program touched" % s["resident"])
if s["threads_active"] != 1:
    errs.append("threads_active %d" % s["threads_active"])
print("; ".join(errs) if errs else "match")
PY
check "the JSON numbers match what the program holds ($(cat "$tmp/verdict"))" '[ "$(cat "$tmp/verdict")" = match ]'

"$cli" stat "$pid" > "$tmp/text"
check "ringpool stat prints the table with the 112-byte class" 'grep -Eq "^ +112 +[0-9]+ +[0-9]+ +100[0-9][0-9] " "$tmp/text"'
check "the table shows 40 live large blocks" 'grep -q "large (32 KiB-2 MiB): 40 blocks" "$tmp/text"'

"$cli" stat --watch 0.2 "$pid" > "$tmp/watch" &
wpid=$!
sleep 1
kill "$wpid" 2>/dev/null
wait "$wpid" 2>/dev/null
check "ringpool stat --watch refreshes" '[ "$(grep -c "^ringpool statistics" "$tmp/watch")" -ge 2 ]'

"$cli" top --once > "$tmp/top"
check "ringpool top lists the process" 'grep -Eq "^ *$pid +stats_target" "$tmp/top"'

chan=""
for f in /proc/$pid/fd/*; do
  [ "$(readlink "$f")" = "/memfd:ringpool-stats (deleted)" ] && chan=$f
done
check "the channel is a memfd of the process" '[ -n "$chan" ]'
check "the channel's mode is 0600" '[ "$(stat -L -c %a "$chan")" = 600 ]'

kill -9 "$pid"
wait "$pid" 2>/dev/null
check "nothing is left in /dev/shm after kill -9" '! ls /dev/shm 2>/dev/null | grep -q ringpool'
"$cli" stat "$pid" > /dev/null 2> "$tmp/err"
rc=$?
check "a dead process gets a one-line error and a non-zero exit" '[ $rc -ne 0 ] && [ "$(wc -l < "$tmp/err")" -eq 1 ] && grep -q "no process" "$tmp/err"'

sleep 30 &
spid=$!
"$cli" stat "$spid" > /dev/null 2> "$tmp/err"
rc=$?
kill "$spid"
check "a process without the library is named as such" '[ $rc -ne 0 ] && grep -q "does not run with libringpool" "$tmp/err"'
"$cli" stat notapid > /dev/null 2>&1
check "a bad argument exits 2" '[ $? -eq 2 ]'

if [ "$(id -u)" = 0 ] && command -v setpriv > /dev/null; then
  LD_PRELOAD=$lib setpriv --reuid=65534 --regid=65534 --clear-groups "$target" 5 > "$fifo" &
  opid=$!
  read -r line < "$fifo"
  setpriv --reuid=65533 --regid=65533 --clear-groups "$cli" stat "$opid" > /dev/null 2> "$tmp/err"
  rc=$?
  kill "$opid" 2>/dev/null
  check "another user's process gets 'permission denied'" '[ $rc -ne 0 ] && grep -q "permission denied" "$tmp/err"'
else
  echo "skip - another user's process (needs root and setpriv)"
fi

RINGPOOL_STATS=1 LD_PRELOAD=$lib "$target" 0 > /dev/null 2> "$tmp/summary"
check "RINGPOOL_STATS=1 prints the summary at exit" 'grep -q "^ringpool statistics for pid" "$tmp/summary"'
RINGPOOL_STATS_FILE="$tmp/stats.%p" LD_PRELOAD=$lib "$target" 0 > /dev/null 2>&1
check "RINGPOOL_STATS_FILE writes the summary to a file named with the pid" 'ls "$tmp"/stats.[0-9]* > /dev/null 2>&1 && grep -q "^ringpool statistics" "$tmp"/stats.[0-9]*'

echo "stats: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
