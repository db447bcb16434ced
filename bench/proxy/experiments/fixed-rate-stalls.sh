#!/usr/bin/env bash
# Where a fixed-rate run's p99 comes from (issue 2): `dotslash start` (default config, access log
# to a file) behind bench/proxy/upstream.js, loaded at RATE req/s (default 4100, about half our
# max at 4 KiB) for 10 s by bench/proxy/loadgen.c (loadgen.js with LOADGEN=node); then the daemon's own /metrics: event-loop
# delay (prom-client's monitorEventLoopDelay) and GC pauses by kind, over the whole run.
# Env: RATE, SIZE (4k|100k), CLIENT (fast|undici), NODE_ARGS (e.g. --max-semi-space-size=64),
# RESCUE (rescue.mode: on|observe|off; unset = the default), PIN=split (the daemon on CPU 1,
# upstream and load generator on CPU 0; unset = the scheduler decides), ACCESS (the access log:
# file = to a file, the default; null = to /dev/null, formatted but not stored; off = disabled),
# TRACE=MS (loadgen.c only: group the requests slower than MS ms into episodes, trace-episodes.js).
# Needs `npm run build`.
set -euo pipefail
root="$(cd "$(dirname "$0")/../../.." && pwd)"
dir="$(mktemp -d)"
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$dir"' EXIT
rate="${RATE:-4100}"; size="${SIZE:-4k}"; client="${CLIENT:-fast}"; access="${ACCESS:-file}"
case "$access" in
  file) log_cfg="{ output: $dir/access.log }" ;;
  null) log_cfg="{ output: /dev/null }" ;;
  off) log_cfg="{ enabled: false }" ;;
  *) echo "ACCESS: want file, null or off, got \"$access\"" >&2; exit 2 ;;
esac
ours_cpu=(); load_cpu=()
if [ "${PIN:-}" = split ]; then ours_cpu=(taskset -c 1); load_cpu=(taskset -c 0); fi
source "$root/bench/proxy/experiments/upstream.sh"
load_generator
start_upstream "$dir" "${load_cpu[@]}"
cat > "$dir/c.yaml" <<YAML
proxy:
  listen: 127.0.0.1:18400
  upstreams: [http://127.0.0.1:$up]
  upstream_client: $client
  access_log: $log_cfg
admin: { listen: 127.0.0.1:18401 }
YAML
if [ -n "${RESCUE:-}" ]; then printf 'rescue: { mode: %s }\n' "$RESCUE" >> "$dir/c.yaml"; fi
# shellcheck disable=SC2086
DOTSLASH_ADMIN_TOKEN=bench "${ours_cpu[@]}" node ${NODE_ARGS:-} "$root/bin/dotslash.js" start -c "$dir/c.yaml" > "$dir/daemon.log" 2>&1 &
sleep 1.5
echo "== $client, $size at $rate req/s, node args: ${NODE_ARGS:-none}, rescue.mode: ${RESCUE:-default}, pin: ${PIN:-none}, access log: $access"
trace=()
if [ -n "${TRACE:-}" ]; then trace=(--trace "$dir/trace.txt"); fi
"${load_cpu[@]}" "${loadgen[@]}" --url "http://127.0.0.1:18400/$size" --rate "$rate" --duration 10 \
  --warmup 3 --connections 50 "${trace[@]}" 2>&1 | tail -1
if [ -n "${TRACE:-}" ]; then node "$root/bench/proxy/experiments/trace-episodes.js" "$dir/trace.txt" --slow "$TRACE"; fi
curl -s -H 'authorization: Bearer bench' http://127.0.0.1:18401/metrics |
  grep -E '^nodejs_eventloop_lag_(p50|p90|p99|max|mean)_seconds|^nodejs_gc_duration_seconds_(sum|count)' || true
