#!/bin/bash
# tests/shim/run.sh LIB [BINDIR]: the io_uring shim's tests.
#
# Every test program in BINDIR (built from tests/shim/*.c) runs twice under
# LD_PRELOAD=LIB: plain (RINGPOOL_URING unset) and routed (RINGPOOL_URING=1,
# RINGPOOL_VERBOSE=1). Their stdout and exit codes must be equal, and the
# routed run must really have routed (the shim's counter line on stderr says
# routed=N, N > 0) without falling back. Exit 77 from either run: skipped,
# never passed. Then real programs: python3's threaded http.server under
# concurrent curl downloads, socat, iperf3 (each skipped when missing),
# io_uring switched off by sysctl (root only; RINGPOOL_TEST_SYSCTL=0 skips),
# and `ringpool stat PID` (the CLI next to LIB, or RINGPOOL_CLI) reading the
# socket counters of a live routed process.
#
# Output: one TAP-style line per test, then
#   shim: N passed, M failed, K skipped
set -u

if [ $# -lt 1 ]; then
  echo "usage: $0 LIB [BINDIR]" >&2
  exit 2
fi
lib=$(readlink -f "$1")
bindir=$(readlink -f "${2:-build/tests/shim}")
here=$(cd "$(dirname "$0")" && pwd)
limit=${SHIM_TEST_TIMEOUT:-120}
work=$(mktemp -d "${TMPDIR:-/tmp}/shim-test.XXXXXX")
trap 'rm -rf "$work"' EXIT

n=0 pass=0 fail=0 skip=0
ok() { n=$((n + 1)); pass=$((pass + 1)); echo "ok $n - $1"; }
skipped() { n=$((n + 1)); skip=$((skip + 1)); echo "ok $n - $1 # SKIP $2"; }
notok() {
  n=$((n + 1)); fail=$((fail + 1)); echo "not ok $n - $1"
  shift
  for f in "$@"; do [ -f "$f" ] && sed 's/^/#   /' "$f" | head -40; done
}

# Sums a counter over every "ringpool: uring[PID]: routed=..." line of a
# stderr file: whole lines only (the shim writes each in one write(2)).
counter_re='^ringpool: uring[[][0-9]+[]]:( [a-z]+=[0-9]+)+$'
counter() {
  awk -v k="$2" -v re="$counter_re" '$0 ~ re {
      for (i = 1; i <= NF; i++) { split($i, kv, "="); if (kv[1] == k) s += kv[2] } }
    END { print s + 0 }' "$1"
}

# Shim lines of a stderr file that are neither a whole counter line nor a
# whole message ("ringpool: uring[PID]: passing calls through...").
garbled_lines() {
  awk -v re="$counter_re" '/uring\[/ && $0 !~ re &&
      !(/^ringpool: uring\[[0-9]+\]: [a-z]/ && !/routed=/)' "$1" | head -n 3
}

# run_both NAME CMD...: plain into $work/plain.*, routed into $work/routed.*
run_both() {
  local name=$1
  shift
  (cd "$work/cwd" && env -u RINGPOOL_URING LD_PRELOAD="$lib" timeout -k 5 "$limit" "$@") \
    >"$work/plain.out" 2>"$work/plain.err"
  rc_plain=$?
  (cd "$work/cwd" && env RINGPOOL_URING=1 RINGPOOL_VERBOSE=1 LD_PRELOAD="$lib" timeout -k 5 "$limit" "$@") \
    >"$work/routed.out" 2>"$work/routed.err"
  rc_routed=$?
}

# judge NAME EXPECT: EXPECT is "routed" (routing happened, nothing fell
# back), "routed+fallback" (some calls are meant to fall back: a vfork
# child's), "none" (nothing may be routed: io_uring is made unavailable) or
# "any" (a program that may route nothing: all its sockets non-blocking).
judge() {
  local name=$1 expect=$2
  if [ $rc_plain -eq 77 ] || [ $rc_routed -eq 77 ]; then
    skipped "$name" "$(head -n 1 "$work/routed.out" "$work/plain.out" 2>/dev/null | grep -m1 skip || echo 'cannot run here')"
    return
  fi
  if [ $rc_plain -ne 0 ] || [ $rc_routed -ne $rc_plain ]; then
    notok "$name: exit codes plain $rc_plain, routed $rc_routed" "$work/plain.err" "$work/routed.err"
    return
  fi
  if ! diff -u "$work/plain.out" "$work/routed.out" >"$work/diff"; then
    notok "$name: output differs (- plain, + routed)" "$work/diff" "$work/routed.err"
    return
  fi
  # A shim line run into another (written in pieces) would be misread.
  local garbled
  garbled=$(garbled_lines "$work/routed.err")
  if [ -n "$garbled" ]; then
    notok "$name: shim lines run into each other: $garbled" "$work/routed.err"
    return
  fi
  local routed fallback
  routed=$(counter "$work/routed.err" routed)
  fallback=$(counter "$work/routed.err" fallback)
  case $expect in
    routed | routed+fallback)
      if [ "$routed" -eq 0 ] || grep -q 'passing calls through' "$work/routed.err"; then
        notok "$name: nothing routed (routed=$routed fallback=$fallback)" "$work/routed.err"
        return
      fi
      if [ "$expect" = routed ] && [ "$fallback" -ne 0 ]; then
        notok "$name: $fallback calls fell back to libc" "$work/routed.err"
        return
      fi
      ;;
    none)
      if [ "$routed" -ne 0 ]; then
        notok "$name: $routed calls routed where io_uring is unavailable" "$work/routed.err"
        return
      fi
      ;;
  esac
  ok "$name (routed $routed, fallback $fallback)"
}

mkdir -p "$work/cwd"

