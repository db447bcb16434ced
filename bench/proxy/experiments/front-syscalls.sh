#!/usr/bin/env bash
# Syscalls per request of FrontProxy alone (bench/proxy/ours.js, default config, access log to a
# file) under wrk: `strace -c -f` attached for the middle of a 2 s wrk run, counts divided by the
# requests wrk completed. Answers "is the front doing more socket I/O than one request needs?".
# Env: FRONT (fast|node, default fast), SIZE (4k|100k). Needs strace and wrk (apt-get install).
set -euo pipefail
root="$(cd "$(dirname "$0")/../../.." && pwd)"
dir="$(mktemp -d)"
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$dir"' EXIT
front="${FRONT:-fast}"; size="${SIZE:-4k}"
source "$root/bench/proxy/experiments/upstream.sh"
start_upstream "$dir"
node "$root/bench/proxy/ours.js" --listen 127.0.0.1:18510 --upstream "http://127.0.0.1:$up" \
  --front-parser "$front" > "$dir/access.log" &
ours=$!
sleep 1
wrk -t1 -c20 -d2s "http://127.0.0.1:18510/$size" > /dev/null # warm-up
timeout 3 strace -q -c -f -p "$ours" -o "$dir/strace.txt" &
st=$!
sleep 0.3
reqs=$(wrk -t1 -c20 -d2s "http://127.0.0.1:18510/$size" | awk '/requests in/ {print $1}')
wait "$st" || true
echo "== front $front, $size: $reqs requests under wrk (strace attached for all of them)"
awk -v n="$reqs" '$NF ~ /^(read|write|writev|epoll_pwait|epoll_wait)$/ { printf "%-12s %8d calls  %.2f per request\n", $NF, $4, $4 / n }' "$dir/strace.txt"
