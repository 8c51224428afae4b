#!/usr/bin/env bash
# Run real programs with LIB preloaded and compare them with a run without.
#
# usage: tests/preload/run.sh LIB [PROGDIR]
#   LIB      the allocator to preload (any malloc replacement works here)
#   PROGDIR  where tests/programs/ were built (default: LIB's dir/tests)
#   PRELOAD_KEEP=1 in the environment keeps every run's output for a look.
#
# Glossary
#   reference run  the command without LD_PRELOAD (glibc's malloc)
#   library run    the same command with LD_PRELOAD=LIB, in a fresh directory
#   compare case   passes when both runs exit 0 and print the same stdout
#   status case    runs a test program under LIB only; passes on exit 0
#
# Prints "ok - NAME", "not ok - NAME (why)" or "skip - NAME (why)" per case,
# with details as "# " lines, and ends with exactly one summary line:
#   preload: N passed, M failed, K skipped
# Exit status: 0 when nothing failed, 1 otherwise, 2 on bad usage.
set -u

if [ $# -lt 1 ] || [ $# -gt 2 ]; then
    echo "usage: $0 LIB [PROGDIR]" >&2
    exit 2
fi
if [ ! -f "$1" ]; then
    echo "$0: $1: no such library (build it first)" >&2
    exit 2
fi
# Absolute: the cases run in their own directories.
LIB=$(realpath "$1")
PROGDIR=$(realpath -m "${2:-$(dirname "$LIB")/tests}")
HERE=$(cd "$(dirname "$0")" && pwd)

TMP=$(mktemp -d "${TMPDIR:-/tmp}/ringpool-preload.XXXXXX")
if [ -n "${PRELOAD_KEEP:-}" ]; then
    echo "# keeping every run's output in $TMP"
else
    trap 'rm -rf "$TMP"' EXIT
fi

# Outputs that depend on the locale or the user's setup would make the two
# runs differ for reasons that are not the allocator's.
export LC_ALL=C TZ=UTC
unset LD_PRELOAD MALLOC_CHECK_ MALLOC_PERTURB_ GLIBC_TUNABLES

suite=preload
. "$(dirname "$0")/../harness.sh"

# Indent a file as TAP diagnostics, at most N lines (default 20).
diag() { head -n "${2:-20}" "$1" | sed 's/^/#   /'; }

have() { command -v "$1" >/dev/null 2>&1; }

# How a run ended, in words.
describe() {
    local rc=$1 limit=$2
    if [ "$rc" -eq 124 ]; then
        echo "timed out after ${limit}s"
    elif [ "$rc" -gt 128 ]; then
        echo "killed by SIG$(kill -l $((rc - 128)) 2>/dev/null || echo $((rc - 128)))"
    else
        echo "exit status $rc"
    fi
}

# run_one MODE DIR LIMIT CMD...: run CMD in DIR (created) under timeout;
# stdout to DIR.out, stderr to DIR.err; returns the exit status.
run_one() {
    local mode=$1 dir=$2 limit=$3
    shift 3
    mkdir -p "$dir"
    (
        cd "$dir" || exit 125
        if [ "$mode" = lib ]; then
            export LD_PRELOAD="$LIB"
        fi
        exec timeout -k 10 "$limit" "$@"
    ) >"$dir.out" 2>"$dir.err" </dev/null
}

# ld.so does not fail a program whose LD_PRELOAD cannot be loaded: it warns
# and runs it on glibc.  Such a run proves nothing.
preload_failed() { grep -q "from LD_PRELOAD cannot be preloaded" "$1"; }

# Each case gets $TMP/<number>/{ref,lib}, fresh.
case_no=0

# compare NAME LIMIT CMD...
compare() {
    local name=$1 limit=$2
    shift 2
    local d rc_ref rc_lib
    case_no=$((case_no + 1))
    d=$TMP/$case_no
    run_one ref "$d/ref" "$limit" "$@"
    rc_ref=$?
    run_one lib "$d/lib" "$limit" "$@"
    rc_lib=$?
    if [ "$rc_ref" -ne 0 ]; then
        fail "$name" "fails without the library too: $(describe "$rc_ref" "$limit")"
        diag "$d/ref.err"
    elif preload_failed "$d/lib.err"; then
        fail "$name" "the library was not preloaded"
        grep -m 1 "cannot be preloaded" "$d/lib.err" | sed 's/^/#   /'
    elif [ "$rc_lib" -ne 0 ]; then
        fail "$name" "$(describe "$rc_lib" "$limit") under the library"
        diag "$d/lib.err"
    elif ! cmp -s "$d/ref.out" "$d/lib.out"; then
        fail "$name" "output differs under the library"
        diff "$d/ref.out" "$d/lib.out" >"$d/diff"
        diag "$d/diff"
    else
        pass "$name"
    fi
}

# status NAME LIMIT CMD...: under the library only; exit 0 passes.
status() {
    local name=$1 limit=$2
    shift 2
    local d rc
    case_no=$((case_no + 1))
    d=$TMP/$case_no
    run_one lib "$d/lib" "$limit" "$@"
    rc=$?
    if preload_failed "$d/lib.err"; then
        fail "$name" "the library was not preloaded"
        grep -m 1 "cannot be preloaded" "$d/lib.err" | sed 's/^/#   /'
    elif [ "$rc" -ne 0 ]; then
        fail "$name" "$(describe "$rc" "$limit")"
        cat "$d/lib.out" "$d/lib.err" | grep -v '^ok - ' >"$d/why"
        diag "$d/why"
    else
        pass "$name"
    fi
}

# --- the case bodies run as "bash -c NAME", under the library too --------

case_sqlite() {
    sqlite3 test.db <<'SQL'
CREATE TABLE t(id INTEGER PRIMARY KEY, grp INTEGER, name TEXT, val REAL);
WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 20000)
INSERT INTO t SELECT x, x % 37, printf('name-%d-%s', x, hex(x * 7919)), (x * 31 % 1000) / 7.0 FROM c;
CREATE INDEX t_grp ON t(grp, name);
SELECT grp, count(*), printf('%.4f', sum(val)), min(name), max(name) FROM t GROUP BY grp ORDER BY grp;
SELECT count(DISTINCT name), sum(length(name)) FROM t;
UPDATE t SET name = name || '/' || name WHERE id % 3 = 0;
DELETE FROM t WHERE id % 5 = 0;
VACUUM;
SELECT count(*), sum(length(name)), printf('%.6f', avg(val)) FROM t;
SELECT a.grp, count(*) FROM t a JOIN t b ON a.grp = b.grp AND b.id = a.id + 37
  GROUP BY a.grp ORDER BY 2 DESC, 1 LIMIT 5;
PRAGMA integrity_check;
SQL
}

