#!/bin/sh
# The heap profiler: estimates and names for two sites of known weight, the
# profile's format, the flame graph, the leak report, dlopen/dlclose and fork
# while sampling, fork children starting clean, `ringpool profile PID`, the
# fallback unwinder, and nothing of it when profiling is off.
#
#   tests/check-profile.sh CLI LIB BINDIR
# BINDIR holds sites, leak, dlstress, forkclean, purger and libplugin.so, built from
# tests/profile/ with -g -fno-omit-frame-pointer -rdynamic (tests/profile.mk).
#
# Why RINGPOOL_PROFILE_RATE=4096 for the 10% checks: a sampled estimate of B
# bytes rests on about B/rate samples, so its relative error is about
# sqrt(rate/B) (the small blocks' case). At the default 512 KiB and 8 MB that
# is ~25%; at 4 KiB it is ~2%, and 10% is five standard errors.
set -u
cli=$(readlink -f "$1")
lib=$(readlink -f "$2")
bin=$(readlink -f "$3")
suite=profile
. "$(dirname "$0")/harness.sh"
tmp=$(mktemp -d)
wpid=""
trap '[ -n "$wpid" ] && kill -9 "$wpid" 2>/dev/null; rm -rf "$tmp"' EXIT
MiB=1048576
# Run with the library preloaded into the program only (not into timeout,
# which would write a profile of its own): under VAR=VALUE... PROGRAM ARGS...
# -k: a process deadlocked inside pthread_create has every signal blocked.
under() { timeout -k 5 60 env LD_PRELOAD="$lib" "$@"; }

# Live and allocated bytes per site from `ringpool profile` (bytes exact:
# read the raw file with the CLI's symbols, via --top and a python parse of
# the profile lines, so no rounding of "80.0 MiB" gets in the way).
site_bytes() {  # PROFILE FUNCTION -> "live alloc" summed over stacks whose innermost frame is FUNCTION
  python3 - "$1" "$2" "$bin" <<'PY'
import re, subprocess, sys
path, fn, bindir = sys.argv[1:4]
lines = open(path).read().split("\n")
maps, stacks, in_maps = [], [], False
for l in lines[1:]:
    if l.startswith("MAPPED_LIBRARIES:"):
        in_maps = True
        continue
    if not in_maps:
        m = re.match(r"\s*(\d+):\s*(\d+)\s*\[\s*(\d+):\s*(\d+)\s*\]\s*@(.*)", l)
        if m:
            stacks.append((int(m.group(2)), int(m.group(4)), m.group(5).split()))
    else:
        f = l.split()
        if len(f) >= 6 and f[5].startswith("/"):
            lo, hi = (int(x, 16) for x in f[0].split("-"))
            maps.append((lo, hi, int(f[2], 16), f[5]))
# Symbolise the innermost frames with nm on the program's own file.
syms = {}
def symbols(obj):
    if obj not in syms:
        out = subprocess.run(["nm", "-C", "--defined-only", obj], capture_output=True, text=True).stdout
        syms[obj] = sorted((int(a, 16), n) for a, t, n in (x.split(" ", 2) for x in out.splitlines() if x.count(" ") >= 2 and x[0] != " ") if t in "tTwW")
    return syms[obj]
def name(pc):
    pc -= 1
    for lo, hi, off, obj in maps:
        if lo <= pc < hi:
            rel = pc - lo + off
            best = None
            for a, n in symbols(obj):
                if a <= rel: best = n
                else: break
            return best
    return None
live = alloc = 0
for lb, ab, pcs in stacks:
    if pcs and name(int(pcs[0], 16)) == fn:
        live += lb
        alloc += ab
print(live, alloc)
PY
}

# The checks that read the profile with python3 are skips without it.
have_python=no
command -v python3 >/dev/null 2>&1 && have_python=yes
pycheck() {  # WHAT CONDITION
  if [ $have_python = yes ]; then check "$1" "$2"; else skip "$1" "no python3"; fi
}

within() {  # VALUE EXPECTED PERCENT
  python3 -c "import sys; v, e, p = map(float, sys.argv[1:]); sys.exit(0 if abs(v - e) <= e * p / 100 else 1)" "$1" "$2" "$3"
}

