#!/usr/bin/env bash
# The reliability suite: injected faults, a real address-space
# limit, signals during allocation, fork and thread churn, the stats
# channel's security, and the fuzz regression inputs. Every case runs
# under a timeout.
#
# usage: tests/reliability/run.sh LIB CLI RELDIR PROGDIR [SANDIR]
#   LIB      the library to preload
#   CLI      the ringpool command
#   RELDIR   where tests/reliability/* were built
#   PROGDIR  where tests/programs/* were built (fork_threads, many_threads,
#            stats_target)
#   SANDIR   where the fuzz replay programs were built (replay_TARGET);
#            without it the fuzz regressions are skipped
#
# Prints "ok - NAME", "not ok - NAME (why)" or "skip - NAME (why)" per case,
# details as "# " lines, and one summary line:
#   reliability: N passed, M failed, K skipped
# Exit status: 0 when nothing failed, 1 otherwise, 2 on bad usage.
set -u

if [ $# -lt 4 ] || [ $# -gt 5 ]; then
    echo "usage: $0 LIB CLI RELDIR PROGDIR [SANDIR]" >&2
    exit 2
fi
LIB=$(realpath "$1")
CLI=$(realpath "$2")
RELDIR=$(realpath "$3")
PROGDIR=$(realpath "$4")
SANDIR=${5:+$(realpath "$5")}
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
for f in "$LIB" "$CLI"; do
    [ -e "$f" ] || { echo "$0: $f: not built" >&2; exit 2; }
done

TMP=$(mktemp -d "${TMPDIR:-/tmp}/ringpool-reliability.XXXXXX")
chmod 755 "$TMP"  # the cases run as another user read nothing from here, but may cd
BG=()
cleanup() {
    for p in "${BG[@]}"; do kill -9 "$p" 2>/dev/null; done
    rm -rf "$TMP"
}
trap cleanup EXIT

export LC_ALL=C
unset LD_PRELOAD RINGPOOL_FAULT_MMAP RINGPOOL_HARDEN RINGPOOL_PURGE_DELAY RINGPOOL_RETAIN

suite=reliability
. "$(dirname "$0")/../harness.sh"
diag() { head -n "${2:-15}" "$1" | sed 's/^/#   /'; }
have() { command -v "$1" >/dev/null 2>&1; }

describe() {
    local rc=$1 limit=$2
    if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
        echo "timed out after ${limit}s"
    elif [ "$rc" -gt 128 ]; then
        echo "killed by SIG$(kill -l $((rc - 128)) 2>/dev/null || echo $((rc - 128)))"
    else
        echo "exit status $rc"
    fi
}

# run NAME LIMIT CMD...: passes on exit 0, skips on 77; the last line of
# output that starts with the program's name is shown as a "#" line.
case_no=0
run() {
    local name=$1 limit=$2
    shift 2
    case_no=$((case_no + 1))
    local out=$TMP/$case_no.out rc
    timeout -k 5 "$limit" "$@" >"$out" 2>&1 </dev/null
    rc=$?
    if [ "$rc" -eq 0 ]; then
        pass "$name"
        grep -v '^ok - ' "$out" | tail -n 1 | sed 's/^/#   /'
    elif [ "$rc" -eq 77 ]; then
        skip "$name" "$(tail -n 1 "$out")"
    else
        fail "$name" "$(describe "$rc" "$limit")"
        diag "$out"
    fi
}

# start NAME CMD...: runs CMD in the background until it prints "ready";
# sets $started to its pid (empty when it did not get ready in 10 s).
start() {
    local name=$1
    shift
    case_no=$((case_no + 1))
    local fifo=$TMP/$case_no.fifo line=""
    mkfifo "$fifo"
    "$@" >"$fifo" 2>"$TMP/$case_no.err" </dev/null &
    started=$!
    BG+=("$started")
    # The open blocks until the program opens its end: a timeout guards both.
    if ! read -r -t 10 line <>"$fifo" || [ "$line" != ready ]; then
        fail "$name" "did not start: '$line'"
        diag "$TMP/$case_no.err"
        kill -9 "$started" 2>/dev/null
        started=""
    fi
}

stop() { kill -9 "$1" 2>/dev/null; wait "$1" 2>/dev/null; }

# The stats channel a process maps: DIR/PID.stats, DIR a ringpool-UID
# directory (pool/channel.hpp).
channel_of() {
    awk -v want="/$1.stats" '{ p = $6 } p != "" && substr(p, length(p) - length(want) + 1) == want && p ~ /\/ringpool-[0-9]+\// { print p; exit }' "/proc/$1/maps"
}

echo "# preloading $LIB"

# ---- injected faults --------------------------------------------------------
# Purging at once makes memory go back to the OS, so more requests reach it.
FAULT_ENV=(env LD_PRELOAD="$LIB" RINGPOOL_PURGE_DELAY=0 RINGPOOL_RETAIN=0)
run "faults: every 3rd request for OS memory fails; failures clean, nothing corrupt" 120 \
    "${FAULT_ENV[@]}" RINGPOOL_FAULT_MMAP=3 "$RELDIR/faults" 4 3000 1
run "faults: every 5th request fails, 4 threads handing blocks over" 120 \
    "${FAULT_ENV[@]}" RINGPOOL_FAULT_MMAP=5 "$RELDIR/faults" 4 3000 2
run "faults: every 5th request fails, RINGPOOL_HARDEN=1" 120 \
    "${FAULT_ENV[@]}" RINGPOOL_FAULT_MMAP=5 RINGPOOL_HARDEN=1 "$RELDIR/faults" 4 2000 3
# Regression: where the table of huge blocks must grow depends on every
# request made before, so a sweep of N and seeds makes sure some run hits it.
huge_realloc_sweep() {
    local n seed
    for n in 3 4 5 7; do
        for seed in 1 2 3; do
            env LD_PRELOAD="$LIB" RINGPOOL_FAULT_MMAP=$n "$RELDIR/huge_realloc" 5000 $seed ||
                { echo "huge_realloc: RINGPOOL_FAULT_MMAP=$n, seed $seed: exit status $?"; return 1; }
        done
    done
    echo "huge_realloc: 12 runs (N = 3, 4, 5, 7; seeds 1-3) of 5000 reallocs each, all clean"
}
run "faults: realloc of a huge block fails cleanly when the huge-block table cannot grow" 120 \
    bash -c "$(declare -f huge_realloc_sweep); LIB='$LIB' RELDIR='$RELDIR' huge_realloc_sweep"

# ---- a real limit: ulimit -v ----------------------------------------------------
run "ulimit -v 300 MB: every size runs out with ENOMEM or bad_alloc, and recovers after freeing" 120 \
    bash -c 'ulimit -v 300000 && exec env LD_PRELOAD="$0" "$1"' "$LIB" "$RELDIR/oom"
run "ulimit -v 300 MB, RINGPOOL_HARDEN=1: the same" 120 \
    bash -c 'ulimit -v 300000 && exec env LD_PRELOAD="$0" RINGPOOL_HARDEN=1 "$1"' "$LIB" "$RELDIR/oom"

# ---- concurrency -------------------------------------------------------------------
run "signals: SIGALRM every 200us and SIGUSR1 at each thread while 4 threads churn" 60 \
    env LD_PRELOAD="$LIB" "$RELDIR/signals" 5 4 200
for p in fork_threads many_threads; do
    if [ -x "$PROGDIR/$p" ]; then
        case $p in
            fork_threads) name="fork while 4 threads allocate: 200 children, none hangs" ;;
            many_threads) name="100,000 thread creations, rss bounded" ;;
        esac
        run "$name" 180 env LD_PRELOAD="$LIB" "$PROGDIR/$p"
    else
        fail "$p" "$PROGDIR/$p not built"
    fi
