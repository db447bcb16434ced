#!/usr/bin/env bash
# Reproduces the open question about proxy.upstream_client: fast (issue 2): under fixed-rate
# load a few client connections are closed with a request in flight and no access-log line.
# Runs bench/proxy/upstream.js, then `dotslash start` with each client in turn, 3,600 req/s of
# 4 KiB for 10 s (bench/proxy/loadgen.c, or loadgen.js with LOADGEN=node; 50 connections), and prints the loadgen summary and
# the access-log line count (every answered request logs one). Needs `npm run build`.
# SATURATE=S first loads each proxy with wrk (50 connections, S seconds at 4 KiB, then at 100 KiB)
# as bench/proxy/run.js does before its fixed-rate runs.
set -euo pipefail
saturate="${SATURATE:-0}"
# KEEPALIVE_MS=N sets proxy.timeouts.client_keepalive_ms (default 5000): how long our front keeps
# an idle client connection open.
keepalive="${KEEPALIVE_MS:-5000}"
# STALL_MS=N stops the proxy (SIGSTOP) for N ms, 6 s into the fixed-rate run, as a long GC or
# event-loop stall would: requests pile up on idle keep-alive connections meanwhile.
stall="${STALL_MS:-0}"
root="$(cd "$(dirname "$0")/../../.." && pwd)"
dir="$(mktemp -d)"
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$dir"' EXIT
source "$root/bench/proxy/experiments/upstream.sh"
load_generator
start_upstream "$dir"
for client in fast undici; do
  cat > "$dir/$client.yaml" <<YAML
proxy:
  listen: 127.0.0.1:18200
  upstreams: [http://127.0.0.1:$up]
  upstream_client: $client
  timeouts: { client_keepalive_ms: $keepalive }
  access_log: { output: $dir/access-$client.log }
admin: { listen: 127.0.0.1:18201 }
YAML
  DOTSLASH_ADMIN_TOKEN=bench node "$root/bin/dotslash.js" start -c "$dir/$client.yaml" > "$dir/daemon-$client.log" 2>&1 &
  pid=$!
  sleep 1.5
  echo "== upstream_client: $client"
  if [ "$saturate" != 0 ]; then
    for size in 4k 100k; do
      wrk -t1 -c50 -d"$saturate" "http://127.0.0.1:18200/$size" | grep -E 'Requests/sec|Non-2xx|Socket errors' || true
    done
  fi
  if [ "$stall" != 0 ]; then
    (sleep 6; kill -STOP "$pid"; sleep "$(awk "BEGIN{print $stall/1000}")"; kill -CONT "$pid") &
  fi
  "${loadgen[@]}" --url http://127.0.0.1:18200/4k --rate 3600 --duration 10 \
    --warmup 2 --connections 50 2>&1 | tail -1
  kill "$pid"; wait "$pid" 2>/dev/null || true
  echo "access-log lines: $(wc -l < "$dir/access-$client.log") (the fixed-rate run sent 43200 incl. warm-up)"
  echo "lines not 200 or aborted: $(grep -c -v '"status":200,' "$dir/access-$client.log" || true); $(grep -c '"aborted":true' "$dir/access-$client.log" || true) aborted"
  grep -v '"status":200,' "$dir/access-$client.log" | head -5 || true
done
