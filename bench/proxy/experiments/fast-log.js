// Experiment (not product code): our FrontProxy exactly as bench/proxy/ours.js runs it, but
// with the access log written by a hand-rolled serializer instead of pino, to measure what
// pino costs per request (profile: _asJson, asJson, epochTime, LOG, sonic-boom). Same line
// format and keys as the pino access log; lines are batched and written 64 KiB at a time.
//   node bench/proxy/run.js --variant fast-log=bench/proxy/experiments/fast-log.js
import fs from 'node:fs';
import { parseArgs } from 'node:util';
import pino from 'pino';
import { proxySchema } from '../../../dist/src/config/schema.js';
import { FrontProxy } from '../../../dist/proxy/front.js';

const { values } = parseArgs({
  options: { listen: { type: 'string' }, upstream: { type: 'string', multiple: true } },
});

// Printable ASCII without '"' and '\': such a string is its own JSON body (URLs, methods, IPs).
const SAFE = /^[\x20\x21\x23-\x5b\x5d-\x7e]*$/;
const str = (v) => (v === null || v === undefined ? 'null' : SAFE.test(v) ? `"${v}"` : JSON.stringify(v));

/** Duck-types the two pino.Logger methods FrontProxy uses for its access log: info and flush. */
class FastAccessLog {
  constructor(fd) {
    this.fd = fd;
    this.buf = '';
    this.writing = false;
    this.waiters = [];
    setInterval(() => this.write(), 100).unref(); // a quiet proxy's lines still appear promptly
  }
  info(o) {
    let s =
      `{"level":30,"time":${Date.now()},"log":"access","remote":${str(o.remote)},"method":${str(o.method)},` +
      `"url":${str(o.url)},"status":${o.status},"bytes":${o.bytes},"upstream_ms":${o.upstream_ms},"total_ms":${o.total_ms}`;
    if (o.error !== undefined) s += `,"error":${str(o.error)}`;
    if (o.aborted === true) s += ',"aborted":true';
    this.buf += `${s}}\n`;
    if (this.buf.length >= 65_536) this.write();
  }
  write() {
    if (this.writing || this.buf.length === 0) {
      if (!this.writing) for (const cb of this.waiters.splice(0)) cb();
      return;
    }
    const chunk = Buffer.from(this.buf);
    this.buf = '';
    this.writing = true;
    fs.write(this.fd, chunk, () => {
      this.writing = false;
      this.write();
    });
  }
  flush(cb) {
    if (cb) this.waiters.push(cb);
    this.write();
  }
}

const config = proxySchema.parse({ listen: values.listen, upstreams: values.upstream });
const logger = pino({ level: 'warn' }, pino.destination(2));
const proxy = new FrontProxy({ config, logger, accessLog: new FastAccessLog(1) });
await proxy.listen();
const stop = () => {
  proxy.close(1_000).finally(() => process.exit(0));
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