# ---- two sites of known weight -------------------------------------------------
prof=$tmp/sites.%p
under RINGPOOL_PROFILE=$prof RINGPOOL_PROFILE_RATE=4096 "$bin/sites" 80 8 40
rc=$?
check "a profiled program runs to the end (rc $rc)" '[ $rc -eq 0 ]'
p=$(ls "$tmp"/sites.* 2>/dev/null | head -1)
check "RINGPOOL_PROFILE=FILE.%p writes FILE.PID at exit" '[ -n "$p" ] && [ -s "$p" ]'
[ -n "$p" ] || p=$tmp/missing
check "the profile file is mode 0600" '[ "$(stat -c %a "$p" 2>/dev/null)" = 600 ]'
python3 - "$p" > "$tmp/format" 2>&1 <<'PY'
import re, sys
# The regular expressions of pprof's legacy parser (github.com/google/pprof,
# profile/legacy_profile.go) and the line shape jeprof/pprof.pl expect.
header = re.compile(r"heap profile: *(\d+): *(\d+) *\[ *(\d+): *(\d+) *\] *@ *(heap[_a-z0-9]*)/?(\d*)")
sample = re.compile(r"(-?\d+): *(-?\d+) *\[ *(\d+): *(\d+) *] @([ x0-9a-f]*)")
perl = re.compile(r"^\s*(\d+):\s+(\d+)\s+\[\s*(\d+):\s+(\d+)\]\s+@(.*)$")
lines = open(sys.argv[1]).read().split("\n")
errs = []
h = header.match(lines[0])
if not h or h.group(5) != "heapprofile":
    errs.append("header: " + lines[0])
n = 0
for l in lines[1:]:
    if l.startswith("MAPPED_LIBRARIES:"):
        break
    if not l.strip():
        continue
    if not sample.fullmatch(l.strip()) or not perl.match(l):
        errs.append("line: " + l[:80])
    n += 1
if "MAPPED_LIBRARIES:" not in lines:
    errs.append("no MAPPED_LIBRARIES: section")
if n == 0:
    errs.append("no stacks")
print("; ".join(errs[:3]) if errs else "match")
PY
pycheck "the profile has the gperftools heap-profile shape pprof and jeprof parse ($(cat "$tmp/format"))" '[ "$(cat "$tmp/format")" = match ]'

set -- $(site_bytes "$p" site_big)
big_live=${1:-0}
set -- $(site_bytes "$p" site_small)
small_live=${1:-0}
set -- $(site_bytes "$p" site_churn)
churn_live=${1:-0}
churn_alloc=${2:-0}
pycheck "site_big's live bytes are 80 MiB within 10% (estimated $big_live)" 'within "$big_live" $((80 * MiB)) 10'
pycheck "site_small's live bytes are 8 MiB within 10% (estimated $small_live)" 'within "$small_live" $((8 * MiB)) 10'
pycheck "site_churn allocated 40 MiB within 10% (estimated $churn_alloc)" 'within "$churn_alloc" $((40 * MiB)) 10'
pycheck "site_churn freed what it allocated (live estimate $churn_live)" '[ "$churn_live" -eq 0 ]'

"$cli" profile --top 5 "$p" > "$tmp/top" 2> "$tmp/top.err"
rc=$?
check "ringpool profile FILE exits 0 (rc $rc: $(head -c 200 "$tmp/top.err"))" '[ $rc -eq 0 ]'
sed -n '/by live bytes/,/^$/p' "$tmp/top" > "$tmp/top.live"
check "ringpool profile names site_big and site_small" 'grep -q site_big "$tmp/top.live" && grep -q site_small "$tmp/top.live"'
check "ringpool profile ranks site_big above site_small by live bytes" \
  '[ "$(grep -n site_big "$tmp/top.live" | cut -d: -f1)" -lt "$(grep -n site_small "$tmp/top.live" | cut -d: -f1)" ]'
check "ringpool profile gives file:line for the sites (debug info)" 'grep -q "site_big .*sites.c:[0-9]" "$tmp/top.live"'
sed -n '/by allocated bytes/,$p' "$tmp/top" > "$tmp/top.alloc"
check "by allocated bytes, site_churn ranks above site_small" \
  '[ "$(grep -n site_churn "$tmp/top.alloc" | cut -d: -f1)" -lt "$(grep -n site_small "$tmp/top.alloc" | cut -d: -f1)" ]'

"$cli" profile --flame "$tmp/live.svg" "$p" > /dev/null 2>&1
"$cli" profile --by alloc --flame "$tmp/alloc.svg" "$p" > /dev/null 2>&1
python3 - "$tmp/live.svg" "$tmp/alloc.svg" > "$tmp/svg" 2>&1 <<'PY'
import sys, xml.etree.ElementTree as ET
ns = "{http://www.w3.org/2000/svg}"
out = []
for path, want, unwanted in ((sys.argv[1], ["site_big", "site_small"], ["site_churn"]),
                             (sys.argv[2], ["site_big", "site_small", "site_churn"], [])):
    try:
        root = ET.parse(path).getroot()
    except Exception as e:
        out.append("%s: %s" % (path, e))
        continue
    titles = " ".join(t.text or "" for t in root.iter(ns + "title"))
    for w in want:
        if w not in titles:
            out.append("%s lacks %s" % (path.rsplit("/", 1)[1], w))
    for u in unwanted:
        if u in titles:
            out.append("%s has %s" % (path.rsplit("/", 1)[1], u))
    if root.tag != ns + "svg" or not list(root.iter(ns + "rect")):
        out.append("%s: not an svg with rects" % path)
