// Fixed-rate, open-loop HTTP/1.1 load generator (what wrk2 does; wrk2 is not in Debian).
// Requests are scheduled at t0 + i/rate regardless of how fast answers come back, and each
// latency is measured from its *intended* send time, so a stalled server cannot hide its
// queueing delay (no coordinated omission). Every latency is kept and sorted at the end, so
// percentiles are exact rather than bucketed.
//
// Why raw sockets and not undici: measured here, an undici Pool client fell behind at 15k
// req/s on one core (p50 grew to 0.8 s against the bare upstream), so it measured itself, not
// the server. This client writes one prebuilt request buffer per request and only frames the
// response (Content-Length or chunked), which keeps it well above the rates it is asked for.
//
// Usage: node loadgen.js --url URL --rate R [--duration S] [--warmup S] [--connections N]
// Prints one JSON line with the measured window's results.
import net from 'node:net';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    url: { type: 'string' },
    rate: { type: 'string' },
    duration: { type: 'string', default: '10' },
    warmup: { type: 'string', default: '3' },
    connections: { type: 'string', default: '50' },
  },
});
if (!values.url || !values.rate) {
  console.error('usage: loadgen.js --url URL --rate R [--duration S] [--warmup S] [--connections N]');
  process.exit(2);
}
/** A numeric option, or exit 2 with a message naming it (as loadgen.c does). */
function numberOption(name, min) {
  const v = Number(values[name]);
  if (values[name].trim() === '' || !Number.isFinite(v) || v < min) {
    console.error(`loadgen: --${name} must be a number >= ${min}, got "${values[name]}"`);
    process.exit(2);
  }
  return v;
}
let url;
try {
  url = new URL(values.url);
} catch {
  url = null;
}
if (url === null || url.protocol !== 'http:') {
  console.error('loadgen: --url must start with http://');
  process.exit(2);
}
const rate = numberOption('rate', 0.001);
const durationMs = numberOption('duration', 0.001) * 1000;
const warmupMs = numberOption('warmup', 0) * 1000;
const connections = Math.floor(numberOption('connections', 1));
const intervalMs = 1000 / rate;
const REQUEST = Buffer.from(
  `GET ${url.pathname}${url.search} HTTP/1.1\r\nHost: ${url.host}\r\nUser-Agent: dotslash-bench\r\n\r\n`,
  'latin1',
);

const warmupCount = Math.floor((warmupMs / 1000) * rate);
const measuredCount = Math.ceil((durationMs / 1000) * rate);
const totalCount = warmupCount + measuredCount;
const latencies = new Float64Array(measuredCount);
let recorded = 0;
let errors = 0;
let non2xx = 0;
let bytes = 0;
let issued = 0; // requests scheduled so far (warm-up included)
let answered = 0; // requests finished (answered or failed)
let t0 = 0;

// FIFO of requests that are due but found no idle connection (index into the schedule).
const pending = [];
let pendingHead = 0;
const idle = [];

const CRLFCRLF = Buffer.from('\r\n\r\n');

/** One keep-alive connection with a tiny HTTP/1.1 response framer. */
class Conn {
  constructor() {
    this.current = -1; // schedule index of the request in flight, -1 if idle
    this.head = null; // partial response head
    this.state = 0; // 0 head, 1 body by length, 2 chunk size line, 3 chunk data, 4 chunk CRLF, 5 trailers
    this.remaining = 0;
    this.line = '';
    this.status = 0;
    this.socket = net.connect({ host: url.hostname, port: Number(url.port || 80), noDelay: true });
    this.socket.on('connect', () => this.next());
    this.socket.on('data', (chunk) => this.onData(chunk));
    this.socket.on('error', () => {});
    this.socket.on('close', () => this.onClose());
  }

  send(index) {
    this.current = index;
    this.state = 0;
    this.head = null;
    this.socket.write(REQUEST);
  }

  next() {
    if (pendingHead < pending.length) {
      this.send(pending[pendingHead++]);
      if (pendingHead > 4096 && pendingHead * 2 > pending.length) {
        pending.splice(0, pendingHead);
        pendingHead = 0;
      }
    } else {
      this.current = -1;
      idle.push(this);
    }
  }

  finish(ok) {
    const index = this.current;
    this.current = -1;
    answered++;
    if (index >= warmupCount) {
      if (!ok) errors++;
      else {
        if (this.status < 200 || this.status > 299) non2xx++;
        if (recorded < latencies.length)
          latencies[recorded++] = performance.now() - (t0 + index * intervalMs);
      }
    }
  }

