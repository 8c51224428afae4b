#!/usr/bin/env python3
"""python3's ThreadingHTTPServer (blocking sockets, one thread per request)
serves three files to 8 concurrent curl downloads on 127.0.0.1; each result
is printed as size and md5. tests/shim/run.sh runs this plain and with
RINGPOOL_URING=1 and compares: the server's recv and send calls are routed
(curl's own sockets are non-blocking, so they pass through)."""
import functools
import hashlib
import http.server
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def md5(path):
    h = hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 16), b""):
            h.update(chunk)
    return h.hexdigest()


def main():
    root = tempfile.mkdtemp(prefix="shim-http-")
    try:
        sizes = {"small.bin": 1000, "medium.bin": 300_000, "large.bin": 8 << 20}
        rnd = random.Random(7)
        for name, size in sizes.items():
            with open(os.path.join(root, name), "wb") as f:
                f.write(rnd.randbytes(size))
        handler = functools.partial(QuietHandler, directory=root)
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        thread.start()
        port = server.server_address[1]
        names = sorted(sizes)
        downloads = []
        outdir = os.path.join(root, "out")
        os.mkdir(outdir)
        for i in range(8):
            name = names[i % len(names)]
            out = os.path.join(outdir, f"{i}-{name}")
            cmd = ["curl", "-s", "-S", "--max-time", "60", "-o", out, f"http://127.0.0.1:{port}/{name}"]
            downloads.append((name, out, subprocess.Popen(cmd)))
        for name, out, proc in downloads:
            rc = proc.wait()
            got = os.path.getsize(out) if os.path.exists(out) else -1
            same = got == sizes[name] and md5(out) == md5(os.path.join(root, name))
            print(f"{name}: curl exit {rc}, {got} bytes, md5 {'matches' if same else 'DIFFERS'}")
        server.shutdown()
        server.server_close()
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