case_git() {
    set -e
    export HOME=$PWD GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null
    export GIT_AUTHOR_NAME="Ringpool Test" GIT_AUTHOR_EMAIL=test@ringpool.invalid
    export GIT_COMMITTER_NAME="Ringpool Test" GIT_COMMITTER_EMAIL=test@ringpool.invalid
    export GIT_AUTHOR_DATE="2024-01-01T00:00:00Z" GIT_COMMITTER_DATE="2024-01-01T00:00:00Z"
    git init -q -b main repo
    cd repo
    for i in $(seq 1 150); do
        mkdir -p "dir$((i % 10))"
        seq "$i" $((i * 40)) | sed "s/^/file $i line /" >"dir$((i % 10))/f$i.txt"
    done
    git add -A
    git commit -q -m "first: 150 files"
    for i in $(seq 1 150 | awk 'NR % 4 == 0'); do
        sed -i 's/line 1/LINE one/' "dir$((i % 10))/f$i.txt"
    done
    git rm -q dir3/f13.txt dir5/f25.txt
    git mv dir7/f7.txt dir7/renamed.txt
    git add -A
    GIT_COMMITTER_DATE="2024-01-02T00:00:00Z" git commit -q -m "second: edits, removals, a rename"
    git log --stat --format='%H %an <%ae> %ad %s' --date=iso-strict
    git diff --stat HEAD~1 | tail -n 1
    git log -p | md5sum
    git blame -s dir4/f4.txt | head -n 5
    git grep -c "LINE one" | head -n 5
    git archive --format=tar HEAD | md5sum
    git gc -q
    git fsck --no-progress --strict
    git rev-parse "HEAD^{tree}"
}

case_gcc() {
    set -e
    {
        echo '#include <stdio.h>'
        for i in $(seq 0 199); do
            echo "static unsigned long f$i(unsigned long x) { unsigned long s = $i; for (int k = 0; k < $((i % 7 + 3)); k++) s = s * 31 + (x >> k) + $i; return s ^ (x << $((i % 13))); }"
        done
        echo 'int main(void) { unsigned long acc = 1;'
        for i in $(seq 0 199); do echo "  acc = f$i(acc);"; done
        printf '%s\n' '  printf("%lu\n", acc); return 0; }'
    } >prog.c
    gcc -O2 -Wall -c prog.c -o prog.o
    md5sum prog.o
    gcc prog.o -o prog
    ./prog
}

case_gxx() {
    set -e
    cat >prog.cc <<'CXX'
#include <algorithm>
#include <cstdio>
#include <map>
#include <numeric>
#include <string>
#include <vector>
template <int N> struct Fib { static constexpr unsigned long v = Fib<N - 1>::v + Fib<N - 2>::v; };
template <> struct Fib<1> { static constexpr unsigned long v = 1; };
template <> struct Fib<0> { static constexpr unsigned long v = 0; };
int main() {
    std::map<std::string, std::vector<int>> m;
    for (int i = 0; i < 20000; i++) m[std::to_string(i % 997)].push_back(i);
    unsigned long s = 0;
    for (auto &kv : m) s += std::accumulate(kv.second.begin(), kv.second.end(), 0UL) * kv.first.size();
    std::printf("%lu %lu\n", s, Fib<80>::v);
}
CXX
    g++ -O2 -c prog.cc -o prog.o
    md5sum prog.o
    g++ prog.o -o prog
    ./prog
}