done

# ---- the stats channel --------------------------------------------------------------
# A channel directory on a file system with two pages left (a full
# /dev/shm): the first threads' slots fit, the rest must not be touched
# (a page the file cannot get raises SIGBUS), and the program runs.
name="a full channel file system: 64 threads at a time run, none killed"
if [ "$(id -u)" != 0 ]; then
    skip "$name" "needs root to mount a small tmpfs"
elif mkdir "$TMP/fullshm" && mount -t tmpfs -o size=256k,mode=0755 tmpfs "$TMP/fullshm" 2>/dev/null; then
    mkdir -m 0700 "$TMP/fullshm/ringpool-0"
    dd if=/dev/zero of="$TMP/fullshm/fill" bs=4096 2>/dev/null
    truncate -s -8192 "$TMP/fullshm/fill"
    run "$name" 120 env LD_PRELOAD="$LIB" RINGPOOL_CHANNEL_DIR="$TMP/fullshm" "$PROGDIR/many_threads" 3000 64 200
    umount "$TMP/fullshm"
else
    skip "$name" "cannot mount a tmpfs here"
fi

start "a program with known allocations starts under the library" env LD_PRELOAD="$LIB" "$PROGDIR/stats_target" 60
if [ -n "$started" ]; then
    pid=$started
    chan=$(channel_of "$pid")
    if [ -z "$chan" ]; then
        fail "the process has a stats channel" "no ringpool-UID/$pid.stats among /proc/$pid/maps"
    else
        pass "the process has a stats channel ($chan)"
        mode=$(stat -c %a "$chan")
        if [ "$mode" = 600 ]; then pass "the channel's mode is 600"
        else fail "the channel's mode is 600" "mode $mode"; fi
        dir=${chan%/*}
        if [ "$(stat -c %a:%u:%F "$dir")" = "700:$(id -u):directory" ]; then
            pass "its directory is a directory of ours, mode 700"
        else
            fail "its directory is a directory of ours, mode 700" "$(stat -c %a:%u:%F "$dir")"
        fi
        if ls -l "/proc/$pid/fd" | grep -qF "$dir/"; then
            fail "the process holds no descriptor of it" "$(ls -l /proc/$pid/fd | grep -F "$dir/")"
        else
            pass "the process holds no descriptor of it"
        fi
        if [ "$(id -u)" -ne 0 ] || ! have setpriv; then
            skip "another user can neither open the channel nor read it with ringpool stat" "needs root and setpriv"
        else
            as_nobody=(setpriv --reuid=65534 --regid=65534 --clear-groups)
            "${as_nobody[@]}" cat "$chan" >/dev/null 2>&1
            rc_cat=$?
            "${as_nobody[@]}" "$CLI" stat "$pid" >"$TMP/nobody.out" 2>&1
            rc_cli=$?
            if [ $rc_cat -ne 0 ] && [ $rc_cli -ne 0 ] && grep -q "permission denied" "$TMP/nobody.out"; then
                pass "another user can neither open the channel nor read it with ringpool stat"
            else
                fail "another user can neither open the channel nor read it with ringpool stat" \
                    "cat exit $rc_cat, ringpool stat exit $rc_cli"
                diag "$TMP/nobody.out" 5
            fi
        fi
        if have python3; then
            run "the region holds no address of the process (10,000 small and 40 large blocks live)" 60 \
                python3 "$HERE/no_pointers.py" "$pid"
        else
            skip "the region holds no address of the process" "python3 not installed"
        fi
    fi
    stop "$pid"
fi

if have python3; then
    # A busy process: four threads and their slots, counters moving.
    env LD_PRELOAD="$LIB" "$RELDIR/signals" 4 4 1000 >/dev/null 2>&1 &
    busy=$!
    BG+=("$busy")
    sleep 1.5
    run "the region holds no address of a busy 5-thread process either" 60 python3 "$HERE/no_pointers.py" "$busy"
    wait "$busy" 2>/dev/null
    start "a planted pointer is found (the scan works)" "$RELDIR/hostile_channel" pointers 30
    if [ -n "$started" ]; then
        if timeout 60 python3 "$HERE/no_pointers.py" "$started" >"$TMP/planted.out" 2>&1; then
            fail "a planted pointer is found (the scan works)" "the scan found nothing"
        elif grep -q "inside \[stack\]" "$TMP/planted.out" && grep -q "inside \[heap\]" "$TMP/planted.out"; then
            pass "a planted pointer is found (the scan works)"
        else
            fail "a planted pointer is found (the scan works)" "unexpected output"
            diag "$TMP/planted.out" 5
        fi
        stop "$started"
    fi
fi

if [ "$(id -u)" -ne 0 ]; then
    skip "ringpool stat refuses a channel owned by another user" "needs root to fchown"
else
    start "a process whose channel belongs to another user starts" env LD_PRELOAD="$LIB" "$RELDIR/chown_channel" 65534 60
    if [ -n "$started" ]; then
        "$CLI" stat "$started" >"$TMP/chown.out" 2>&1
        rc=$?
        if [ $rc -ne 0 ] && [ $rc -lt 128 ] && ! grep -q "^ringpool statistics" "$TMP/chown.out"; then
            pass "ringpool stat refuses a channel owned by another user"
        else
            fail "ringpool stat refuses a channel owned by another user" "exit $rc, and it printed the numbers"
            diag "$TMP/chown.out" 3
        fi
        stop "$started"
    fi
fi

# Hostile channels: the CLI ends with a status, never a signal. The shrinking
# one is read 20 times: each read races the truncation.
for kind in garbage slots extreme tiny shrink; do
    start "hostile channel '$kind' starts" "$RELDIR/hostile_channel" "$kind" 60
    [ -n "$started" ] || continue
    tries=1
    [ "$kind" = shrink ] && tries=20
    worst=0
    for _ in $(seq 1 $tries); do
        timeout -k 5 20 "$CLI" stat "$started" >"$TMP/hostile.out" 2>&1
        rc=$?
        [ $rc -gt $worst ] && worst=$rc
        [ $rc -ge 124 ] && break
    done
    if [ $worst -lt 124 ]; then
        pass "ringpool stat survives a hostile channel: $kind (exit $worst)"
    else
        fail "ringpool stat survives a hostile channel: $kind" "$(describe $worst 20)"
        diag "$TMP/hostile.out" 3
    fi
    stop "$started"
done

# ---- fuzz regressions -------------------------------------------------------------------
for t in fuzz_pool fuzz_stats_reader; do
    name="fuzz regressions and seeds replay cleanly: $t"
    if [ -z "$SANDIR" ] || [ ! -x "$SANDIR/replay_$t" ]; then
        skip "$name" "replay_$t not built (make check-fuzz-regress)"
        continue
    fi
    dirs=()
    for d in "$ROOT/tests/fuzz/regress/$t" "$ROOT/tests/fuzz/seeds/$t"; do
        [ -d "$d" ] && dirs+=("$d")
    done
    run "$name" 300 "$SANDIR/replay_$t" "${dirs[@]}"
done

finish
