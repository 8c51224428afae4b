#!/usr/bin/env python3
"""Run the ringpool benchmark suite against glibc, jemalloc, mimalloc 2.0,
tcmalloc and the prebuilt mimalloc v3, snmalloc and rpmalloc, and print one
comparison table.

Glossary:
  allocator   a row kind: glibc (nothing preloaded) or a library put in
              LD_PRELOAD, with extra environment variables if asked.
  peer        glibc or one of the six other allocators; ratios are taken
              against the best peer, so a peer's ratio is >= 1 and ringpool's
              says how far it is from the best existing allocator.
  workload    one program run: a binary from bench/workloads, a script run
              by python3/perl/sqlite3, or redis-server under redis-benchmark.
  run         one workload under one allocator once; runs go round robin
              (A B C D E A B C D E ...) so that drift in the machine hits
              every allocator alike. A cell is the median of its runs.
  probe       a callgrind instruction count per malloc/free pair.

Standard library only. See bench/README.md.
"""

import argparse
import csv
import datetime
import json
import math
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
SCRIPTS = os.path.join(HERE, "scripts")
LIBDIR = "/usr/lib/x86_64-linux-gnu"

# The field's leaders, prebuilt beside the project (shared/peers/README.md);
# RINGPOOL_PEERS names another directory that holds them.
PEER_DIR = os.environ.get("RINGPOOL_PEERS", os.path.join(os.path.dirname(ROOT), "shared", "peers"))

PEERS = [
    ("glibc", None),
    ("jemalloc", LIBDIR + "/libjemalloc.so.2"),
    ("mimalloc", LIBDIR + "/libmimalloc.so.2"),
    ("tcmalloc", LIBDIR + "/libtcmalloc_minimal.so.4"),
    ("mimalloc3", os.path.join(PEER_DIR, "libmimalloc-v3.4.3.so")),
    ("snmalloc", os.path.join(PEER_DIR, "libsnmalloc-0.7.5.so")),
    ("rpmalloc", os.path.join(PEER_DIR, "librpmalloc-2.0.1.so")),
]
# Preloading libc itself puts glibc's malloc first in symbol lookup; the
# glibc row needs it for programs linked against another allocator
# (Debian's redis-server links libjemalloc).
LIBC_CANDIDATES = ["/lib/x86_64-linux-gnu/libc.so.6", "/usr/lib/x86_64-linux-gnu/libc.so.6"]

COLORS = {"glibc": "#7f7f7f", "jemalloc": "#1f77b4", "mimalloc": "#2ca02c",
          "tcmalloc": "#ff7f0e", "mimalloc3": "#98df8a", "snmalloc": "#9467bd",
          "rpmalloc": "#8c564b", "ringpool": "#d62728"}
EXTRA_COLORS = ["#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22", "#393b79"]


