#!/usr/bin/env python3
"""Multi-thread scaling: the threaded workloads at N threads under each
allocator, interleaved (A B C D E A B C D E ...), medians of --reps runs,
wall time as a ratio to the best peer. Meant for a many-core machine (the
device of DEVELOPERS.md); on 2 cores it runs but shows little.

  bench/scale.py --bin DIR --libdir DIR [--threads 16] [--reps 3]

--libdir holds libringpool.so.1 and the peers' libjemalloc.so.2,
libmimalloc.so.2 and libtcmalloc_minimal.so.4 (missing ones are skipped).
"""
import argparse
import os
import statistics
import subprocess
import sys
import time

PEERS = ["glibc", "jemalloc", "mimalloc", "tcmalloc"]
LIBS = {"jemalloc": "libjemalloc.so.2", "mimalloc": "libmimalloc.so.2",
        "tcmalloc": "libtcmalloc_minimal.so.4", "ringpool": "libringpool.so.1"}


def workloads(bin_dir, t):
    b = lambda name, *a: [os.path.join(bin_dir, name)] + [str(x) for x in a]
    return [
        ("larson", b("larson", t, 60, 80000)),
        ("cache_scratch", b("cache_scratch", t, 5000, 10000)),
        ("cxx_threads", b("cxx_threads", t, 8, 20000)),
        ("thread_churn", b("thread_churn", 20000, t, 300)),
        ("prodcons", b("prodcons", 8000000)),
    ]


def run_once(argv, preload):
    env = dict(os.environ)
    env.pop("LD_PRELOAD", None)
    if preload:
        env["LD_PRELOAD"] = preload
    start = time.monotonic()
    r = subprocess.run(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=300)
    wall = time.monotonic() - start
    if r.returncode != 0:
        return None, r.stderr.decode(errors="replace")[-200:]
    return wall, r.stdout.decode(errors="replace").strip().split("\n")[-1]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--libdir", required=True)
    ap.add_argument("--threads", type=int, default=16)
    ap.add_argument("--reps", type=int, default=3)
    a = ap.parse_args()
    allocs = [("glibc", "")]
    for name in ["jemalloc", "mimalloc", "tcmalloc", "ringpool"]:
        p = os.path.join(a.libdir, LIBS[name])
        if os.path.exists(p):
            allocs.append((name, os.path.abspath(p)))
        else:
            print("# %s not found in %s: skipped" % (name, a.libdir))
    print("# %d cores, %d threads, %d reps" % (os.cpu_count(), a.threads, a.reps))
    rows = []
    for wname, argv in workloads(a.bin, a.threads):
        times = {n: [] for n, _ in allocs}
        sums = {}
        for rep in range(a.reps):
            for n, lib in allocs:
                t, out = run_once(argv, lib)
                if t is None:
                    print("# %s under %s FAILED: %s" % (wname, n, out))
                else:
                    times[n].append(t)
                    sums.setdefault(out, []).append(n)
        med = {n: statistics.median(v) for n, v in times.items() if v}
        best = min((med[n] for n in PEERS if n in med), default=None)
        for n, _ in allocs:
            if n in med:
                rows.append((wname, n, med[n], med[n] / best if best else float("nan")))
            else:
                rows.append((wname, n, None, None))
        if len(sums) > 1:
            print("# %s: outputs differ between allocators: %s" % (wname, sums))
    print("%-14s %-10s %8s %6s" % ("workload", "allocator", "wall s", "x"))
    geo = {}
    for w, n, t, x in rows:
        if t is None:
            print("%-14s %-10s %8s %6s" % (w, n, "FAILED", "-"))
            continue
        print("%-14s %-10s %8.3f %6.2f" % (w, n, t, x))
        geo.setdefault(n, []).append(x)
    for n, xs in geo.items():
        print("%-14s %-10s %8s %6.2f" % ("GEOMEAN", n, "", statistics.geometric_mean(xs)))
    print("x: wall time as a ratio to the best peer (glibc, jemalloc, mimalloc, tcmalloc); lower is better")


if __name__ == "__main__":
    sys.exit(main())