print("; ".join(out) if out else "match")
PY
pycheck "--flame writes well-formed SVG naming both sites; --by alloc adds site_churn ($(cat "$tmp/svg"))" '[ "$(cat "$tmp/svg")" = match ]'

# At the default rate (512 KiB) the estimates are rough, but the order holds.
under RINGPOOL_PROFILE=$tmp/default.heap "$bin/sites" 80 8
"$cli" profile --top 5 "$tmp/default.heap" 2>&1 | sed -n '/by live bytes/,/^$/p' > "$tmp/default.top"
check "at the default rate, both sites are named and ranked right" \
  'grep -q site_small "$tmp/default.top" && [ "$(grep -n site_big "$tmp/default.top" | cut -d: -f1)" -lt "$(grep -n site_small "$tmp/default.top" | cut -d: -f1)" ]'

# ---- leak report --------------------------------------------------------------------
under RINGPOOL_LEAKS=1 RINGPOOL_PROFILE_RATE=1 "$bin/leak" > /dev/null 2> "$tmp/leak"
check "RINGPOOL_LEAKS=1 with rate 1 reports the leak exactly: 30000 bytes in 10 blocks from leak_here" \
  'grep -q "30000 bytes in 10 blocks allocated at:" "$tmp/leak" && grep -A1 "30000 bytes in 10 blocks allocated" "$tmp/leak" | grep -q leak_here'
check "and the 3 blocks of 48 bytes from leak_small, a class in use before sampling began" \
  'grep -A1 "144 bytes in 3 blocks allocated at:" "$tmp/leak" | grep -q leak_small'
check "the leak report does not blame tidy(), which freed everything" '! grep -q tidy "$tmp/leak"'
under RINGPOOL_LEAKS=1 "$bin/leak" > /dev/null 2> "$tmp/leak2"
check "at the default rate the leak report says it is sampled and how to make it exact" 'grep -q "RINGPOOL_PROFILE_RATE=1" "$tmp/leak2"'
under "$bin/leak" > /dev/null 2> "$tmp/leak3"
check "without RINGPOOL_LEAKS there is no report" '[ ! -s "$tmp/leak3" ]'

# ---- dlopen/dlclose and fork while sampling --------------------------------------------
out=$(under RINGPOOL_PROFILE=$tmp/dl.heap RINGPOOL_PROFILE_RATE=256 "$bin/dlstress" "$bin/libplugin.so" 4 3 2>&1)
rc=$?
check "sampling every 256 bytes while threads dlopen/dlclose and fork does not hang (rc $rc)" \
  '[ $rc -eq 0 ] && echo "$out" | grep -q "^done"'
check "the dlopen/fork stress wrote its profile" '[ -s "$tmp/dl.heap" ]'
"$cli" profile "$tmp/dl.heap" > "$tmp/dl.top" 2>&1
check "its samples have stacks (churn is named, no empty stacks)" \
  'grep -q " churn " "$tmp/dl.top" && ! grep -q "(unknown stack)" "$tmp/dl.top"'

out=$(under RINGPOOL_PROFILE=$tmp/purger.heap RINGPOOL_PROFILE_RATE=64 RINGPOOL_RETAIN=0 "$bin/purger" 2>&1)
rc=$?
check "the purge thread starts while the sample heap gives pages back, without deadlock (rc $rc)" \
  '[ $rc -eq 0 ] && [ "$out" = done ]'

under RINGPOOL_PROFILE=$tmp/fork.%p RINGPOOL_PROFILE_RATE=4096 "$bin/forkclean"
rc=$?
n=$(ls "$tmp"/fork.* 2>/dev/null | wc -l)
check "a fork child writes a profile of its own (rc $rc, $n files)" '[ $rc -eq 0 ] && [ "$n" -eq 2 ]'
parent="" child=""
for f in "$tmp"/fork.*; do
  "$cli" profile "$f" > "$f.top" 2>&1
  if grep -q site_child "$f.top"; then child=$f.top; else parent=$f.top; fi
done
check "the child's profile starts clean: site_child only, not the parent's site_parent" \
  '[ -n "$child" ] && ! grep -q site_parent "$child"'
check "the parent's profile has site_parent and not the child's site_child" \
  '[ -n "$parent" ] && grep -q site_parent "$parent" && ! grep -q site_child "$parent"'
