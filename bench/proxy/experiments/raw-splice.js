// Experiment (not product code): the ceiling of a Node proxy that skips node:http and undici
// for the common case. Raw sockets both ways: the request head is parsed just enough to
// rewrite it (hop-by-hop out, X-Forwarded-For and Via in), sent over a kept-alive upstream
// socket, the response head rewritten the same way and the body spliced through by
// Content-Length with backpressure. Only what the bench sends is handled (bodiless requests,
// Content-Length responses); anything else gets a 501. No access log, no stats.
//   node bench/proxy/run.js --variant raw-splice=bench/proxy/experiments/raw-splice.js
import net from 'node:net';
import { parseArgs } from 'node:util';

const { values } = parseArgs({ options: { listen: { type: 'string' }, upstream: { type: 'string' } } });
const up = new URL(values.upstream);
const upPort = Number(up.port);
const idle = [];
const CRLF2 = Buffer.from('\r\n\r\n');
const HOP = /^(connection|keep-alive|proxy-connection|transfer-encoding|te|upgrade|trailer):/i;
const NOT_IMPLEMENTED = 'HTTP/1.1 501 Not Implemented\r\ncontent-length: 0\r\nconnection: close\r\n\r\n';

/** Hop-by-hop header lines out; returns the kept lines and the Content-Length (-1 if none). */
function rewrite(lines) {
  let out = '';
  let length = -1;
  for (let i = 1; i < lines.length; i++) {
    const l = lines[i];
    if (HOP.test(l)) {
      if (/^transfer-encoding:/i.test(l)) length = -2;
      continue;
    }
    if (l.length > 15 && (l.charCodeAt(0) | 32) === 99 && /^content-length:/i.test(l))
      length = Number(l.slice(15));
    out += l + '\r\n';
  }
  return { out, length };
}

function getUpstream(cb) {
  const s = idle.pop();
  if (s !== undefined) return cb(s);
  const sock = net.connect({ host: up.hostname, port: upPort, noDelay: true }, () => cb(sock));
  sock.on('error', () => sock.destroy());
}

net
  .createServer({ noDelay: true }, (client) => {
    let buf = null;
    let busy = false;
    client.on('error', () => client.destroy());
    client.on('data', (chunk) => {
      buf = buf === null ? chunk : Buffer.concat([buf, chunk]);
      if (!busy) next();
    });
    function next() {
      if (buf === null) return;
      const end = buf.indexOf(CRLF2);
      if (end === -1) return;
      const head = buf.toString('latin1', 0, end);
      buf = end + 4 < buf.length ? buf.subarray(end + 4) : null;
      const lines = head.split('\r\n');
      const { out, length } = rewrite(lines);
      if (length > 0 || length === -2) {
        client.end(NOT_IMPLEMENTED);
        return;
      }
      busy = true;
      const reqHead = `${lines[0]}\r\n${out}x-forwarded-for: ${client.remoteAddress}\r\nvia: 1.1 dotslash\r\n\r\n`;
      getUpstream((u) => forward(u, reqHead));
    }
    function forward(u, reqHead) {
      let rbuf = null;
      let remaining = -1;
      const onData = (chunk) => {
        if (remaining < 0) {
          rbuf = rbuf === null ? chunk : Buffer.concat([rbuf, chunk]);
          const end = rbuf.indexOf(CRLF2);
          if (end === -1) return;
          const lines = rbuf.toString('latin1', 0, end).split('\r\n');
          const { out, length } = rewrite(lines);
          if (length < 0) {
            u.destroy();
            client.end(NOT_IMPLEMENTED);
            return;
          }
          remaining = length;
          const body = rbuf.subarray(end + 4);
          rbuf = null;
          client.write(`${lines[0]}\r\n${out}via: 1.1 dotslash\r\n\r\n`, 'latin1');
          chunk = body;
        }
        remaining -= chunk.length;
        const ok = chunk.length === 0 || client.write(chunk);
        if (remaining <= 0) {
          u.off('data', onData);
          idle.push(u);
          busy = false;
          next();
        } else if (!ok) {
          u.pause();
          client.once('drain', () => u.resume());
        }
      };
      u.on('data', onData);
      u.write(reqHead, 'latin1');
    }
  })
  .listen(Number(values.listen.slice(values.listen.lastIndexOf(':') + 1)), '127.0.0.1');
process.on('SIGTERM', () => process.exit(0));
