// Experiment (not product code): the floor of our current architecture, node:http server +
// undici Pool.dispatch with the classic handler, no access log, no stats, headers passed
// through as they come (hop-by-hop not removed). Our proxy cannot be faster than this without
// leaving node:http or undici. Run as a bench variant:
//   node bench/proxy/run.js --variant undici-bare=bench/proxy/experiments/undici-bare.js
import http from 'node:http';
import { parseArgs } from 'node:util';
import { Pool } from 'undici';

const { values } = parseArgs({ options: { listen: { type: 'string' }, upstream: { type: 'string' } } });
const pool = new Pool(values.upstream, { connections: 128, pipelining: 1 });
const i = values.listen.lastIndexOf(':');

class Handler {
  constructor(res) {
    this.res = res;
  }
  onConnect() {}
  onHeaders(status, raw, resume, text) {
    this.resume = resume;
    const h = [];
    for (let j = 0; j < raw.length; j += 2) {
      const n = raw[j].toString('latin1');
      if (
        n.length === 10 &&
        (n === 'connection' || n === 'Connection' || n === 'keep-alive' || n === 'Keep-Alive')
      )
        continue;
      h.push(n, raw[j + 1].toString('latin1'));
    }
    this.res.writeHead(status, text, h);
    return true;
  }
  onData(chunk) {
    if (this.res.write(chunk)) return true;
    this.res.once('drain', this.resume);
    return false;
  }
  onComplete() {
    this.res.end();
  }
  onError() {
    if (!this.res.headersSent) this.res.writeHead(502);
    this.res.end();
  }
}

http
  .createServer((req, res) => {
    pool.dispatch(
      { path: req.url, method: req.method, headers: req.rawHeaders, body: null },
      new Handler(res),
    );
  })
  .listen(Number(values.listen.slice(i + 1)), values.listen.slice(0, i));
process.on('SIGTERM', () => process.exit(0));
