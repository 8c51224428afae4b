#!/bin/sh
# Live statistics from outside a process: ringpool stat (text and JSON)
# against a program with known allocations, the channel's mode, cleanup
# after kill -9, the error cases, and the exit summary.
set -u
cli=$1
lib=$2
target=$3
observe=$4
suite=stats
. "$(dirname "$0")/harness.sh"
tmp=$(mktemp -d)
mpid=
trap 'kill -9 $pid $mpid 2>/dev/null; rm -rf "$tmp"' EXIT

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

dir=/dev/shm/ringpool-$(id -u)
chan=$dir/$pid.stats
check "the channel is $dir/PID.stats, mode 600" '[ "$(stat -c %a "$chan" 2>/dev/null)" = 600 ]'
check "its directory belongs to the user, mode 700" '[ "$(stat -c %a:%u:%F "$dir")" = "700:$(id -u):directory" ]'
check "the process holds no descriptor for it" '! ls -l /proc/$pid/fd | grep -qF "$dir/"'

kill -9 "$pid"
wait "$pid" 2>/dev/null
"$cli" stat "$pid" > /dev/null 2> "$tmp/err"
rc=$?
check "a dead process gets a one-line error and a non-zero exit" '[ $rc -ne 0 ] && [ "$(wc -l < "$tmp/err")" -eq 1 ] && grep -q "no process" "$tmp/err"'
check "after kill -9, the next ringpool command removed the channel" '[ ! -e "$chan" ]'
LD_PRELOAD=$lib "$target" 30 > "$fifo" &
pid=$!
read -r line < "$fifo"
kill -9 "$pid"
wait "$pid" 2>/dev/null
env LD_PRELOAD=$lib true
check "after kill -9, the next process under the library removed the channel" '[ ! -e "$dir/$pid.stats" ]'

# Fork children that exit without exec leave no trail of files: each
# sweeps as a process that starts does.
fdir=$tmp/forks
mkdir -p "$fdir"
RINGPOOL_CHANNEL_DIR=$fdir LD_PRELOAD=$lib sh -c 'i=0; while [ $i -lt 100 ]; do (exit 0); i=$((i + 1)); done'
n=$(ls "$fdir/ringpool-$(id -u)" | wc -l)
check "100 fork children that exited left at most 2 files behind ($n)" '[ "$n" -le 2 ]'

# A directory that is not the user's own private one is refused: the
# program runs as before, its statistics stay in-process, and
# RINGPOOL_VERBOSE=1 says why. Nothing is written where the link points.
mkdir -p "$tmp/base" "$tmp/elsewhere"
chmod 700 "$tmp/elsewhere"
refused() {  # name, expected reason
  reason=$2
  RINGPOOL_CHANNEL_DIR=$tmp/base RINGPOOL_VERBOSE=1 LD_PRELOAD=$lib "$target" 0 > "$tmp/out" 2> "$tmp/err"
  rc=$?
  check "$1: refused, and RINGPOOL_VERBOSE says '$2'" \
    '[ $rc -eq 0 ] && [ "$(cat "$tmp/out")" = ready ] && grep -q "channel directory.*$reason" "$tmp/err"'
  RINGPOOL_CHANNEL_DIR=$tmp/base LD_PRELOAD=$lib "$target" 0 > /dev/null 2> "$tmp/err"
  check "$1: and without RINGPOOL_VERBOSE, nothing on stderr" '[ ! -s "$tmp/err" ]'
}
udir=$tmp/base/ringpool-$(id -u)
ln -s "$tmp/elsewhere" "$udir"
refused "a symbolic link in place of the directory" "symbolic link"
check "nothing was created where the link points" '[ -z "$(ls -A "$tmp/elsewhere")" ]'
rm "$udir"
mkdir -m 755 "$udir"
refused "a directory open to others" "mode 0700"
if [ "$(id -u)" = 0 ]; then
  chmod 700 "$udir"
  chown 65534 "$udir"
  refused "a directory of another user" "another user"
else
  skip "a directory of another user" "needs root to chown"