def log(msg):
    print(msg, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------
# Allocators

class Allocator:
    def __init__(self, name, lib, env=None, peer=False):
        self.name = name
        self.lib = lib
        self.env = env or {}
        self.peer = peer

    def describe(self):
        s = self.lib or "(no preload)"
        if self.env:
            s += " " + " ".join("%s=%s" % kv for kv in sorted(self.env.items()))
        return s


def parse_extra(spec):
    """NAME=LIBPATH[:ENV=VAL...] -> Allocator."""
    name, sep, rest = spec.partition("=")
    if not sep or not name or not rest:
        raise argparse.ArgumentTypeError("--extra wants NAME=LIBPATH[:ENV=VAL...], got %r" % spec)
    parts = rest.split(":")
    env = {}
    for kv in parts[1:]:
        k, sep, v = kv.partition("=")
        if not sep or not k:
            raise argparse.ArgumentTypeError("--extra: %r is not ENV=VAL" % kv)
        env[k] = v
    return Allocator(name, os.path.abspath(parts[0]), env)


def check_interposes(alloc, probe_bin, base_env):
    """None if `malloc` in a test program binds to alloc.lib, else why not.

    A library that is missing, has the wrong ELF class, or exports a
    versioned `malloc@@X` loads without complaint and leaves the program on
    glibc's malloc; the row would then measure glibc under another name.
    """
    if not os.path.exists(probe_bin):
        return None  # cannot check; the runs themselves will say more
    env = dict(base_env, LD_PRELOAD=alloc.lib, LD_DEBUG="bindings")
    env.update(alloc.env)
    try:
        p = subprocess.run([probe_bin, "fixed32", "1"], env=env, capture_output=True,
                           text=True, errors="replace", timeout=60)
    except subprocess.TimeoutExpired:
        return "test program hung with the library preloaded"
    if "cannot be preloaded" in p.stderr:
        return "ld.so: cannot be preloaded"
    if p.returncode != 0:
        return "test program failed (%s)" % describe_status(p.returncode)
    for line in p.stderr.splitlines():
        m = re.search(r"binding file (\S+) \[0\] to (\S+) \[0\]: normal symbol `malloc'", line)
        if m and os.path.basename(m.group(1)) == os.path.basename(probe_bin):
            if os.path.realpath(m.group(2)) == os.path.realpath(alloc.lib):
                return None
            return "malloc binds to %s, not to the library (versioned symbol?)" % m.group(2)
    return None


# --------------------------------------------------------------------------
# Workloads

class Workload:
    """kind: 'exec' (one process) or 'redis'. check: stdout (less *_rss_kb
    lines) must be identical under every allocator."""

    def __init__(self, name, argv, desc, kind="exec", env=None, check=True,
                 needs=(), libc_first=False, redis=None):
        self.name = name
        self.argv = argv
        self.desc = desc
        self.kind = kind
        self.env = env or {}
        self.check = check
        self.needs = list(needs)
        self.libc_first = libc_first
        self.redis = redis or {}


def find_python():
    # A pyenv shim is a shell script: preloading into it would measure bash
    # too. The distribution's interpreter is the stable choice.
    for p in ("/usr/bin/python3", shutil.which("python3")):
        if p and os.path.exists(p):
            return os.path.realpath(p)
    return None


def build_workloads(bin_dir, quick, tmp):
    def b(name, *args):
        return [os.path.join(bin_dir, name)] + [str(a) for a in args]

    q = quick
    py = find_python()
    sql = os.path.join(tmp, "sqlite_churn.sql")
    rows = 100000 if q else 1000000
    with open(sql, "w") as f:
        f.write("CREATE TABLE params(n); INSERT INTO params VALUES(%d);\n" % rows)
        with open(os.path.join(SCRIPTS, "sqlite_churn.sql")) as src:
            f.write(src.read())

    w = []
    if not q:
        w.append(Workload("churn_lifo", b("churn_lifo", 30000000),
                          "1 thread, mixed small sizes, freed newest first"))
        w.append(Workload("churn_fifo", b("churn_fifo", 30000000),
                          "1 thread, mixed small sizes, freed oldest first (window 20000)"))
    w.append(Workload("churn_random", b("churn_random", 3000000 if q else 12000000),
                      "1 thread, mixed small sizes, random slot replaced (100000 live)"))
    w.append(Workload("larson", b("larson", 4, 30 if q else 100, 80000),
                      "4 threads, tables rotate between threads: most frees remote"))
    w.append(Workload("prodcons", b("prodcons", 3000000 if q else 8000000),
                      "producer allocates, consumer frees via a bounded queue"))
    if not q:
        w.append(Workload("cache_scratch", b("cache_scratch", 4, 5000, 10000),
                          "false sharing of small blocks between 4 threads"))
    w.append(Workload("realloc_grow", b("realloc_grow", 50 if q else 150),
                      "vectors doubling and strings appended by realloc"))
    w.append(Workload("large_blocks", b("large_blocks", 80 if q else 250),
                      "64 KiB..64 MiB blocks, every page touched, 4 live"))
    w.append(Workload("fragmentation", b("fragmentation", 1000000 if q else 2000000),
                      "2M blocks, 10% survive, allocate again; final RSS with survivors live"))
    w.append(Workload("peak_release", b("peak_release", 256 if q else 1024, 1000 if q else 2000),
                      "1 GiB of 16..496 B blocks freed (random order), idle 2 s; final RSS"))
    w.append(Workload("thread_churn", b("thread_churn", 3000 if q else 20000),
                      "short-lived threads, 300 allocations each, leftovers freed by main"))
    w.append(Workload("thread_rounds", b("thread_rounds", 60 if q else 200, 2, 100000, 20000),
                      "rounds of 2 threads; a shared table's blocks freed after their threads exit"))
    w.append(Workload("fork_churn", b("fork_churn", 500 if q else 2000, 64),
                      "64 MiB of small blocks live, 2000 children forked one by one"))
    w.append(Workload("cxx_threads", b("cxx_threads", 4, 3 if q else 8, 20000),
                      "std::map/string/vector built per thread, destroyed by another"))
    if py:
        w.append(Workload("python", [py, os.path.join(SCRIPTS, "py_churn.py"), 6 if q else 20],
                          "CPython dict/list/str churn, PYTHONMALLOC=malloc",
                          env={"PYTHONMALLOC": "malloc", "PYTHONHASHSEED": "0"}, needs=[py]))
    if not q:
        w.append(Workload("perl", ["/usr/bin/perl", os.path.join(SCRIPTS, "perl_churn.pl"), 7],
                          "perl hash/array/string churn",
                          env={"PERL_HASH_SEED": "0", "PERL_PERTURB_KEYS": "0"},
                          needs=["/usr/bin/perl"]))
    w.append(Workload("sqlite", ["/usr/bin/sqlite3", ":memory:", ".read " + sql],
                      "sqlite3 :memory:, insert %d rows, index, query, delete" % rows,
                      needs=["/usr/bin/sqlite3"]))
    w.append(Workload("redis", None,
                      "redis-server under redis-benchmark (-P 16), server CPU and RSS",
                      kind="redis", check=False, libc_first=True,
                      needs=["/usr/bin/redis-server", "/usr/bin/redis-benchmark"],
                      redis={"n": 50000 if q else 200000}))
    for wl in w:
        wl.argv = [str(a) for a in wl.argv] if wl.argv else None
        if wl.kind == "exec" and wl.argv[0].startswith(bin_dir):
            wl.needs.append(wl.argv[0])
    return w


# --------------------------------------------------------------------------
# Running

def describe_status(rc):
    if rc < 0:
        try:
            return "signal %s" % signal.Signals(-rc).name
        except ValueError:
            return "signal %d" % -rc
    return "exit %d" % rc


def base_env():
    env = dict(os.environ)
    for k in ("LD_PRELOAD", "LD_DEBUG", "PYTHONMALLOC"):
        env.pop(k, None)
    return env


def alloc_env(alloc, wl, libc):
    """(environment, LD_PRELOAD value) for one run. The preload goes to
    spawn as an argument so that spawn itself runs without it."""
    env = base_env()
    env.update(wl.env)
    env.update(alloc.env)
    preload = alloc.lib or (libc if wl.libc_first and libc else "")
    return env, preload


def find_spawn(bin_dir, tmp):
    """The spawn helper: built by bench.mk, else compiled here, else None
    (then runs are reaped directly and peak RSS includes the runner's)."""
    built = os.path.join(bin_dir, "spawn")
    if os.access(built, os.X_OK):
        return built
    cc = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if cc:
        out = os.path.join(tmp, "spawn")
        p = subprocess.run([cc, "-O2", "-o", out, os.path.join(HERE, "tools", "spawn.c")],
                           capture_output=True)
        if p.returncode == 0:
            return out
    return None


def launch(argv, env, preload, cwd, spawn, report, stdout, stderr):
    """Start argv through spawn (or directly) in a new session."""
    if spawn:
        full = [spawn, report, preload] + argv
    else:
        full = argv
        if preload:
            env = dict(env, LD_PRELOAD=preload)
    return subprocess.Popen(full, env=env, cwd=cwd, stdin=subprocess.DEVNULL,
                            stdout=stdout, stderr=stderr, start_new_session=True)


def read_report(spawn, report, rc, ru, wall):
    """Measurements of the command: from spawn's report when there is one,
    else from our own wait4 (whose ru_maxrss includes this runner's RSS)."""
    if not spawn:
        return {"wall": wall, "cpu": ru.ru_utime + ru.ru_stime, "maxrss_kb": ru.ru_maxrss,
                "rc": rc}
    try:
        with open(report) as f:
            kv = dict(item.split("=", 1) for item in f.read().split())
        os.unlink(report)
    except (OSError, ValueError):
        return {"wall": wall, "cpu": 0.0, "maxrss_kb": 0, "rc": rc}
    how, _, num = kv["status"].partition(":")
    return {"wall": int(kv["wall_ns"]) / 1e9,
            "cpu": (int(kv["utime_us"]) + int(kv["stime_us"])) / 1e6,
            "maxrss_kb": int(kv["maxrss_kb"]),
            "rc": -int(num) if how == "signal" else int(num)}


def wait_with_timeout(proc, timeout):
    """os.wait4 on proc; SIGKILL its process group after `timeout` s.
    Returns (returncode, rusage, timed_out)."""
    fired = []

    def kill():
        fired.append(True)
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    timer = threading.Timer(timeout, kill)
    timer.start()
    try:
        _, status, ru = os.wait4(proc.pid, 0)
    finally:
        timer.cancel()
    rc = os.waitstatus_to_exitcode(status)
    proc.returncode = rc  # reaped here; keep Popen from waiting again
    return rc, ru, bool(fired)


def reap_nohang(proc):
    """True if proc has exited; reaps it with its rusage (Popen.poll would
    reap it and lose the rusage)."""
    if proc.returncode is not None:
        return True
    pid, status, ru = os.wait4(proc.pid, os.WNOHANG)
    if pid == 0:
        return False
    proc.returncode = os.waitstatus_to_exitcode(status)
    proc.rusage = ru
    return True


def parse_kv(text):
    kv = {}
    for m in re.finditer(r"^(\w+)=(\S+)$", text, re.M):
        kv[m.group(1)] = m.group(2)
    return kv


def signature(stdout):
    """What must not depend on the allocator: stdout less RSS reports."""
    return "\n".join(l for l in stdout.splitlines() if "rss_kb=" not in l)


def run_exec(wl, env, preload, cwd, timeout, spawn):
    out = tempfile.TemporaryFile(dir=cwd)
    err = tempfile.TemporaryFile(dir=cwd)
    report = os.path.join(cwd, "report.txt")
    t0 = time.perf_counter()
    proc = launch(wl.argv, env, preload, cwd, spawn, report, out, err)
    rc, ru, timed_out = wait_with_timeout(proc, timeout)
    r = read_report(spawn, report, rc, ru, time.perf_counter() - t0)
    out.seek(0)
    err.seek(0)
    r["stdout"] = out.read().decode(errors="replace")
    stderr = err.read().decode(errors="replace")
    r["stderr_tail"] = stderr[-2000:]
    if timed_out:
        r["error"] = "timeout after %ds" % timeout
    elif "cannot be preloaded" in stderr:
        r["error"] = "preload failed"
    elif r["rc"] != 0:
        r["error"] = describe_status(r["rc"])
    return r


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def redis_command(port, cmd, timeout=2.0):
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(cmd.encode() + b"\r\n")
        try:
            return s.recv(256).decode(errors="replace")
        except OSError:
            return ""


def run_redis(wl, env, preload, cwd, timeout, spawn):
    """Server under the allocator, client (redis-benchmark) without it.
    wall: the benchmark's duration; cpu, maxrss: the server's."""
    port = free_port()
    server_argv = ["/usr/bin/redis-server", "--port", str(port), "--bind", "127.0.0.1",
                   "--save", "", "--appendonly", "no", "--daemonize", "no",
                   "--dir", cwd, "--loglevel", "warning", "--logfile", ""]
    err = tempfile.TemporaryFile(dir=cwd)
    report = os.path.join(cwd, "report.txt")
    proc = launch(server_argv, env, preload, cwd, spawn, report, err, err)
    result = {"wall": 0.0, "stdout": ""}
    error = None
    deadline = time.monotonic() + 10
    while True:
        if reap_nohang(proc):
            error = "server exited at start"
            break
        try:
            if "PONG" in redis_command(port, "PING", 0.5):
                break
        except OSError:
            pass
        if time.monotonic() > deadline:
            error = "server did not answer PING"
            break
        time.sleep(0.05)

    if error is None:
        n = wl.redis["n"]
        bench_argv = ["/usr/bin/redis-benchmark", "-h", "127.0.0.1", "-p", str(port),
                      "-n", str(n), "-q", "-P", "16", "-c", "50", "-d", "64", "-r", "100000",
                      "-t", "set,get,lpush,lpop,hset,sadd,zadd"]
        t0 = time.perf_counter()
        try:
            b = subprocess.run(bench_argv, env=base_env(), cwd=cwd, capture_output=True,
                               text=True, errors="replace", timeout=timeout)
            result["wall"] = time.perf_counter() - t0
            text = b.stdout.replace("\r", "\n")
            result["stdout"] = "\n".join(l for l in text.splitlines() if "per second" in l)
            rates = [float(m.group(1)) for m in
                     re.finditer(r"^\s*\S[^:]*: ([\d.]+) requests per second", text, re.M)]
            if b.returncode != 0 or not rates:
                error = "redis-benchmark failed (%s)" % describe_status(b.returncode)
            else:
                # Total requests over total time: the harmonic mean of rates.
                result["rps"] = len(rates) / sum(1.0 / r for r in rates)
        except subprocess.TimeoutExpired:
            error = "redis-benchmark timeout"
        if reap_nohang(proc) and error is None:
            error = "server died during the benchmark"
        try:
            redis_command(port, "SHUTDOWN NOSAVE")
        except OSError:
            pass

    timed_out = False
    if proc.returncode is None:
        rc, ru, timed_out = wait_with_timeout(proc, 15)
    else:
        rc, ru = proc.returncode, proc.rusage
    server = read_report(spawn, report, rc, ru, 0.0)
    result.update(cpu=server["cpu"], maxrss_kb=server["maxrss_kb"], rc=server["rc"])
    if error is None and timed_out:
        error = "server hung at shutdown"
    elif error is None and server["rc"] != 0:
        error = "server %s at shutdown" % describe_status(server["rc"])
    elif error and error.startswith("server") and server["rc"] != 0:
        error += " (%s)" % describe_status(server["rc"])
    err.seek(0)
    stderr = err.read().decode(errors="replace")
    result["stderr_tail"] = stderr[-2000:]
    if error is None and "cannot be preloaded" in stderr:
        error = "preload failed"
    if error:
        result["error"] = error
    return result


# --------------------------------------------------------------------------
# Callgrind probes

PROBES = [
    ("malloc32_free", "fixed32", "malloc(32) + free"),
    ("window1024", "window", "free+malloc, 1024 live, 8..263 B"),
]


def callgrind_ir(argv, env, cwd):
    p = subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null"] + argv,
                       env=env, cwd=cwd, capture_output=True, text=True, errors="replace",
                       timeout=600)
    m = re.search(r"Collected : (\d+)", p.stderr)
    if p.returncode != 0 or not m:
        tail = p.stderr.strip().splitlines()[-1:] or [""]
        raise RuntimeError("%s: %s" % (describe_status(p.returncode), tail[0][:120]))
    return int(m.group(1))


