#!/usr/bin/env bash
# Why a fixed rate costs more CPU per request than wrk's saturating load (issue 2's p99 target):
# the daemon (`dotslash proxy`, default config, access log to a file) behind
# bench/proxy/upstream.js, first under wrk -c50 (3 s warm-up, 8 s measured), then at RATE req/s
# (bench/proxy/loadgen.c, or loadgen.js with LOADGEN=node; 10 s). For each: CPU per request (utime+stime from /proc) and, from
# `perf record` of 4 s in the middle, the shares by binary and the hottest symbols.
# Env: RATE (default 8443, half our 4 KiB max on the 2026-11-23 AMD host), SIZE (4k|100k),
# CALLERS=1 (record call graphs too and print what calls the hottest kernel symbol).
# Needs wrk, perf and `npm run build`; run as root (it sets kptr_restrict 0 for kernel symbols).
set -euo pipefail
root="$(cd "$(dirname "$0")/../../.." && pwd)"
dir="$(mktemp -d)"
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$dir"' EXIT
rate="${RATE:-8443}"; size="${SIZE:-4k}"
[[ "$rate" =~ ^[1-9][0-9]*$ ]] || { echo "RATE: want a positive whole number of req/s, got \"$rate\"" >&2; exit 2; }
[[ "$size" == 4k || "$size" == 100k ]] || { echo "SIZE: want 4k or 100k, got \"$size\"" >&2; exit 2; }
echo 0 > /proc/sys/kernel/kptr_restrict 2>/dev/null || true
echo -1 > /proc/sys/kernel/perf_event_paranoid 2>/dev/null || true
source "$root/bench/proxy/experiments/upstream.sh"
load_generator
start_upstream "$dir"
DOTSLASH_ADMIN_TOKEN=bench node "$root/bin/dotslash.js" proxy --listen 127.0.0.1:18620 \
  --upstream "http://127.0.0.1:$up" --admin 127.0.0.1:18621 > "$dir/access.log" 2> "$dir/err.log" &
pid=$!
sleep 1.5
ticks=$(getconf CLK_TCK)
cpu() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
report() { # $1 label, $2 requests, $3 cpu ticks, $4 perf file
  echo "== $1: $2 requests, $(( $3 * 1000000 / ticks / $2 )) µs of CPU per request"
  perf report -i "$4" --stdio -q --no-children --sort dso -g none 2>/dev/null | head -4 || true
  local syms
  syms=$(perf report -i "$4" --stdio -q --no-children --sort sym -g none 2>/dev/null || true)
  head -5 <<< "$syms"
  if [ -n "${CALLERS:-}" ]; then
    local top
    top=$(awk '$2 == "[k]" {print $3; exit}' <<< "$syms")
    echo "-- what calls $top (shares of all samples; paths above 2%):"
    perf report -i "$4" --stdio -q --no-children --sort sym --symbol-filter="$top" -g graph,2,callee 2>/dev/null |
      grep -E -- '--[0-9.]+%--' | head -12 || true
  fi
}
url="http://127.0.0.1:18620/$size"
wrk -t1 -c50 -d3s "$url" > /dev/null
c0=$(cpu)
wrk -t1 -c50 -d8s "$url" > "$dir/wrk.txt" &
w=$!
sleep 2
perf record -q -F 1999 ${CALLERS:+-g} -p "$pid" -o "$dir/wrk.data" -- sleep 4 > /dev/null 2>&1
wait "$w"
c1=$(cpu)
report "wrk -c50" "$(awk '/requests in/ {print $1}' "$dir/wrk.txt")" $(( c1 - c0 )) "$dir/wrk.data"
c0=$(cpu)
"${loadgen[@]}" --url "$url" --rate "$rate" --duration 10 --warmup 0 > "$dir/lg.json" &
lg=$!
sleep 3
perf record -q -F 1999 ${CALLERS:+-g} -p "$pid" -o "$dir/fixed.data" -- sleep 4 > /dev/null 2>&1
wait "$lg"
c1=$(cpu)
report "fixed $rate req/s" $(( rate * 10 )) $(( c1 - c0 )) "$dir/fixed.data"
echo "loadgen: $(node -e "const l=JSON.parse(require('fs').readFileSync('$dir/lg.json','utf8').trim().split('\n').pop());console.log('p50', l.latencyMs.p50, 'p99', l.latencyMs.p99, 'ms, errors', l.errors)")"
