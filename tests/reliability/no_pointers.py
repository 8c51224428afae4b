#!/usr/bin/env python3
"""no_pointers: the stats channel of a process holds counts, never an
address inside that process.

usage: no_pointers.py PID

Reads the region the way `ringpool stat` does (the file PID.stats in a
ringpool-UID channel directory that the process maps), reads the process's mappings from
/proc/PID/maps, and looks at every 8-byte word at every 4-byte offset of the
region: a word whose value falls inside any mapping would be a pointer an
attacker who can read the channel could use to find the heap, the stack or
the library. Prints what it scanned; exits 1 on a hit, 77 when the process
has no channel.
"""
import os
import struct
import sys

def main():
    pid = int(sys.argv[1])
    channel = None
    with open("/proc/%d/maps" % pid) as f:
        for line in f:
            path = line.split(None, 5)[5].strip() if len(line.split(None, 5)) > 5 else ""
            parts = path.split("/")
            if len(parts) >= 3 and parts[-1] == "%d.stats" % pid and parts[-2].startswith("ringpool-"):
                channel = path
    if channel is None:
        print("no_pointers: process %d has no stats channel" % pid)
        return 77
    with open(channel, "rb") as f:
        data = f.read()
    maps = []
    with open("/proc/%d/maps" % pid) as f:
        for line in f:
            lo, hi = line.split()[0].split("-")
            name = line.split(None, 5)[5].strip() if len(line.split(None, 5)) > 5 else "[anon]"
            maps.append((int(lo, 16), int(hi, 16), name))
    maps.sort()
    hits = []
    words = 0
    for off in range(0, len(data) - 7, 4):
        (v,) = struct.unpack_from("<Q", data, off)
        words += 1
        if v < 0x10000:  # below mmap_min_addr: never an address
            continue
        for lo, hi, name in maps:
            if lo <= v < hi:
                hits.append((off, v, name))
                break
    print("no_pointers: %d bytes of region, %d words at 4-byte steps, %d mappings, %d words that point into one"
          % (len(data), words, len(maps), len(hits)))
    for off, v, name in hits[:20]:
        print("no_pointers: offset %#x holds %#x, inside %s" % (off, v, name))
    return 1 if hits else 0


if __name__ == "__main__":
    sys.exit(main())