case_sort() {
    set -e
    sort "$SORT_INPUT" | md5sum
    sort -t ' ' -k2,2n -k1,1 --parallel=2 -S 20M "$SORT_INPUT" | md5sum
    sort -u -k3 "$SORT_INPUT" | wc -l
}

export -f case_sqlite case_git case_gcc case_gxx case_sort

# --- the cases ---------------------------------------------------------------

echo "# preloading $LIB"

if [ -x "$PROGDIR/interposed" ]; then
    status "the library's malloc is the one programs call" 30 "$PROGDIR/interposed" "$LIB"
else
    fail "the library's malloc is the one programs call" "$PROGDIR/interposed not built"
fi

if have python3; then
    compare "python3 churn.py" 120 python3 "$HERE/churn.py"
    compare "python3 churn.py, PYTHONMALLOC=malloc" 120 env PYTHONMALLOC=malloc python3 "$HERE/churn.py"
else
    skip "python3 churn.py" "python3 not installed"
    skip "python3 churn.py, PYTHONMALLOC=malloc" "python3 not installed"
fi

if have perl; then
    compare "perl churn.pl" 120 perl "$HERE/churn.pl"
else
    skip "perl churn.pl" "perl not installed"
fi

if have sqlite3; then
    compare "sqlite3: 20000 rows, index, aggregate, vacuum" 120 bash -c case_sqlite
else
    skip "sqlite3: 20000 rows, index, aggregate, vacuum" "sqlite3 not installed"
fi

if have git; then
    compare "git init, add, commit, log, gc, fsck" 180 bash -c case_git
else
    skip "git init, add, commit, log, gc, fsck" "git not installed"
fi

if have gcc; then
    compare "gcc compiles and runs a C program" 180 bash -c case_gcc
else
    skip "gcc compiles and runs a C program" "gcc not installed"
fi

if have g++; then
    compare "g++ compiles and runs a C++ program" 180 bash -c case_gxx
else
    skip "g++ compiles and runs a C++ program" "g++ not installed"
fi

if have sort && have md5sum && have awk; then
    # 500k lines, made once without the library; both runs sort the same file.
    export SORT_INPUT="$TMP/sort.in"
    timeout 60 awk 'BEGIN { x = 12345;
        for (i = 0; i < 500000; i++) {
            x = (x * 1103515245 + 12345) % 2147483648;
            printf "%08x %d w%d %s\n", x, x % 100000, i % 7919, substr("abcdefghijklmnopqrstuvwxyz", x % 26 + 1)
        } }' >"$SORT_INPUT"
    compare "sort 500000 lines" 180 bash -c case_sort
else
    skip "sort 500000 lines" "sort, md5sum or awk not installed"
fi

# The test programs: their output is compared where it is deterministic;
# otherwise they check themselves and say so by their exit status.
prog() {
    local kind=$1 name=$2 limit=$3 bin=$4
    shift 4
    if [ ! -x "$PROGDIR/$bin" ]; then
        fail "$name" "$PROGDIR/$bin not built"
        return
    fi
    "$kind" "$name" "$limit" "$PROGDIR/$bin" "$@"
}

prog compare "threaded_cxx" 120 threaded_cxx
prog status "api_edge" 60 api_edge
prog status "stress quick" 180 stress quick
for i in 1 2 3; do
    prog status "fork_threads, run $i of 3" 300 fork_threads
done
prog status "many_threads: 100000 threads, rss bounded" 300 many_threads

# Under valgrind's memcheck the program is checked with memcheck's own
# allocator: it must replace the library's functions as it replaces libc's
# (valgrind 3.19, Debian 12's, does so by itself; --soname-synonyms names the library
# for any version), or it sees no heap blocks at all.
case_memcheck() {
    local name="memcheck replaces the library's malloc: $1" out
    if ! have valgrind; then skip "$name" "valgrind not installed"; return; fi
    out=$(mktemp)
    LD_PRELOAD=$LIB timeout 120 valgrind --leak-check=full $2 "$PROGDIR/memcheck_target" > /dev/null 2> "$out"
    if grep -q "Invalid read of size 1" "$out" && grep -q "definitely lost: 123 bytes in 1 blocks" "$out"; then
        pass "$name"
    else
        fail "$name" "no use after free or leak report"; diag "$out"
    fi
    rm -f "$out"
}
case_memcheck "with no option" ""
case_memcheck "with --soname-synonyms=somalloc=libringpool.so.1" "--soname-synonyms=somalloc=libringpool.so.1"

finish
