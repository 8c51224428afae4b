#!/bin/sh
# Hostile programs under the preloaded library: deep binding, early
# allocation, threads before init, bad frees, seccomp, a program that brings
# its own allocator (redis-server with jemalloc), and dlopen of the library.
set -u
lib=$(readlink -f "$1")
bin=$(readlink -f "$2")
suite=hostile
. "$(dirname "$0")/harness.sh"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

out=$(LD_PRELOAD=$lib timeout 60 "$bin/deepbind" "$bin/libdeep.so" 2>&1)
[ "$out" = "deepbind ok" ] && pass "pointers cross both ways with a RTLD_DEEPBIND library" || fail "deepbind: $out"
out=$(RINGPOOL_VERBOSE=1 LD_PRELOAD=$lib timeout 60 "$bin/deepbind" "$bin/libdeep.so" 2>&1 >/dev/null)
echo "$out" | grep -q "cleared RTLD_DEEPBIND" && pass "RINGPOOL_VERBOSE=1 says RTLD_DEEPBIND was cleared" || fail "no verbose line for RTLD_DEEPBIND: $out"
out=$(timeout 60 "$bin/deepbind" "$bin/libdeep.so" 2>&1)
[ "$out" = "deepbind ok" ] && pass "the deepbind test passes on glibc alone" || fail "deepbind on glibc: $out"

out=$(LD_PRELOAD="$bin/libearly.so $lib" timeout 60 python3 -c 'print("early ok")' 2>&1)
[ "$out" = "early ok" ] && pass "a library listed before ringpool allocates and calls dlerror in its constructor" || fail "early: $out"
out=$(LD_PRELOAD="$lib $bin/libearly.so" timeout 60 python3 -c 'print("early ok")' 2>&1)
[ "$out" = "early ok" ] && pass "the same, listed after ringpool" || fail "early after: $out"

out=$(LD_PRELOAD=$lib timeout 60 "$bin/usebefore" 2>&1)
[ "$out" = "threads ok" ] && pass "threads whose first call is malloc" || fail "usebefore: $out"

for case in "double:free(): double free detected" "inside:invalid pointer" \
            "realloc-freed:freed block" "double-large:double free" \
            "inside-huge:inside a huge block" "double-huge:double free detected (a huge block)"; do
  what=${case%%:*}
  msg=${case#*:}
  LD_PRELOAD=$lib timeout 30 "$bin/badfree" "$what" > "$tmp/out" 2> "$tmp/err"
  rc=$?
  if [ $rc -eq 134 ] && grep -q "ringpool: .*$msg.*: 0x[0-9a-f]" "$tmp/err" && ! grep -q "not caught" "$tmp/out"; then
    pass "bad free ($what) aborts with '$msg' and the address"
  else
    fail "bad free ($what): rc=$rc, stderr: $(cat "$tmp/err")"
  fi
done

for case in "double-scribbled:double free detected" "use-after-free:a free block was overwritten" \
            "double:double free detected" "inside:inside a block"; do
  what=${case%%:*}
  msg=${case#*:}
  RINGPOOL_HARDEN=1 LD_PRELOAD=$lib timeout 60 "$bin/badfree" "$what" > "$tmp/out" 2> "$tmp/err"
  rc=$?
  if [ $rc -eq 134 ] && grep -q "ringpool: .*$msg.*: 0x[0-9a-f]" "$tmp/err"; then
    pass "RINGPOOL_HARDEN=1: $what aborts with '$msg'"
  else
    fail "RINGPOOL_HARDEN=1 $what: rc=$rc, stderr: $(cat "$tmp/err")"
  fi
done
RINGPOOL_HARDEN=1 LD_PRELOAD=$lib timeout 60 "$bin/badfree" overflow-large > "$tmp/out" 2>&1
rc=$?
[ $rc -eq 139 ] && pass "RINGPOOL_HARDEN=1: writing past a large block hits its guard page" || fail "guard page: rc=$rc"
out=$(RINGPOOL_HARDEN=1 LD_PRELOAD=$lib timeout 60 "$bin/deepbind" "$bin/libdeep.so" 2>&1)
[ "$out" = "deepbind ok" ] && pass "RINGPOOL_HARDEN=1: pointers crossing a deep-bound library" || fail "harden deepbind: $out"
out=$(RINGPOOL_HARDEN=1 LD_PRELOAD=$lib timeout 60 python3 -c 'import json; print(len(json.dumps([dict(a=i) for i in range(50000)])))' 2>&1)
[ "$out" = 688890 ] && pass "RINGPOOL_HARDEN=1: python3 runs" || fail "harden python3: $out"

LD_PRELOAD=$lib timeout 60 "$bin/seccomp" > "$tmp/out" 2>&1
rc=$?
if [ $rc -eq 77 ]; then skip "seccomp (no seccomp here)"
elif [ $rc -eq 0 ] && grep -q "seccomp ok" "$tmp/out"; then pass "allocating under a seccomp filter that allows only glibc malloc's system calls"
else fail "seccomp: rc=$rc $(cat "$tmp/out")"; fi

out=$(timeout 30 env RINGPOOL_HARDEN=yes RINGPOOL_PURGE_DELAY=-1 LD_PRELOAD=$lib true 2>&1)
n=$(echo "$out" | grep -c "ringpool: warning: ignoring")
[ "$n" -eq 2 ] && pass "bad option values get one warning each" || fail "bad options: $out"

# The library opened with dlopen instead of preloaded.
cat > "$tmp/dl.c" <<'C'
#include <dlfcn.h>
#include <stdio.h>
int main(int c, char** v) {
  void* h = dlopen(v[1], RTLD_NOW);
  if (!h) { printf("refused: %s\n", dlerror()); return 0; }
  const char* (*ver)(void) = (const char* (*)(void))dlsym(h, "ringpool_version");
  printf("loaded %s\n", ver ? ver() : "?");
  return 0;
}
C
if cc -o "$tmp/dl" "$tmp/dl.c" -ldl 2>/dev/null; then
  out=$(timeout 30 "$tmp/dl" "$(readlink -f "$lib")" 2>&1)
  case "$out" in
    refused:*"static TLS"*) pass "dlopen of the library is refused: static TLS";;
    *"does not replace malloc"*loaded*) pass "dlopen of the library loads without taking over, and says so";;
    *) fail "dlopen of the library: $out";;
  esac
