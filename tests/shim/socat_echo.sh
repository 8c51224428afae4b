#!/bin/sh
# socat as a TCP echo server (PIPE, a process per connection) and as its
# client: 4 MB through both on 127.0.0.1, compared with what went in.
# -t 30: the client waits that long for the echo after its input ends
# (it ends as soon as the echo does); 5 s truncated it on a loaded machine.
# -b 4096 on the server: its PIPE is one pipe it both writes and reads, and
# it writes a whole block (blocking) once select() says the pipe has room
# for one page. A block of 8192 (the default) into a pipe with one page
# free waited forever for its only reader, itself (seen about 1 run in 200:
# a server child asleep in anon_pipe_write, the client ending at -T 30 with
# part of the echo). A write of at most PIPE_BUF bytes fits a free page.
# Run by tests/shim/run.sh plain and with RINGPOOL_URING=1.
set -eu
tmp=$(mktemp -d "${TMPDIR:-/tmp}/shim-socat.XXXXXX")
srv=
cleanup() { if [ -n "$srv" ]; then kill "$srv" 2>/dev/null || true; fi; rm -rf "$tmp"; }
trap cleanup EXIT
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
seq 1 550000 >"$tmp/in"
socat -b 4096 -T 30 "TCP4-LISTEN:$port,bind=127.0.0.1,reuseaddr,fork" PIPE &
srv=$!
i=0
until socat -u /dev/null "TCP4:127.0.0.1:$port" 2>/dev/null; do
  i=$((i + 1))
  [ $i -lt 100 ] || { echo "socat server did not start"; exit 1; }
  sleep 0.05
done
timeout 60 socat -t 30 -T 30 - "TCP4:127.0.0.1:$port" <"$tmp/in" >"$tmp/out"
if cmp -s "$tmp/in" "$tmp/out"; then
  echo "socat echo: $(wc -c <"$tmp/out") bytes back, identical"
else
  echo "socat echo: $(wc -c <"$tmp/out") of $(wc -c <"$tmp/in") bytes back, DIFFERENT"
fi
