#!/bin/bash
# bench/uring/run.sh LIB BINDIR [--reps N] [--iters N] [--seconds S]
#                    [--routed-preload LIB2]
#
# Plain vs routed (RINGPOOL_URING=1), both under LD_PRELOAD=LIB, runs
# interleaved (plain, routed, plain, routed...) so that drift hits both:
#   pingpong 64 B and 16 KiB: one blocking client, one echo process;
#   echo 1, 8, 64: a thread-per-connection echo server, that many clients.
# Per cell: requests/s and CPU per request (user+sys of both processes),
# medians over the reps; system calls per request from one more pair of
# runs under `perf stat -e raw_syscalls:sys_enter` (restarted calls count
# again; "n/a" without perf). Numbers, never pass/fail.
# --routed-preload LIB2: the routed runs preload LIB2 in front of LIB
# instead of setting RINGPOOL_URING (make bench-uring-ceiling: LIB2 is
# bench/uring/ceiling, io_uring's own cost without the shim).
set -u
if [ $# -lt 2 ]; then
  echo "usage: $0 LIB BINDIR [--reps N] [--iters N] [--seconds S] [--routed-preload LIB2]" >&2
  exit 2
fi
lib=$(readlink -f "$1")
bindir=$2
shift 2
reps=5 iters=20000 seconds=2 routed_preload=
while [ $# -gt 0 ]; do
  case $1 in
    --reps) reps=$2; shift 2 ;;
    --iters) iters=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    --routed-preload) routed_preload=$(readlink -f "$2"); shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
work=$(mktemp -d "${TMPDIR:-/tmp}/bench-uring.XXXXXX")
trap 'rm -rf "$work"' EXIT

have_perf=0
if command -v perf >/dev/null && perf stat -e raw_syscalls:sys_enter -x, true >/dev/null 2>&1; then
  have_perf=1
fi

# run MODE CMD... -> "requests seconds cpu"
run() {
  local mode=$1
  shift
  if [ "$mode" = routed ] && [ -n "$routed_preload" ]; then
    env -u RINGPOOL_URING LD_PRELOAD="$routed_preload $lib" "$@"
  elif [ "$mode" = routed ]; then
    env RINGPOOL_URING=1 LD_PRELOAD="$lib" "$@"
  else
    env -u RINGPOOL_URING LD_PRELOAD="$lib" "$@"
  fi | sed -n 's/^requests=\([0-9]*\) seconds=\([0-9.]*\) cpu_seconds=\([0-9.]*\)$/\1 \2 \3/p'
}

# syscalls MODE CMD... -> system calls per request
syscalls() {
  local mode=$1
  shift
  [ $have_perf = 1 ] || { echo n/a; return; }
  local envs=(env -u RINGPOOL_URING LD_PRELOAD="$lib")
  if [ "$mode" = routed ] && [ -n "$routed_preload" ]; then
    envs=(env -u RINGPOOL_URING LD_PRELOAD="$routed_preload $lib")
  elif [ "$mode" = routed ]; then
    envs=(env RINGPOOL_URING=1 LD_PRELOAD="$lib")
  fi
  "${envs[@]}" perf stat -x, -e raw_syscalls:sys_enter -o "$work/perf" "$@" >"$work/out"
  local calls req
  calls=$(awk -F, '/raw_syscalls:sys_enter/ {print $1}' "$work/perf")
  req=$(sed -n 's/^requests=\([0-9]*\) .*/\1/p' "$work/out")
  awk -v c="$calls" -v r="$req" 'BEGIN { if (r > 0) printf "%.2f", c / r; else print "n/a" }'
}

median() { sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

printf '| cell | plain req/s | routed req/s | ratio | plain CPU us/req | routed CPU us/req | ratio | plain syscalls/req | routed syscalls/req |\n'
printf '|---|---:|---:|---:|---:|---:|---:|---:|---:|\n'
cell() {
  local name=$1
  shift
  : >"$work/plain.rps"; : >"$work/plain.cpu"; : >"$work/routed.rps"; : >"$work/routed.cpu"
  for ((i = 0; i < reps; i++)); do
    for mode in plain routed; do
      read -r req secs cpu < <(run $mode "$@")
      [ -n "${req:-}" ] || { echo "| $name | run failed ($mode) |"; return; }
      awk -v r="$req" -v s="$secs" 'BEGIN { printf "%.1f\n", r / s }' >>"$work/$mode.rps"
      awk -v r="$req" -v c="$cpu" 'BEGIN { printf "%.3f\n", c * 1e6 / r }' >>"$work/$mode.cpu"
    done
  done
  local prps rrps pcpu rcpu psys rsys
  prps=$(median <"$work/plain.rps"); rrps=$(median <"$work/routed.rps")
  pcpu=$(median <"$work/plain.cpu"); rcpu=$(median <"$work/routed.cpu")
  psys=$(syscalls plain "$@"); rsys=$(syscalls routed "$@")
  awk -v n="$name" -v pr="$prps" -v rr="$rrps" -v pc="$pcpu" -v rc="$rcpu" -v ps="$psys" -v rs="$rsys" \
    'BEGIN { printf "| %s | %.0f | %.0f | %.2fx | %.2f | %.2f | %.2fx | %s | %s |\n", n, pr, rr, rr / pr, pc, rc, rc / pc, ps, rs }'
}

cell "pingpong 64 B" "$bindir/pingpong" 64 "$iters"
cell "pingpong 16 KiB" "$bindir/pingpong" 16384 "$iters"
cell "echo, 1 connection" "$bindir/echo" 1 64 "$seconds"
cell "echo, 8 connections" "$bindir/echo" 8 64 "$seconds"
cell "echo, 64 connections" "$bindir/echo" 64 64 "$seconds"
echo
echo "reps=$reps iters=$iters seconds=$seconds, $(nproc) CPUs, $(uname -r); medians; CPU = user+sys of server and client"
[ -z "$routed_preload" ] || echo "routed = $(basename "$routed_preload") preloaded, not the shim"
