#!/usr/bin/env bash
# Does the load generator's rare "connection closed with a request in flight" come from our client
# keep-alive expiry? `dotslash start` (access log to a file) behind bench/proxy/upstream.js, with
# proxy.timeouts.client_keepalive_ms = KA (default 5000), loaded by bench/proxy/loadgen.c (loadgen.js with LOADGEN=node) at RATE
# req/s (default 4700) for RUNS runs of 3 s + 10 s. loadgen.js reuses idle connections last-in
# first-out, so at a moderate rate most of its 50 connections idle past a short keep-alive and
# the daemon closes them; a request sent on one as it closes is lost (the HTTP/1.1 keep-alive race,
# which browsers retry and loadgen.js does not). Prints errors and p99 per run.
# Needs `npm run build`.
set -euo pipefail
root="$(cd "$(dirname "$0")/../../.." && pwd)"
dir="$(mktemp -d)"
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$dir"' EXIT
ka="${KA:-5000}"; rate="${RATE:-4700}"; runs="${RUNS:-3}"
source "$root/bench/proxy/experiments/upstream.sh"
load_generator
start_upstream "$dir"
cat > "$dir/c.yaml" <<YAML
proxy:
  listen: 127.0.0.1:18400
  upstreams: [http://127.0.0.1:$up]
  access_log: { output: $dir/access.log }
  timeouts: { client_keepalive_ms: $ka }
admin: { listen: 127.0.0.1:18401 }
YAML
DOTSLASH_ADMIN_TOKEN=bench node "$root/bin/dotslash.js" start -c "$dir/c.yaml" > "$dir/daemon.log" 2>&1 &
sleep 2
for i in $(seq "$runs"); do
  out=$("${loadgen[@]}" --url http://127.0.0.1:18400/4k --rate "$rate" --duration 10 \
    --warmup 3 --connections 50 2>/dev/null | tail -1)
  echo "client_keepalive_ms $ka, $rate req/s, run $i: $(grep -o '"errors":[0-9]*,"non2xx":[0-9]*' <<< "$out"), $(grep -o '"p99":[0-9.]*' <<< "$out")"
done