fi
rm -rf "$udir"
RINGPOOL_CHANNEL_DIR=$tmp/missing RINGPOOL_VERBOSE=1 LD_PRELOAD=$lib "$target" 0 > /dev/null 2> "$tmp/err"
check "a base directory that does not exist is named as the reason" 'grep -q "parent directory does not exist" "$tmp/err"'
RINGPOOL_CHANNEL_DIR=relative LD_PRELOAD=$lib "$target" 0 > /dev/null 2> "$tmp/err"
check "a relative RINGPOOL_CHANNEL_DIR gets a warning" 'grep -q "RINGPOOL_CHANNEL_DIR is not an absolute path" "$tmp/err"'

# A file left with the pid of the process is replaced (an exec'd image
# keeps its pid), and the one the process maps is what ringpool stat reads.
RINGPOOL_CHANNEL_DIR=$tmp/base sh -c 'mkdir -p -m 700 "$0/ringpool-$(id -u)" && echo x > "$0/ringpool-$(id -u)/$$.stats" &&
  exec env LD_PRELOAD="$1" "$2" 30' "$tmp/base" "$lib" "$target" > "$fifo" &
pid=$!
read -r line < "$fifo"
RINGPOOL_CHANNEL_DIR=$tmp/base "$cli" stat "$pid" > "$tmp/text" 2>&1
check "a stale file with the same pid is replaced, and stat reads the new one" 'grep -q "^ringpool statistics for pid $pid" "$tmp/text"'
"$cli" stat "$pid" > "$tmp/text" 2>&1
check "ringpool stat finds the channel from the process's mappings, whatever RINGPOOL_CHANNEL_DIR says" \
  'grep -q "^ringpool statistics for pid $pid" "$tmp/text"'
kill -9 "$pid"
wait "$pid" 2>/dev/null

# Nothing the program can see of itself changes: descriptors (none of the
# library's), signal mask and dispositions, resource limits, environment,
# errno; and nothing on stderr. Whatever the options; stdout is a pipe,
# stderr a file: the same targets in every run.
"$observe" < /dev/null 2> "$tmp/obs.err" | sed 's/:\[[0-9]*\]//' > "$tmp/obs.plain"
for opts in "" "RINGPOOL_STATS=1" "RINGPOOL_PROFILE=$tmp/obs.heap RINGPOOL_PROFILE_RATE=1" "RINGPOOL_LEAKS=1"; do
  env $opts LD_PRELOAD=$lib "$observe" < /dev/null 2> "$tmp/obs.err" | sed 's/:\[[0-9]*\]//' |
    grep -v "^env \(LD_PRELOAD\|RINGPOOL_\)" > "$tmp/obs.lib"
  check "what the program sees of itself is the same under the library (${opts:-default options})" \
    'diff "$tmp/obs.plain" "$tmp/obs.lib" > /dev/null'
  [ -z "$opts" ] && check "and with the default options nothing is on stderr" '[ ! -s "$tmp/obs.err" ]'
done

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
  # Gone before the next test opens the fifo: a writer that closes it late
  # would end that test's read with EOF before its target is ready.
  wait "$opid" 2>/dev/null
  check "another user's process gets 'permission denied'" '[ $rc -ne 0 ] && grep -q "permission denied" "$tmp/err"'
else
  skip "another user's process" "needs root and setpriv"
fi

# ---- metrics: Prometheus text format, OpenMetrics, node_exporter's textfile
LD_PRELOAD=$lib "$target" 30 4 > "$fifo" &
mpid=$!
read -r line < "$fifo"
"$cli" stat --format prometheus "$mpid" > "$tmp/stat.prom"
check "stat --format prometheus: the threads and the 100-byte blocks of a 5-thread process" \
  'grep -q "^ringpool_threads{pid=\"$mpid\",command=\"stats_target\"} 5$" "$tmp/stat.prom" &&
   grep -Eq "^ringpool_class_live_blocks\{pid=\"$mpid\",command=\"stats_target\",class=\"112\"\} 100[0-9]{2}$" "$tmp/stat.prom"'