def run_probes(allocs, probe_bin, n, cwd, only):
    """{probe: {alloc: instr/op or 'FAILED: ...'}}: (Ir(2n) - Ir(n)) / n,
    which cancels start-up, the first-call slow paths and exit."""
    out = {}
    for pname, mode, _ in PROBES:
        if only and not only.search(pname):
            continue
        out[pname] = {}
        for a in allocs:
            env = base_env()
            if a.lib:
                env["LD_PRELOAD"] = a.lib
            env.update(a.env)
            try:
                ir1 = callgrind_ir([probe_bin, mode, str(n)], env, cwd)
                ir2 = callgrind_ir([probe_bin, mode, str(2 * n)], env, cwd)
                out[pname][a.name] = (ir2 - ir1) / n
            except (RuntimeError, subprocess.TimeoutExpired, OSError) as e:
                out[pname][a.name] = "FAILED: %s" % e
        log("probe %-14s %s" % (pname, "  ".join(
            "%s=%s" % (k, ("%.1f" % v) if isinstance(v, float) else "FAILED")
            for k, v in out[pname].items())))
    return out


# --------------------------------------------------------------------------
# Summaries

METRICS = [  # key, run field, label
    ("wall", "wall", "wall s"),
    ("cpu", "cpu", "cpu s"),
    ("peak_rss", "maxrss_kb", "peak MiB"),
    ("final_rss", "final_rss_kb", "final MiB"),
]


