// Reads a `loadgen --trace FILE` file (scheduled ms, latency ms per request) and groups the
// slow requests into episodes: slow requests whose scheduled times are less than GAP ms apart
// belong to one episode. Many requests late together in a few episodes is a stall (the proxy
// or a process it needs was not running); slow requests spread thinly over the run is queueing.
//   node bench/proxy/experiments/trace-episodes.js FILE [--slow MS (2)] [--gap MS (5)] [--top N (10)]
import fs from 'node:fs';
import { parseArgs } from 'node:util';

const { values: opt, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    slow: { type: 'string', default: '2' },
    gap: { type: 'string', default: '5' },
    top: { type: 'string', default: '10' },
  },
});
if (positionals.length !== 1) {
  console.error('usage: trace-episodes.js FILE [--slow MS] [--gap MS] [--top N]');
  process.exit(2);
}
/** Exit 2 with `message` (bad arguments or a bad trace file: no stack trace). */
function fail(message) {
  console.error(`trace-episodes: ${message}`);
  process.exit(2);
}
const number = (name, min) => {
  const v = Number(opt[name]);
  if (opt[name].trim() === '' || !Number.isFinite(v) || v < min) fail(`--${name} must be a number >= ${min}`);
  return v;
};
const slow = number('slow', 0);
const gap = number('gap', 0);
const top = number('top', 1);
let text;
try {
  text = fs.readFileSync(positionals[0], 'utf8');
} catch (err) {
  fail(`cannot read ${positionals[0]}: ${err.message}`);
}
const rows = text
  .trim()
  .split('\n')
  .map((line, i) => {
    const [at, ms] = line.split(' ').map(Number);
    if (!Number.isFinite(at) || !Number.isFinite(ms))
      fail(`${positionals[0]}:${i + 1}: want "scheduled-ms latency-ms" (loadgen --trace), got "${line}"`);
    return { at, ms };
  })
  .sort((a, b) => a.at - b.at);

const episodes = [];
for (const r of rows) {
  if (r.ms < slow) continue;
  const last = episodes[episodes.length - 1];
  if (last && r.at - last.end < gap) {
    last.end = r.at;
    last.count++;
    last.max = Math.max(last.max, r.ms);
  } else episodes.push({ start: r.at, end: r.at, count: 1, max: r.ms });
}
const slowCount = episodes.reduce((n, e) => n + e.count, 0);
const spanS = rows.length ? (rows[rows.length - 1].at - rows[0].at) / 1000 : 0;
console.log(
  `${rows.length} requests over ${spanS.toFixed(1)} s; ${slowCount} (${((100 * slowCount) / rows.length).toFixed(2)}%) ` +
    `took >= ${slow} ms, in ${episodes.length} episode(s) (gap < ${gap} ms)`,
);
const bySize = [...episodes].sort((a, b) => b.count - a.count).slice(0, top);
console.log('largest episodes: start s | length ms | slow requests | worst ms');
for (const e of bySize)
  console.log(
    `${(e.start / 1000).toFixed(3)} | ${(e.end - e.start).toFixed(1)} | ${e.count} | ${e.max.toFixed(1)}`,
  );
