# Sourced by the shell experiments here. start_upstream DIR [WRAPPER...] starts
# bench/proxy/upstream.js in the background (a job of the calling shell, so its EXIT trap's
# `kill $(jobs -p)` stops it), prefixed by WRAPPER (e.g. taskset -c 0) if given, waits up to 5 s
# for its `{"port":N}` line and sets `up` to that port.
start_upstream() {
  local dir="$1"
  shift
  "$@" node "$root/bench/proxy/upstream.js" 127.0.0.1 > "$dir/up.json" &
  for _ in $(seq 50); do [ -s "$dir/up.json" ] && break; sleep 0.1; done
  up=$(sed -nE 's/.*"port":([0-9]+).*/\1/p' "$dir/up.json")
  if [ -z "$up" ]; then
    echo "bench/proxy/upstream.js did not report its port within 5 s" >&2
    exit 1
  fi
}

# load_generator: sets the array `loadgen` to the fixed-rate load generator's command, from
# LOADGEN (c, the default: bench/proxy/loadgen.c, built on first use; node: loadgen.js).
load_generator() {
  local cmd
  cmd=$(node "$root/bench/proxy/loadgens.js" "${LOADGEN:-c}") || exit 2
  mapfile -t loadgen <<< "$cmd"
}