# --- test programs -----------------------------------------------------------
for bin in "$bindir"/*; do
  [ -x "$bin" ] && [ -f "$bin" ] || continue
  name=$(basename "$bin")
  case $name in *.d) continue ;; esac
  run_both "$name" "$bin"
  case $name in
    fork) judge "$name" routed+fallback ;;
    unavailable)
      judge "$name" none
      # Each filtered child says why, once, and routes nothing.
      if [ $rc_routed -eq 0 ]; then
        for why in 'EPERM' 'ENOSYS' 'kills io_uring callers' 'io_uring_enter'; do
          if ! grep 'passing calls through' "$work/routed.err" | grep -q "$why"; then
            notok "$name: no 'passing calls through ... $why' line" "$work/routed.err"
          fi
        done
        dup=$(sed -n 's/^ringpool: uring\[\([0-9]*\)\]: passing calls through.*/\1/p' "$work/routed.err" | sort | uniq -d)
        [ -z "$dup" ] || notok "$name: a process explained its fallback more than once" "$work/routed.err"
      fi
      ;;
    *) judge "$name" routed ;;
  esac
done

# --- io_uring switched off by sysctl -----------------------------------------
sysctl_file=/proc/sys/kernel/io_uring_disabled
if [ "${RINGPOOL_TEST_SYSCTL:-1}" = 0 ]; then
  skipped "sysctl kernel.io_uring_disabled=2" "RINGPOOL_TEST_SYSCTL=0"
elif [ ! -w "$sysctl_file" ] || [ "$(id -u)" != 0 ]; then
  skipped "sysctl kernel.io_uring_disabled=2" "needs root and $sysctl_file"
elif [ ! -x "$bindir/basic" ]; then
  skipped "sysctl kernel.io_uring_disabled=2" "no $bindir/basic"
else
  old=$(cat "$sysctl_file")
  # The basic test checks io_uring itself and would skip: run its workload
  # through a test that does not (the echo part of unavailable).
  echo 2 >"$sysctl_file"
  run_both sysctl "$bindir/unavailable" --plain-workload
  echo "$old" >"$sysctl_file"
  if [ $rc_plain -eq 0 ] && [ $rc_routed -eq 0 ] && diff -q "$work/plain.out" "$work/routed.out" >/dev/null &&
    [ "$(counter "$work/routed.err" routed)" -eq 0 ] &&
    [ "$(grep -c 'passing calls through.*EPERM' "$work/routed.err")" -eq 1 ]; then
    ok "sysctl kernel.io_uring_disabled=2: everything passes through, said once"
  else
    notok "sysctl kernel.io_uring_disabled=2 (exit $rc_plain/$rc_routed)" "$work/plain.out" "$work/routed.out" "$work/routed.err"
  fi
fi

# --- real programs -------------------------------------------------------------
if command -v python3 >/dev/null && command -v curl >/dev/null; then
  run_both "python3 http.server + curl" python3 "$here/http_download.py"
  judge "python3 ThreadingHTTPServer, 8 concurrent curl downloads" routed
else
  skipped "python3 http.server + curl" "python3 or curl missing"
fi

if command -v socat >/dev/null; then
  run_both socat "$here/socat_echo.sh"
  judge "socat TCP echo, 4 MiB" routed
else
  skipped "socat TCP echo" "socat not installed"
fi

if command -v iperf3 >/dev/null; then
  run_both iperf3 "$here/iperf3_bytes.sh"
  judge "iperf3 client and server, 64 MiB (non-blocking: passes through)" any
else
  skipped "iperf3" "iperf3 not installed"
fi

# --- ringpool stat reads the counters of a live process ------------------------
# A python3 that made 20 blocking send/recv pairs on a socketpair (40 routed
# calls) and then sleeps: `ringpool stat PID` must say so.
cli=${RINGPOOL_CLI:-$(dirname "$lib")/ringpool}
if [ ! -x "$cli" ] || ! command -v python3 >/dev/null; then
  skipped "ringpool stat shows socket counts" "no $cli or python3"
else
  RINGPOOL_URING=1 LD_PRELOAD="$lib" timeout -k 5 60 python3 -c '
import os, socket, time
a, b = socket.socketpair()
for _ in range(20):
    a.sendall(b"x")
    b.recv(1)
print("ready", os.getpid(), flush=True)
time.sleep(60)' >"$work/stat.ready" 2>"$work/stat.err" &
  spid=$!
  for _ in $(seq 100); do grep -q ready "$work/stat.ready" && break; sleep 0.1; done
  "$cli" stat "$(awk '/^ready/ {print $2}' "$work/stat.ready")" >"$work/stat.out" 2>&1
  kill "$spid" 2>/dev/null
  wait "$spid" 2>/dev/null
  line=$(grep 'sockets:' "$work/stat.out")
  routed=$(echo "$line" | sed -n 's/.*sockets: *\([0-9]*\) routed.*/\1/p')
  fellback=$(echo "$line" | sed -n 's/.* \([0-9]*\) fell back.*/\1/p')
  if [ -z "$line" ]; then
    notok "ringpool stat shows socket counts: no sockets line" "$work/stat.out" "$work/stat.err"
  elif [ "${routed:-0}" -eq 0 ] && [ "${fellback:-0}" -gt 0 ]; then
    skipped "ringpool stat shows socket counts" "io_uring unavailable here"
  elif [ "${routed:-0}" -ge 40 ]; then
    ok "ringpool stat shows socket counts ($line)"
  else
    notok "ringpool stat shows socket counts: fewer than 40 routed" "$work/stat.out"
  fi
fi

echo "shim: $pass passed, $fail failed, $skip skipped"
[ $fail -eq 0 ]