def summarize(workloads, allocs, runs):
    """One row per (workload, allocator): medians, status and ratios to
    the best peer."""
    rows = []
    for wl in workloads:
        wl_rows = []
        for a in allocs:
            rs = [r for r in runs if r["workload"] == wl.name and r["allocator"] == a.name]
            row = {"workload": wl.name, "allocator": a.name, "peer": a.peer,
                   "reps": len(rs), "status": "ok"}
            bad = [r for r in rs if r.get("error")]
            if not rs:
                row["status"] = "skipped"
            elif bad:
                row["status"] = "FAILED"
                row["reason"] = "%s (%d/%d runs)" % (bad[0]["error"], len(bad), len(rs))
            else:
                for key, field, _ in METRICS:
                    vals = [r[field] for r in rs if r.get(field) is not None]
                    if vals:
                        row[key] = statistics.median(vals)
                rps = [r["rps"] for r in rs if r.get("rps")]
                if rps:
                    row["rps"] = statistics.median(rps)
            wl_rows.append(row)
        for key, _, _ in METRICS:
            peer_vals = [r[key] for r in wl_rows if r["peer"] and r.get(key) is not None]
            best = min(peer_vals) if peer_vals else None
            for r in wl_rows:
                if best and r.get(key) is not None:
                    r[key + "_ratio"] = r[key] / best
        rows.extend(wl_rows)
    return rows


