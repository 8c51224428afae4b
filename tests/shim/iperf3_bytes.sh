#!/bin/sh
# iperf3 server and client on 127.0.0.1, 64 MiB in one test; the byte count
# the client reports. Run by tests/shim/run.sh plain and with
# RINGPOOL_URING=1. iperf3 3.12 makes every socket non-blocking, so nothing
# is routed: this checks that such a program is left alone.
set -eu
tmp=$(mktemp -d "${TMPDIR:-/tmp}/shim-iperf.XXXXXX")
srv=
cleanup() { if [ -n "$srv" ]; then kill "$srv" 2>/dev/null || true; fi; rm -rf "$tmp"; }
trap cleanup EXIT
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
iperf3 -s -1 -B 127.0.0.1 -p "$port" >"$tmp/server" 2>&1 &
srv=$!
# Wait until the server listens (a probing connection would be a test).
hexport=$(printf '%04X' "$port")
i=0
until grep -q ":$hexport 00000000:0000 0A" /proc/net/tcp; do
  i=$((i + 1))
  [ $i -lt 100 ] || { echo "iperf3 server did not start"; exit 1; }
  sleep 0.05
done
iperf3 -c 127.0.0.1 -p "$port" -n 64M -J >"$tmp/client.json" 2>"$tmp/client.err" || true
python3 - "$tmp/client.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
if "error" in r:
    print("iperf3: " + r["error"])
    sys.exit(1)
end = r["end"]
print("iperf3: sent %d bytes" % end["sum_sent"]["bytes"])
PY