under RINGPOOL_PROFILE=$tmp/nopid.heap "$bin/forkclean"
check "without %p the child writes FILE.PID instead of overwriting its parent's FILE" \
  '[ -s "$tmp/nopid.heap" ] && [ "$(ls "$tmp"/nopid.heap.* 2>/dev/null | wc -l)" -eq 1 ]'

# ---- ringpool profile PID -----------------------------------------------------------------
# The target polls its stdin (a fifo this script holds open) and allocates
# a little every 20 ms; it is stopped by its pid.
fifo=$tmp/ready
mkfifo "$fifo" "$tmp/in"
exec 3<> "$tmp/in"
RINGPOOL_PROFILE=$tmp/wait.heap RINGPOOL_PROFILE_RATE=4096 LD_PRELOAD=$lib "$bin/sites" wait 20 2 < "$tmp/in" > "$fifo" &
wpid=$!
line=$(timeout 20 head -n 1 "$fifo")  # never block on a target that did not start
check "the target started (pid $wpid)" '[ "$line" = ready ] && [ -n "$wpid" ]'
"$cli" profile --top 5 -o "$tmp/fetched.heap" "$wpid" > "$tmp/pid.top" 2> "$tmp/pid.err"
rc=$?
check "ringpool profile PID exits 0 (rc $rc: $(head -c 200 "$tmp/pid.err"))" '[ $rc -eq 0 ]'
check "ringpool profile PID names both sites, site_big first" \
  'sed -n "/by live bytes/,/^\$/p" "$tmp/pid.top" > "$tmp/pid.live"; grep -q site_small "$tmp/pid.live" && [ "$(grep -n site_big "$tmp/pid.live" | cut -d: -f1)" -lt "$(grep -n site_small "$tmp/pid.live" | cut -d: -f1)" ]'
set -- $(site_bytes "$tmp/fetched.heap" site_big)
fetched_big=${1:-0}
pycheck "the fetched profile (-o) estimates site_big's 20 MiB within 10% ($fetched_big)" 'within "$fetched_big" $((20 * MiB)) 10'
check "no request directory is left behind" '[ -z "$(ls -d /tmp/ringpool-profile-"$wpid"-* 2>/dev/null)" ]'
"$cli" profile "$wpid" > /dev/null 2>&1
rc=$?
check "a second request to the same process works (rc $rc)" '[ $rc -eq 0 ]'
kill "$wpid" 2>/dev/null
wait "$wpid" 2>/dev/null
wpid=""

LD_PRELOAD=$lib "$bin/sites" wait 1 1 < "$tmp/in" > "$fifo" &
wpid=$!
line=$(timeout 20 head -n 1 "$fifo")  # never block on a target that did not start
"$cli" profile "$wpid" > /dev/null 2> "$tmp/off.err"
rc=$?
check "ringpool profile PID on a process without profiling fails and says why (rc $rc)" \
  '[ $rc -ne 0 ] && grep -q "heap profiling is off" "$tmp/off.err"'
check "with profiling off, the process publishes no profile channel" \
  '! grep -q "/$wpid.profile" /proc/$wpid/maps'
kill "$wpid" 2>/dev/null
wait "$wpid" 2>/dev/null
wpid=""

# Root asking a process of another user: the request directory is handed
# to that user (the process writes only into a 0700 directory it owns).
if [ "$(id -u)" = 0 ] && command -v setpriv > /dev/null 2>&1; then
  setpriv --reuid=65534 --regid=65534 --clear-groups env RINGPOOL_PROFILE=/nonexistent/exit.heap \
    RINGPOOL_PROFILE_RATE=4096 LD_PRELOAD="$lib" "$bin/sites" wait 8 1 < "$tmp/in" > "$fifo" 2> /dev/null &
  wpid=$!
  line=$(timeout 20 head -n 1 "$fifo")  # never block on a target that did not start
  "$cli" profile "$wpid" > "$tmp/other.top" 2> "$tmp/other.err"
  rc=$?
  check "as root, ringpool profile PID works on another user's process (rc $rc: $(head -c 200 "$tmp/other.err"))" \
    '[ $rc -eq 0 ] && grep -q site_big "$tmp/other.top"'
  kill "$wpid" 2>/dev/null
  wait "$wpid" 2>/dev/null
  wpid=""
else
  skip "ringpool profile PID across users" "needs root and setpriv"
fi
exec 3>&-

"$cli" profile 999999999 > /dev/null 2> "$tmp/nopid.err"
rc=$?
check "ringpool profile on a missing pid fails cleanly" '[ $rc -ne 0 ] && grep -q "no process" "$tmp/nopid.err"'

finish