def geomeans(rows, allocs):
    g = {}
    for a in allocs:
        mine = [r for r in rows if r["allocator"] == a.name]
        entry = {"workloads": sum(1 for r in mine if r["status"] == "ok"),
                 "failed": sum(1 for r in mine if r["status"] == "FAILED")}
        for key, _, _ in METRICS:
            vals = [r[key + "_ratio"] for r in mine if r.get(key + "_ratio")]
            if vals:
                entry[key] = math.exp(sum(math.log(v) for v in vals) / len(vals))
        g[a.name] = entry
    return g


def fmt_num(v, kind):
    if v is None:
        return "-"
    if kind == "time":
        return "%.3f" % v if v < 10 else "%.2f" % v
    if kind == "mib":
        v = v / 1024.0
        return "%.1f" % v if v < 1000 else "%.0f" % v
    if kind == "ratio":
        return "%.2f" % v if v < 100 else "%.0f" % v
    return str(v)


def render_table(rows, geo, allocs, probes):
    hdr = ["workload", "allocator", "wall s", "x", "cpu s", "x", "peak MiB", "x",
           "final MiB", "x", "req/s"]  # x: ratio to the best peer
    kinds = [None, None, "time", "ratio", "time", "ratio", "mib", "ratio", "mib", "ratio", None]
    lines = []
    table = []
    prev = None
    for r in rows:
        if prev is not None and r["workload"] != prev:
            table.append(None)
        prev = r["workload"]
        if r["status"] != "ok":
            cell = "FAILED: " + r.get("reason", "") if r["status"] == "FAILED" else "skipped"
            table.append([r["workload"], r["allocator"], cell])
            continue
        vals = [r.get("wall"), r.get("wall_ratio"), r.get("cpu"), r.get("cpu_ratio"),
                r.get("peak_rss"), r.get("peak_rss_ratio"), r.get("final_rss"),
                r.get("final_rss_ratio")]
        cells = [r["workload"], r["allocator"]]
        cells += [fmt_num(v, k) for v, k in zip(vals, kinds[2:10])]
        cells.append("%.0fk" % (r["rps"] / 1000) if r.get("rps") else "-")
        table.append(cells)
    table.append(None)
    for a in allocs:
        e = geo.get(a.name, {})
        cells = ["GEOMEAN", a.name, "", fmt_num(e.get("wall"), "ratio"), "",
                 fmt_num(e.get("cpu"), "ratio"), "", fmt_num(e.get("peak_rss"), "ratio"), "",
                 fmt_num(e.get("final_rss"), "ratio"),
                 "%d ok%s" % (e.get("workloads", 0),
                              ", %d FAILED" % e["failed"] if e.get("failed") else "")]
        table.append(cells)

    widths = [max(len(hdr[i]), max((len(c[i]) for c in table if c and len(c) > 3), default=0))
              for i in range(len(hdr))]
    wa = max(widths[0], max((len(c[0]) for c in table if c), default=0))
    wb = max(widths[1], max((len(c[1]) for c in table if c), default=0))
    widths[0], widths[1] = wa, wb

    def line(cells):
        if len(cells) == 3:  # workload, allocator, FAILED/skipped message
            return "%-*s  %-*s  %s" % (widths[0], cells[0], widths[1], cells[1], cells[2])
        out = "%-*s  %-*s" % (widths[0], cells[0], widths[1], cells[1])
        for i in range(2, len(cells)):
            out += "  " + cells[i].rjust(widths[i])
        return out

    lines.append(line(hdr))
    lines.append("-" * len(lines[0]))
    for c in table:
        lines.append("" if c is None else line(c))
    lines.append("x: ratio to the best peer (glibc, jemalloc, mimalloc, tcmalloc, mimalloc3, snmalloc, rpmalloc) for that "
                 "workload; lower is better. Medians of the runs.")

    if probes:
        names = [a.name for a in allocs]
        title = "instructions/op (callgrind)"
        w0 = max([len(title)] + [len(d) for _, _, d in PROBES]) + 2
        colw = max(9, max(len(n) for n in names))
        lines.append("")
        lines.append(title.ljust(w0) +
                     "".join(n.rjust(colw + 1) for n in names))
        for pname, _, desc in PROBES:
            if pname not in probes:
                continue
            cells = []
            for n in names:
                v = probes[pname].get(n)
                cells.append(("%.1f" % v if isinstance(v, float) else
                              "-" if v is None else "FAILED").rjust(colw + 1))
            lines.append(desc.ljust(w0) + "".join(cells))
        failed = ["%s/%s: %s" % (p, a, v) for p, d in probes.items() for a, v in d.items()
                  if isinstance(v, str)]
        for f in failed:
            lines.append("  " + f)
        lines.append("(Ir(2N) - Ir(N)) / N; includes about 10 instructions of loop and "
                     "random numbers per op")
    return "\n".join(lines)