  onData(chunk) {
    if (this.current === -1) return;
    if (this.current >= warmupCount) bytes += chunk.length;
    let pos = 0;
    while (pos < chunk.length) {
      if (this.state === 0) {
        const buf =
          this.head === null ? chunk.subarray(pos) : Buffer.concat([this.head, chunk.subarray(pos)]);
        const end = buf.indexOf(CRLFCRLF);
        if (end === -1) {
          this.head = buf;
          return;
        }
        const consumedBefore = this.head === null ? 0 : this.head.length;
        this.head = null;
        const text = buf.toString('latin1', 0, end);
        this.status = Number(text.slice(9, 12));
        const cl = /\r\ncontent-length:\s*(\d+)/i.exec(text);
        const chunked = /\r\ntransfer-encoding:[^\r]*chunked/i.test(text);
        pos += end + 4 - consumedBefore;
        if (chunked) this.state = 2;
        else {
          this.remaining = cl ? Number(cl[1]) : 0;
          this.state = 1;
        }
        this.line = '';
        if (this.state === 1 && this.remaining === 0) this.done();
      } else if (this.state === 1) {
        const take = Math.min(this.remaining, chunk.length - pos);
        this.remaining -= take;
        pos += take;
        if (this.remaining === 0) this.done();
      } else if (this.state === 2 || this.state === 5) {
        const nl = chunk.indexOf(10, pos);
        if (nl === -1) {
          this.line += chunk.toString('latin1', pos);
          return;
        }
        const line = (this.line + chunk.toString('latin1', pos, nl)).trim();
        this.line = '';
        pos = nl + 1;
        if (this.state === 5) {
          if (line === '') this.done();
        } else {
          const size = parseInt(line, 16);
          if (size === 0) this.state = 5;
          else {
            this.remaining = size;
            this.state = 3;
          }
        }
      } else if (this.state === 3) {
        const take = Math.min(this.remaining, chunk.length - pos);
        this.remaining -= take;
        pos += take;
        if (this.remaining === 0) {
          this.remaining = 2;
          this.state = 4;
        }
      } else {
        const take = Math.min(this.remaining, chunk.length - pos);
        this.remaining -= take;
        pos += take;
        if (this.remaining === 0) this.state = 2;
      }
    }
  }

  done() {
    this.finish(true);
    this.next();
    // A well-behaved HTTP/1.1 server sends nothing unsolicited; anything left would be garbage.
  }

  onClose() {
    const i = idle.indexOf(this);
    if (i !== -1) idle.splice(i, 1);
    if (this.current !== -1) this.finish(false);
    if (errors > 0 && errors <= 3) console.error('loadgen: connection closed with a request in flight');
    // Replace the connection while there is work left.
    if (issued < totalCount || pendingHead < pending.length) conns[conns.indexOf(this)] = new Conn();
  }
}

/** Start every request whose scheduled time has come; a 1 ms timer drives it. */
function pump() {
  const due = Math.min(totalCount, Math.floor((performance.now() - t0) / intervalMs) + 1);
  while (issued < due) {
    const conn = idle.pop();
    if (conn !== undefined) conn.send(issued);
    else pending.push(issued);
    issued++;
  }
}

const conns = [];
for (let i = 0; i < connections; i++) conns.push(new Conn());
// Let the connections open before the clock starts.
await new Promise((resolve) => {
  const check = setInterval(() => {
    if (idle.length === connections) {
      clearInterval(check);
      resolve();
    }
  }, 5);
  setTimeout(() => {
    clearInterval(check);
    resolve();
  }, 5_000);
});

t0 = performance.now();
const timer = setInterval(pump, 1);
pump();
const endAt = t0 + (totalCount / rate) * 1000;
await new Promise((resolve) => {
  const check = setInterval(() => {
    // Stop when everything was answered, or 5 s after the schedule ended (the rest count as errors).
    if ((issued >= totalCount && answered >= totalCount) || performance.now() > endAt + 5_000) {
      clearInterval(check);
      resolve();
    }
  }, 20);
});
clearInterval(timer);
const unanswered = totalCount - answered;
errors += Math.max(0, measuredCount - recorded - errors);
for (const c of conns) c.socket.destroy();

const sorted = latencies.subarray(0, recorded).sort();
const pct = (p) =>
  sorted.length === 0 ? null : sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)];
const round = (v) => (v === null ? null : Math.round(v * 1000) / 1000);
// This process's own CPU per request sent (warm-up included), as loadgen.c reports it.
const cpu = process.cpuUsage();
const generatorCpuUs = issued > 0 ? Math.round(((cpu.user + cpu.system) / issued) * 10) / 10 : 0;
process.stdout.write(
  JSON.stringify({
    url: values.url,
    targetRate: rate,
    achievedRate: Math.round(recorded / (durationMs / 1000)),
    connections,
    durationS: durationMs / 1000,
    completed: recorded,
    expected: measuredCount,
    errors,
    non2xx,
    unanswered,
    bytes,
    latencyMs: {
      p50: round(pct(0.5)),
      p90: round(pct(0.9)),
      p99: round(pct(0.99)),
      p999: round(pct(0.999)),
      max: round(sorted.length ? sorted[sorted.length - 1] : null),
    },
    generatorCpuUs,
  }) + '\n',
);
process.exit(0);
