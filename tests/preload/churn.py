"""Churn Python's heap: dicts, lists, strings, objects, in a few threads.

Run by tests/preload/run.sh with and without LD_PRELOAD (and with
PYTHONMALLOC=malloc, which sends every object to malloc); the output
depends on the code only -- sets and dicts are printed sorted or summed --
so the two runs must print the same.
"""
import hashlib
import json
import re
import sys
import threading


def digest(*parts):
    h = hashlib.sha256()
    for p in parts:
        h.update(repr(p).encode())
    return h.hexdigest()[:16]


def dict_churn(seed, rounds=6, n=40000):
    total = 0
    keep = []
    for r in range(rounds):
        d = {}
        for i in range(n):
            k = f"k{(i * 7919 + seed * 31 + r) % (n // 2)}-{i % 97}"
            d.setdefault(k, []).append(i * r)
        for k in list(d)[::3]:
            del d[k]
        total += sum(len(v) for v in d.values())
        keep.append({k: v for k, v in d.items() if len(k) % 5 == 0})
        if len(keep) > 2:
            keep.pop(0)
    return total, sum(len(x) for x in keep)


def string_churn(seed, n=60000):
    parts = []
    for i in range(n):
        s = ("abcdefghij" * (i % 13 + 1))[i % 7:] + str(i * seed)
        parts.append(s.upper() if i % 3 else s[::-1])
    joined = "|".join(parts)
    words = re.findall(r"[A-J]+\d+", joined)
    pieces = joined.split("|")
    pieces.sort(key=lambda x: (len(x), x))
    return len(joined), len(words), digest(pieces[:50], pieces[-50:])


class Node:
    __slots__ = ("key", "children", "payload")

    def __init__(self, key):
        self.key = key
        self.children = []
        self.payload = bytearray(key % 300)


def tree_churn(depth=6, fan=6):
    def build(d, key):
        n = Node(key)
        if d:
            n.children = [build(d - 1, key * fan + i) for i in range(fan)]
        return n

    def walk(n):
        return len(n.payload) + sum(walk(c) for c in n.children)

    total = 0
    for r in range(3):
        root = build(depth, r)
        total += walk(root)
        del root
    return total


def list_churn(n=200000):
    a = list(range(n))
    for step in (3, 5, 7):
        a = [x * step % 1000003 for x in a if x % step]
        a.sort()
        a = a[::2] + a[1::2]
    return len(a), sum(a) % 1000000007


def json_churn(n=20000):
    doc = [{"id": i, "name": f"item{i}", "tags": [str(i % 7), str(i % 11)],
            "nested": {"v": i / 8, "s": "x" * (i % 50)}} for i in range(n)]
    text = json.dumps(doc, sort_keys=True)
    back = json.loads(text)
    return len(text), digest(back[::997])


def worker(i, out):
    out[i] = (dict_churn(i), string_churn(i + 1))


def main():
    results = {}
    threads = [threading.Thread(target=worker, args=(i, results)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i in sorted(results):
        print("thread", i, results[i])
    print("tree", tree_churn())
    print("list", list_churn())
    print("json", json_churn())
    big = [bytes(1 << (10 + i % 12)) for i in range(200)]
    print("bytes", sum(map(len, big)))
    del big
    print("churn.py: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