# --------------------------------------------------------------------------
# Output files

# CSV column <- summary key; units in the column names.
CSV_COLUMNS = [("workload", "workload"), ("allocator", "allocator"), ("peer", "peer"),
               ("status", "status"), ("reason", "reason"), ("reps", "reps"),
               ("wall_s", "wall"), ("wall_ratio", "wall_ratio"),
               ("cpu_s", "cpu"), ("cpu_ratio", "cpu_ratio"),
               ("peak_rss_kb", "peak_rss"), ("peak_rss_ratio", "peak_rss_ratio"),
               ("final_rss_kb", "final_rss"), ("final_rss_ratio", "final_rss_ratio"),
               ("req_per_s", "rps"), ("instr_per_op", "instr_per_op")]


def write_csv(path, rows, probes):
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=[c for c, _ in CSV_COLUMNS])
        w.writeheader()
        for r in rows:
            w.writerow({c: ("%.6g" % r[k]) if isinstance(r.get(k), float) else r.get(k, "")
                        for c, k in CSV_COLUMNS})
        for pname, per in (probes or {}).items():
            for a, v in per.items():
                ok = isinstance(v, float)
                w.writerow({"workload": "probe:" + pname, "allocator": a,
                            "status": "ok" if ok else "FAILED",
                            "reason": "" if ok else v,
                            "instr_per_op": "%.2f" % v if ok else ""})


def esc(s):
    return (str(s).replace("&", "&amp;").replace("<", "&lt;")
            .replace(">", "&gt;").replace('"', "&quot;"))


def svg_panel(out, rows, workloads, allocs, colors, key, title, y0, height, width, left):
    """Grouped bars on a log2 axis, drawn up or down from the 1.0 line."""
    vals = [r[key + "_ratio"] for r in rows if r.get(key + "_ratio")]
    lo = min([1.0] + vals)
    hi = max([2.0] + vals)
    e_lo = max(-3, math.floor(math.log2(lo)))
    e_hi = min(6, max(1, math.ceil(math.log2(hi))))
    top, bottom = y0 + 28, y0 + height
    span = e_hi - e_lo

    def y(v):
        e = min(max(math.log2(v), e_lo), e_hi)
        return bottom - (e - e_lo) / span * (bottom - top)

    out.append('<text x="%d" y="%d" font-size="14" font-weight="bold">%s</text>'
               % (left, y0 + 14, esc(title)))
    for e in range(e_lo, e_hi + 1):
        v = 2.0 ** e
        yy = y(v)
        label = ("%g" % v) + "x"
        stroke = "#333" if e == 0 else "#ddd"
        out.append('<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="%s"/>'
                   % (left, yy, width - 10, yy, stroke))
        out.append('<text x="%d" y="%.1f" font-size="11" text-anchor="end">%s</text>'
                   % (left - 6, yy + 4, label))
    out.append('<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#333"/>' % (left, top, left, bottom))

    n = len(allocs)
    group = (width - 10 - left) / max(1, len(workloads))
    bw = max(2.0, min(14.0, (group - 8) / max(1, n)))
    by = {(r["workload"], r["allocator"]): r for r in rows}
    base = y(1.0)
    for i, wl in enumerate(workloads):
        gx = left + i * group + (group - bw * n) / 2
        for j, a in enumerate(allocs):
            r = by.get((wl.name, a.name))
            x = gx + j * bw
            if r is None or r["status"] == "skipped":
                continue
            if r["status"] == "FAILED":
                out.append('<text x="%.1f" y="%.1f" font-size="11" fill="#c00" '
                           'text-anchor="middle">&#x2715;<title>%s / %s: FAILED %s</title></text>'
                           % (x + bw / 2, base - 3, esc(wl.name), esc(a.name),
                              esc(r.get("reason", ""))))
                continue
            v = r.get(key + "_ratio")
            if not v:
                continue
            yy = y(v)
            y_top, h = (yy, base - yy) if yy < base else (base, yy - base)
            out.append('<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s">'
                       '<title>%s / %s: %.2fx</title></rect>'
                       % (x, y_top, bw - 1, max(h, 1.5), colors[a.name],
                          esc(wl.name), esc(a.name), v))
            if v > 2.0 ** e_hi or v < 2.0 ** e_lo:
                out.append('<text x="%.1f" y="%.1f" font-size="9" text-anchor="middle">%.0f</text>'
                           % (x + bw / 2, (top - 2) if v > 1 else bottom + 9, v))
        cx = left + i * group + group / 2
        out.append('<text transform="translate(%.1f,%d) rotate(-35)" font-size="11" '
                   'text-anchor="end">%s</text>' % (cx, bottom + 16, esc(wl.name)))


