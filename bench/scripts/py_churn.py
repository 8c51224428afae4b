"""py_churn - dict, list and string churn in CPython.

Run with PYTHONMALLOC=malloc so that every object goes through the preloaded
malloc instead of CPython's own arena allocator (pymalloc). Each round builds
a batch of records (dicts of strings, ints and lists), indexes them in a dict,
joins and splits strings, sorts, then drops most of it; a slowly turning
cache keeps some objects alive across rounds so that lifetimes mix.

usage: python3 py_churn.py [rounds=20] [records=20000]
Prints a checksum that depends only on the arguments.
"""
import sys


def main():
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    records = int(sys.argv[2]) if len(sys.argv) > 2 else 20000
    cache = {}
    checksum = 0
    for r in range(rounds):
        batch = []
        for i in range(records):
            key = "user-%d-%d" % (r, i * 7919 % records)
            rec = {
                "id": i,
                "name": key,
                "tags": [key[:5], str(i % 97), "t" * (i % 13)],
                "score": (i * 2654435761) % 1000003,
            }
            batch.append(rec)
        index = {rec["name"]: rec for rec in batch}
        words = " ".join(rec["name"] for rec in batch[: records // 4])
        parts = words.split(" ")
        checksum = (checksum * 31 + len(parts) + len(words)) % (1 << 61)
        batch.sort(key=lambda rec: rec["score"])
        for rec in batch[::50]:
            cache[rec["name"]] = [rec["score"], rec["tags"]]
        if len(cache) > records:
            for k in list(cache)[: records // 2]:
                del cache[k]
        checksum = (checksum * 31 + batch[0]["score"] + len(index)) % (1 << 61)
        del batch, index, words, parts
    print("checksum=%016x" % checksum)


if __name__ == "__main__":
    main()
