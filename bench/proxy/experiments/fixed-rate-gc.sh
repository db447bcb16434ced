#!/usr/bin/env bash
# Are the tens-of-ms fixed-rate tails GC pauses? FrontProxy alone (bench/proxy/ours.js, default
# config, access log to a file) under `node --trace-gc`, loaded by bench/proxy/loadgen.c (loadgen.js with LOADGEN=node) at RATE
# req/s (default 19800, about half our 4 KiB max on the 2026-11-23 Intel host) for 3 s + 10 s;
# prints the load generator's result and the GC pauses by kind (count, longest, total).
# Env: RATE, SIZE (4k|100k), FRONT (fast|node).
set -euo pipefail
root="$(cd "$(dirname "$0")/../../.." && pwd)"
dir="$(mktemp -d)"
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$dir"' EXIT
rate="${RATE:-19800}"; size="${SIZE:-4k}"; front="${FRONT:-fast}"
source "$root/bench/proxy/experiments/upstream.sh"
load_generator
start_upstream "$dir"
node --trace-gc "$root/bench/proxy/ours.js" --listen 127.0.0.1:18520 --upstream "http://127.0.0.1:$up" \
  --front-parser "$front" > "$dir/out.log" 2>&1 &
sleep 1
echo "== front $front, $size at $rate req/s"
"${loadgen[@]}" --url "http://127.0.0.1:18520/$size" --rate "$rate" --duration 10 \
  --warmup 3 --connections 50 2>&1 | tail -1
# --trace-gc lines: "... ms: Scavenge A (B) -> C (D) MB, PAUSE / X ms ..."
awk '/: (Scavenge|Mark-Compact|Mark-sweep)/ {
  kind = ($0 ~ /Scavenge/) ? "scavenge" : "mark-compact"
  for (i = 1; i <= NF; i++) if ($i == "MB,") { p = $(i + 1) + 0; break }
  n[kind]++; t[kind] += p; if (p > m[kind]) m[kind] = p
} END { for (k in n) printf "%-13s %5d pauses, longest %.2f ms, total %.1f ms\n", k, n[k], m[k], t[k] }' "$dir/out.log"