def write_svg(path, rows, workloads, allocs, meta):
    colors = {}
    k = 0
    for a in allocs:
        if a.name in COLORS:
            colors[a.name] = COLORS[a.name]
        else:
            colors[a.name] = EXTRA_COLORS[k % len(EXTRA_COLORS)]
            k += 1
    shown = [wl for wl in workloads if any(r["workload"] == wl.name and r["status"] != "skipped"
                                           for r in rows)]
    left = 60
    width = max(700, left + 20 + len(shown) * (len(allocs) * 9 + 14))
    panel_h = 260
    out = []
    out.append('<text x="%d" y="22" font-size="16" font-weight="bold">ringpool benchmarks, '
               '%s</text>' % (left, esc(meta["date"])))
    out.append('<text x="%d" y="38" font-size="11" fill="#555">%s; median of %d runs; '
               'ratio to the best peer, log scale, lower is better</text>'
               % (left, esc(meta["host"]), meta["reps"]))
    # Legend: one line under the title, wrapping if there are many rows.
    lx, ly = left, 48
    for a in allocs:
        step = 28 + 7 * len(a.name)
        if lx + step > width - 10:
            lx, ly = left, ly + 16
        out.append('<rect x="%d" y="%d" width="12" height="12" fill="%s"/>'
                   % (lx, ly, colors[a.name]))
        out.append('<text x="%d" y="%d" font-size="12">%s</text>'
                   % (lx + 16, ly + 11, esc(a.name)))
        lx += step
    y0 = ly + 22
    for key, title in (("wall", "wall time / best peer"), ("peak_rss", "peak RSS / best peer")):
        svg_panel(out, rows, shown, allocs, colors, key, title, y0, panel_h, width, left)
        y0 += panel_h + 95
    height = y0
    with open(path, "w") as f:
        f.write('<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" '
                'viewBox="0 0 %d %d" font-family="sans-serif">\n' % (width, height, width, height))
        f.write('<rect width="100%" height="100%" fill="white"/>\n')
        f.write("\n".join(out))
        f.write("\n</svg>\n")