fi

# A non-PIE program that takes malloc's address (Debian's python3 does):
# dlsym(RTLD_DEFAULT, "malloc") names the program's PLT entry, yet the
# library is preloaded and serves malloc. Once taken for a dlopen.
cat > "$tmp/nopie.c" <<'C'
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
int main(void) {
  void* (*volatile f)(size_t) = malloc;  /* taken in code: a canonical PLT entry */
  void* p = f(100);
  printf("usable %zu\n", malloc_usable_size(p));  /* ringpool's class: 112; glibc: 104 */
  free(p);
  return 0;
}
C
if cc -O1 -fno-pie -no-pie -o "$tmp/nopie" "$tmp/nopie.c" 2>/dev/null; then
  out=$(RINGPOOL_PROFILE="$tmp/nopie.heap" LD_PRELOAD=$lib timeout 30 "$tmp/nopie" 2>&1)
  [ "$out" = "usable 112" ] && [ -s "$tmp/nopie.heap" ] &&
    pass "a non-PIE program that takes malloc's address is served, silently, and profiled" ||
    fail "non-PIE program: $out"
fi

if command -v redis-server > /dev/null && command -v redis-benchmark > /dev/null; then
  port=$((20000 + $$ % 20000))
  LD_PRELOAD=$lib timeout 120 redis-server --port $port --bind 127.0.0.1 --save '' --appendonly no > "$tmp/redis.log" 2>&1 &
  rpid=$!
  for i in $(seq 50); do redis-cli -p $port ping > /dev/null 2>&1 && break; sleep 0.1; done
  redis-benchmark -p $port -n 20000 -q -t set,get,lpush,lpop,incr,hset > "$tmp/bench" 2>&1
  brc=$?
  redis-cli -p $port set key value > /dev/null
  got=$(redis-cli -p $port get key)
  maps=$(grep -c libringpool /proc/$rpid/maps 2>/dev/null || echo 0)
  redis-cli -p $port shutdown nosave > /dev/null 2>&1
  wait $rpid 2>/dev/null
  if [ $brc -eq 0 ] && [ "$got" = value ] && [ "$maps" -gt 0 ] && [ "$(grep -c 'requests per second' "$tmp/bench")" -ge 6 ]; then
    pass "redis-server (which links jemalloc) under ringpool answers redis-benchmark"
  else
    fail "redis: rc=$brc got=$got maps=$maps $(tail -3 "$tmp/redis.log")"
  fi
else
  skip "redis-server (not installed)"
fi

finish