"$cli" top --format prometheus > "$tmp/top.prom"
check "top --format prometheus: one series per process, labelled by pid" \
  'grep -q "^ringpool_live_bytes{pid=\"$mpid\",command=\"stats_target\"} " "$tmp/top.prom"'
if command -v promtool > /dev/null; then
  check "promtool check metrics accepts stat's output" 'promtool check metrics < "$tmp/stat.prom" 2> "$tmp/lint"'
  check "promtool check metrics accepts top's output" 'promtool check metrics < "$tmp/top.prom" 2>> "$tmp/lint"'
  [ -s "$tmp/lint" ] && sed 's/^/#   /' "$tmp/lint"
else
  skip "promtool check metrics" "Debian: apt-get install prometheus"
fi
"$cli" stat --format openmetrics "$mpid" > "$tmp/stat.om"
"$cli" top --format openmetrics > "$tmp/top.om"
if /usr/bin/python3 -c 'import prometheus_client.openmetrics.parser' 2> /dev/null; then
  for f in stat top; do
    check "$f --format openmetrics parses as OpenMetrics 1.0 (prometheus_client, strict)" \
      '/usr/bin/python3 -c "import sys; from prometheus_client.openmetrics.parser import text_string_to_metric_families as p; n = len(list(p(open(sys.argv[1]).read()))); sys.exit(n < 20)" "$tmp/$f.om"'
  done
else
  check "openmetrics output ends with # EOF" '[ "$(tail -n 1 "$tmp/stat.om")" = "# EOF" ]'
  skip "strict OpenMetrics parse" "Debian: apt-get install python3-prometheus-client"
fi
mkdir "$tmp/textfile"
tf=$tmp/textfile/ringpool.prom
"$cli" top --textfile "$tf"
check "top --textfile writes the metrics and leaves no temporary file" \
  'grep -q "^ringpool_live_bytes{pid=\"$mpid\"" "$tf" && [ "$(ls -A "$tmp/textfile")" = ringpool.prom ]'
# Writers killed at random moments, a reader watching: every read is whole.
: > "$tmp/partial"
( while [ ! -e "$tmp/stop" ]; do
    tail -n 1 "$tf" | grep -q "^ringpool_uptime_seconds{" || echo partial >> "$tmp/partial"
  done ) &
reader=$!
i=0
while [ $i -lt 20 ]; do
  "$cli" top --textfile "$tf" --interval 0.001 &
  w=$!
  r=$(od -An -N1 -tu1 /dev/urandom | tr -d ' ')
  sleep 0.0$((r % 9 + 1))
  kill -9 $w
  wait $w 2> /dev/null
  i=$((i + 1))
done
touch "$tmp/stop"
wait $reader
check "a textfile writer killed mid-write 20 times never leaves a partial file" '[ ! -s "$tmp/partial" ] && tail -n 1 "$tf" | grep -q "^ringpool_uptime_seconds{"'
"$cli" top --textfile "$tf"
check "the next writer removes the temporary files of killed ones" '[ "$(ls -A "$tmp/textfile")" = ringpool.prom ]'
"$cli" stat --textfile "$tmp/textfile/x.prom" --format json "$mpid" 2> "$tmp/err"
check "--textfile with --format json is refused" '[ $? -eq 2 ] && grep -q "textfile" "$tmp/err"'
kill $mpid

RINGPOOL_STATS=1 LD_PRELOAD=$lib "$target" 0 > /dev/null 2> "$tmp/summary"
check "RINGPOOL_STATS=1 prints the summary at exit" 'grep -q "^ringpool statistics for pid" "$tmp/summary"'
RINGPOOL_STATS_FILE="$tmp/stats.%p" LD_PRELOAD=$lib "$target" 0 > /dev/null 2>&1
check "RINGPOOL_STATS_FILE writes the summary to a file named with the pid" 'ls "$tmp"/stats.[0-9]* > /dev/null 2>&1 && grep -q "^ringpool statistics" "$tmp"/stats.[0-9]*'

finish