# --------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(
        description="Benchmark ringpool against glibc and six other allocators.")
    ap.add_argument("--lib", default=os.path.join(ROOT, "build", "libringpool.so.1"),
                    help="ringpool library (default: build/libringpool.so.1)")
    ap.add_argument("--bin", default=os.path.join(ROOT, "build", "bench"),
                    help="directory of the workload binaries (default: build/bench)")
    ap.add_argument("--extra", action="append", default=[], type=parse_extra,
                    metavar="NAME=LIB[:ENV=VAL...]", help="another row (repeatable)")
    ap.add_argument("--reps", type=int, default=3, help="runs per cell (default 3)")
    ap.add_argument("--quick", action="store_true", help="fewer workloads, smaller sizes")
    ap.add_argument("--only", metavar="REGEX", help="workloads and probes to run (re.search)")
    ap.add_argument("--alloc", metavar="REGEX", help="allocator rows to run (re.search)")
    ap.add_argument("--probes", action="store_true", help="run the callgrind probes only")
    ap.add_argument("--no-probes", action="store_true", help="skip the callgrind probes")
    ap.add_argument("--probe-n", type=int, default=None,
                    help="probe ops N (default 200000, quick 50000)")
    ap.add_argument("--timeout", type=int, default=300, help="seconds per run (default 300)")
    ap.add_argument("--out", default=os.path.join(HERE, "results"),
                    help="directory for latest.{csv,json,svg}")
    ap.add_argument("--list", action="store_true", help="list the workloads and exit")
    args = ap.parse_args()

    bin_dir = os.path.abspath(args.bin)
    only = re.compile(args.only) if args.only else None
    notes = []

    allocs = []
    for name, lib in PEERS:
        if lib and not os.path.exists(lib):
            notes.append("%s skipped: %s not installed" % (name, lib))
            continue
        allocs.append(Allocator(name, lib, peer=True))
    rp_lib = os.path.abspath(args.lib)
    candidates = [Allocator("ringpool", rp_lib)] + args.extra
    seen = {a.name for a in allocs}
    for a in candidates:
        if a.name in seen:
            sys.exit("run.py: allocator name %r used twice" % a.name)
        seen.add(a.name)
        if not os.path.exists(a.lib):
            notes.append("%s skipped: %s does not exist (build it first)" % (a.name, a.lib))
            continue
        allocs.append(a)
    if args.alloc:
        rx = re.compile(args.alloc)
        allocs = [a for a in allocs if rx.search(a.name)]
    if not allocs:
        sys.exit("run.py: no allocator to run")

    tmp = tempfile.mkdtemp(prefix="ringpool-bench-")
    try:
        workloads = build_workloads(bin_dir, args.quick, tmp)
        if args.list:
            for wl in workloads:
                print("%-14s %s" % (wl.name, wl.desc))
            return 0
        if only:
            workloads = [wl for wl in workloads if only.search(wl.name)]
        if args.probes:
            workloads = []
        runnable = []
        for wl in workloads:
            missing = [p for p in wl.needs if not os.path.exists(p)]
            if missing:
                notes.append("%s skipped: %s missing%s" % (
                    wl.name, ", ".join(missing),
                    " (make bench builds it)" if missing[0].startswith(bin_dir) else ""))
            else:
                runnable.append(wl)
        workloads = runnable

        probe_bin = os.path.join(bin_dir, "probe")
        env0 = base_env()
        for a in list(allocs):
            if a.lib:
                why = check_interposes(a, probe_bin, env0)
                if why:
                    notes.append("%s: %s; every cell marked FAILED" % (a.name, why))
                    a.broken = why
        libc = next((p for p in LIBC_CANDIDATES if os.path.exists(p)), None)
        spawn = find_spawn(bin_dir, tmp)
        if not spawn and workloads:
            notes.append("spawn helper unavailable: peak RSS includes the runner's own")

        for n in notes:
            log("note: " + n)
        runs = []
        t_start = time.monotonic()
        for i, wl in enumerate(workloads):
            for rep in range(args.reps):
                parts = []
                for a in allocs:
                    if getattr(a, "broken", None):
                        r = {"error": a.broken}
                    else:
                        env, preload = alloc_env(a, wl, libc)
                        run = run_redis if wl.kind == "redis" else run_exec
                        r = run(wl, env, preload, tmp, args.timeout, spawn)
                    r.update(workload=wl.name, allocator=a.name, rep=rep)
                    final = parse_kv(r.get("stdout", "")).get("final_rss_kb")
                    if final is not None:
                        r["final_rss_kb"] = int(final)
                    runs.append(r)
                    parts.append("%s %s" % (a.name, "FAILED" if r.get("error")
                                            else "%.2fs" % r["wall"]))
                log("[%d/%d] %-14s rep %d/%d: %s" % (i + 1, len(workloads), wl.name, rep + 1,
                                                      args.reps, "  ".join(parts)))
            if wl.check:
                # Peers first: the reference output comes from glibc when it ran.
                ok = [r for a in allocs for r in runs
                      if r["workload"] == wl.name and r["allocator"] == a.name
                      and not r.get("error")]
                ref = next((r for r in ok if any(a.peer and a.name == r["allocator"]
                                                 for a in allocs)), ok[0] if ok else None)
                if ref:
                    sig = signature(ref["stdout"])
                    for r in ok:
                        if signature(r["stdout"]) != sig:
                            r["error"] = "output differs from %s's" % ref["allocator"]

        probes = None
        if not args.no_probes and (args.probes or not only or
                                   any(only.search(p) for p, _, _ in PROBES)):
            if not shutil.which("valgrind"):
                notes.append("probes skipped: valgrind not installed")
            elif not os.path.exists(probe_bin):
                notes.append("probes skipped: %s missing" % probe_bin)
            else:
                n = args.probe_n or (50000 if args.quick else 200000)
                probes = run_probes([a for a in allocs if not getattr(a, "broken", None)],
                                    probe_bin, n, tmp, None if args.probes else only)
        elapsed = time.monotonic() - t_start

        rows = summarize(workloads, allocs, runs)
        geo = geomeans(rows, allocs)
        print()
        for n in notes:
            print("note: " + n)
        print(render_table(rows, geo, allocs, probes))
        print("(%d runs in %.0f s)" % (len(runs), elapsed))

        meta = {
            "date": datetime.datetime.now().isoformat(timespec="seconds"),
            "host": "%s, %d CPUs, %s" % (platform.node(), os.cpu_count() or 0,
                                         platform.release()),
            "reps": args.reps,
            "quick": args.quick,
            "argv": sys.argv[1:],
            "allocators": [{"name": a.name, "lib": a.lib, "env": a.env, "peer": a.peer,
                            "broken": getattr(a, "broken", None)} for a in allocs],
            "notes": notes,
            "elapsed_s": round(elapsed, 1),
        }
        os.makedirs(args.out, exist_ok=True)
        write_csv(os.path.join(args.out, "latest.csv"), rows, probes)
        with open(os.path.join(args.out, "latest.json"), "w") as f:
            json.dump({"meta": meta,
                       "workloads": [{"name": wl.name, "desc": wl.desc, "kind": wl.kind,
                                      "argv": wl.argv, "env": wl.env} for wl in workloads],
                       "summary": rows, "geomean": geo, "probes": probes,
                       "runs": [dict(r, stdout=r.get("stdout", "")[-500:]) for r in runs]},
                      f, indent=1)
        if rows:
            write_svg(os.path.join(args.out, "latest.svg"), rows, workloads, allocs, meta)
        log("wrote %s/latest.{csv,json%s}" % (args.out, ",svg" if rows else ""))
        # A peer failing is news about the peer; ringpool failing is a bug.
        return 1 if any(r["status"] == "FAILED" and not r["peer"] for r in rows) else 0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
