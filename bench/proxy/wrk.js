// Runs wrk (closed loop, no pipelining) against one URL and parses req/s and latency percentiles.
import { output, start } from './procs.js';

const UNIT_MS = { us: 0.001, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

function toMs(text) {
  const m = /^([\d.]+)(us|ms|s|m|h)$/.exec(text);
  if (!m) throw new Error(`wrk: cannot read latency "${text}"`);
  return Number(m[1]) * UNIT_MS[m[2]];
}

/** Parse `wrk --latency` output. */
export function parseWrk(text) {
  const rps = /Requests\/sec:\s+([\d.]+)/.exec(text);
  if (!rps) throw new Error(`wrk: no Requests/sec in output:\n${text}`);
  const pct = {};
  for (const m of text.matchAll(/^\s+(50|75|90|99)(?:\.\d+)?%\s+([\d.]+\w+)/gm)) pct[`p${m[1]}`] = toMs(m[2]);
  const total = /(\d+) requests in ([\d.]+)(\w+),\s+([\d.]+\w+) read/.exec(text);
  const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(text);
  const non2xx = /Non-2xx or 3xx responses: (\d+)/.exec(text);
  return {
    rps: Number(rps[1]),
    latencyMs: pct,
    requests: total ? Number(total[1]) : null,
    errors: sock ? sock.slice(1).reduce((a, b) => a + Number(b), 0) : 0,
    non2xx: non2xx ? Number(non2xx[1]) : 0,
  };
}

/** One wrk run: `wrk -t threads -c connections -d seconds --latency url`, bounded in time. */
export async function wrk(url, { threads = 1, connections = 50, seconds = 10, cpus } = {}) {
  const child = start(
    'wrk',
    'wrk',
    [`-t${threads}`, `-c${connections}`, `-d${seconds}s`, '--timeout', '5s', '--latency', url],
    { cpus },
  );
  const { out } = await output(child, (seconds + 30) * 1000);
  return parseWrk(out);
}
