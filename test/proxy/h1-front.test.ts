// The fast front (proxy/h1-front.ts): which request heads it serves itself, that what it writes
// is byte for byte what the node:http front writes for the same exchange, and that everything
// it does not serve reaches node:http intact (handoff with the bytes already read).
import * as net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseSimpleRequest } from '../../proxy/h1-front.js';
import {
  rawRequest,
  readBody,
  startProxy,
  startUpstream,
  type RunningProxy,
  type Upstream,
} from './helpers.js';

function parse(head: string): ReturnType<typeof parseSimpleRequest> {
  const b = Buffer.from(head, 'latin1');
  return parseSimpleRequest(b, b.indexOf('\r\n\r\n'));
}

describe('parseSimpleRequest: what the fast front serves itself', () => {
  it('reads a plain GET and HEAD: method, target, headers as sent (values trimmed), keep-alive', () => {
    expect(parse('GET /a?b=1 HTTP/1.1\r\nHost: x.test\r\nX-Thing:  two words \t\r\n\r\n')).toEqual({
      method: 'GET',
      url: '/a?b=1',
      rawHeaders: ['Host', 'x.test', 'X-Thing', 'two words'],
      keepAlive: true,
    });
    expect(parse('HEAD / HTTP/1.1\r\nhost: x\r\nX-Empty:\r\n\r\n')).toEqual({
      method: 'HEAD',
      url: '/',
      rawHeaders: ['host', 'x', 'X-Empty', ''],
      keepAlive: true,
    });
  });

  it('notes Connection: close (and any token list holding it)', () => {
    expect(parse('GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')!.keepAlive).toBe(false);
    expect(parse('GET / HTTP/1.1\r\nHost: x\r\nconnection: TE, Close\r\n\r\n')!.keepAlive).toBe(false);
    expect(parse('GET / HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\n\r\n')!.keepAlive).toBe(true);
    expect(parse('GET / HTTP/1.1\r\nHost: x\r\nConnection: closed\r\n\r\n')!.keepAlive).toBe(true);
  });

  // Each of these goes to node:http, which serves, refuses or tunnels it as before.
  const handedOff: [string, string][] = [
    ['another method', 'POST / HTTP/1.1\r\nHost: x\r\n\r\n'],
    ['a lower-case method', 'get / HTTP/1.1\r\nHost: x\r\n\r\n'],
    ['HTTP/1.0', 'GET / HTTP/1.0\r\nHost: x\r\n\r\n'],
    ['HTTP/2 preface', 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'],
    ['absolute-form', 'GET http://elsewhere/ HTTP/1.1\r\nHost: x\r\n\r\n'],
    ['asterisk-form', 'GET * HTTP/1.1\r\nHost: x\r\n\r\n'],
    ['two spaces', 'GET  / HTTP/1.1\r\nHost: x\r\n\r\n'],
    ['a tab in the request line', 'GET\t/ HTTP/1.1\r\nHost: x\r\n\r\n'],
    ['a non-ASCII target', 'GET /\xe9 HTTP/1.1\r\nHost: x\r\n\r\n'],
    ['a bare LF line end', 'GET / HTTP/1.1\nHost: x\r\n\r\n'],
    ['a bare LF in a field', 'GET / HTTP/1.1\r\nHost: x\nX: y\r\n\r\n'],
    ['a bare CR in a field', 'GET / HTTP/1.1\r\nHost: x\rX: y\r\n\r\n'],
    ['obs-fold', 'GET / HTTP/1.1\r\nHost: x\r\nX: a\r\n b\r\n\r\n'],
    ['space before the colon', 'GET / HTTP/1.1\r\nHost : x\r\n\r\n'],
    ['an empty field name', 'GET / HTTP/1.1\r\nHost: x\r\n: y\r\n\r\n'],
    ['a control byte in a value', 'GET / HTTP/1.1\r\nHost: x\r\nX: a\x01b\r\n\r\n'],
    ['a NUL in a value', 'GET / HTTP/1.1\r\nHost: x\r\nX: a\x00b\r\n\r\n'],
    ['obs-text in a value', 'GET / HTTP/1.1\r\nHost: x\r\nX: caf\xe9\r\n\r\n'],
    ['no Host', 'GET / HTTP/1.1\r\nX: y\r\n\r\n'],
    ['two Host fields', 'GET / HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n'],
    ['Content-Length', 'GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n'],
    ['Transfer-Encoding', 'GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n'],
    ['Expect', 'GET / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n\r\n'],
    ['Upgrade', 'GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n'],
    ['Connection: upgrade alone', 'GET / HTTP/1.1\r\nHost: x\r\nConnection: upgrade\r\n\r\n'],
  ];
  for (const [what, head] of handedOff) {
    it(`hands off ${what}`, () => {
      expect(parse(head)).toBeNull();
    });
  }
});

// ---- the wire: fast front against the node:http front ----------------------------------------

let upstream: Upstream;
let fast: RunningProxy;
let node: RunningProxy;
const posted: string[] = [];

beforeAll(async () => {
  upstream = await startUpstream((req, res) => {
    const path = req.url!;
    if (path === '/length') {
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '5', 'x-multi': ['a', 'b'] });
      res.end('hello');
    } else if (path === '/chunked') {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.write('one,');
      setTimeout(() => res.end('two'), 5);
    } else if (path === '/trailers') {
      res.writeHead(200, { trailer: 'x-sum' });
      res.write('body');
      res.addTrailers({ 'x-sum': '42' });
      res.end();
    } else if (path === '/no-content') {
      res.writeHead(204, { 'x-why': 'nothing' });
      res.end();
    } else if (path === '/not-modified') {
      res.writeHead(304, { etag: '"e1"' });
      res.end();
    } else if (path === '/dated') {
      res.writeHead(200, { date: 'Tue, 01 Jan 2030 00:00:00 GMT', 'content-length': '2' });
      res.end('ok');
    } else if (path === '/hints') {
      res.writeEarlyHints({ link: '</a.css>; rel=preload' });
      setTimeout(() => res.end('after hints'), 5);
    } else if (path === '/echo-headers') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(req.rawHeaders));
    } else if (path === '/post') {
      void readBody(req).then((b) => {
        posted.push(b.toString());
        res.end(`got ${b.length}`);
      });
    } else {
      res.end('default');
    }
  });
  fast = await startProxy({ upstreams: [upstream.url], front_parser: 'fast' });
  node = await startProxy({ upstreams: [upstream.url], front_parser: 'node' });
});

afterAll(async () => {
  await fast.proxy.close(100);
  await node.proxy.close(100);
  await upstream.close();
});

/** The date a response carries varies by the second: compare everything else. */
function normalise(wire: string): string {
  return wire.replace(/^Date: .*\r\n/gm, 'Date: (now)\r\n');
}

describe('fast front: same bytes on the wire as the node:http front', () => {
  const cases: [string, string][] = [
    ['Content-Length body', 'GET /length HTTP/1.1\r\nHost: a.test\r\n\r\n'],
    ['chunked body (no length upstream)', 'GET /chunked HTTP/1.1\r\nHost: a.test\r\n\r\n'],
    ['trailers', 'GET /trailers HTTP/1.1\r\nHost: a.test\r\nTE: trailers\r\n\r\n'],
    ['204', 'GET /no-content HTTP/1.1\r\nHost: a.test\r\n\r\n'],
    ['304', 'GET /not-modified HTTP/1.1\r\nHost: a.test\r\n\r\n'],
    ['HEAD', 'HEAD /length HTTP/1.1\r\nHost: a.test\r\n\r\n'],
    ['HEAD of a chunked response', 'HEAD /chunked HTTP/1.1\r\nHost: a.test\r\n\r\n'],
    ['the upstream Date kept', 'GET /dated HTTP/1.1\r\nHost: a.test\r\n\r\n'],
    ['103 Early Hints', 'GET /hints HTTP/1.1\r\nHost: a.test\r\n\r\n'],
    ['Connection: close', 'GET /length HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n'],
    [
      'the headers sent upstream',
      'GET /echo-headers HTTP/1.1\r\nHost: a.test\r\nX-Forwarded-For: 6.6.6.6\r\nKeep-Alive: 5\r\n' +
        'Connection: keep-alive, X-Hop\r\nX-Hop: drop me\r\nProxy: httpoxy\r\nAccept: */*\r\n\r\n',
    ],
    ['an invalid Host (400 from us)', 'GET / HTTP/1.1\r\nHost: a b\r\n\r\n'],
  ];
  for (const [what, request] of cases) {
    it(what, async () => {
      const [viaFast, viaNode] = await Promise.all([
        rawRequest(fast.port, request, 300),
        rawRequest(node.port, request, 300),
      ]);
      expect(viaNode).toMatch(/^HTTP\/1.1 \d{3} /);
      expect(normalise(viaFast)).toBe(normalise(viaNode));
    });
  }
});

/** A raw keep-alive connection that collects what it reads. */
function connection(port: number): { socket: net.Socket; text: () => string; closed: Promise<void> } {
  const socket = net.connect(port, '127.0.0.1');
  let text = '';
  socket.setEncoding('latin1');
  socket.on('data', (d: string) => (text += d));
  socket.on('error', () => {});
  const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()));
  return { socket, text: () => text, closed };
}

async function until(check: () => boolean, ms = 3_000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe('fast front: connections', () => {
  it('serves several requests on one keep-alive connection itself', async () => {
    const c = connection(fast.port);
    for (let i = 1; i <= 3; i++) {
      c.socket.write('GET /length HTTP/1.1\r\nHost: a.test\r\n\r\n');
      await until(() => c.text().split('hello').length - 1 === i);
      expect(fast.proxy.fastConnections).toBeGreaterThanOrEqual(1);
    }
    expect(c.text()).toMatch(/Connection: keep-alive\r\nKeep-Alive: timeout=75\r\n/);
    c.socket.destroy();
    await c.closed;
  });

  it('hands a POST with its body to node:http: nothing read is lost', async () => {
    const res = await rawRequest(
      fast.port,
      'POST /post HTTP/1.1\r\nHost: a.test\r\nContent-Length: 11\r\n\r\nhello world',
      300,
    );
    expect(res).toMatch(/^HTTP\/1.1 200 OK\r\n/);
    expect(res).toContain('got 11');
    expect(posted).toContain('hello world');
  });

  it('hands over a connection after simple requests: a later POST on it still works', async () => {
    const c = connection(fast.port);
    c.socket.write('GET /length HTTP/1.1\r\nHost: a.test\r\n\r\n');
    await until(() => c.text().includes('hello'));
    c.socket.write('POST /post HTTP/1.1\r\nHost: a.test\r\nContent-Length: 3\r\n\r\nabc');
    await until(() => c.text().includes('got 3'));
    c.socket.write('GET /length HTTP/1.1\r\nHost: a.test\r\n\r\n');
    await until(() => c.text().split('hello').length - 1 === 2);
    c.socket.destroy();
    await c.closed;
  });

  it('a head split over two reads goes to node:http and is answered', async () => {
    const c = connection(fast.port);
    c.socket.write('GET /length HTTP/1.1\r\nHo');
    await new Promise((r) => setTimeout(r, 50));
    c.socket.write('st: a.test\r\n\r\n');
    await until(() => c.text().includes('hello'));
    expect(c.text()).toMatch(/^HTTP\/1.1 200 OK\r\n/);
    c.socket.destroy();
    await c.closed;
  });

  it('pipelined requests are answered in order', async () => {
    const c = connection(fast.port);
    c.socket.write(
      'GET /length HTTP/1.1\r\nHost: a.test\r\n\r\nGET /dated HTTP/1.1\r\nHost: a.test\r\n\r\n' +
        'GET /chunked HTTP/1.1\r\nHost: a.test\r\n\r\n',
    );
    await until(() => c.text().includes('two'));
    const t = c.text();
    expect(t.indexOf('hello')).toBeLessThan(t.indexOf('\r\n\r\nok'));
    expect(t.indexOf('\r\n\r\nok')).toBeLessThan(t.indexOf('one,'));
    c.socket.destroy();
    await c.closed;
  });

  it('a request arriving while the previous response is in flight waits its turn', async () => {
    const c = connection(fast.port);
    c.socket.write('GET /chunked HTTP/1.1\r\nHost: a.test\r\n\r\n');
    await until(() => c.text().includes('one,'));
    c.socket.write('GET /length HTTP/1.1\r\nHost: a.test\r\n\r\n');
    await until(() => c.text().includes('hello'));
    const t = c.text();
    expect(t.indexOf('two')).toBeLessThan(t.indexOf('hello'));
    c.socket.destroy();
    await c.closed;
  });

  it('Connection: close gets the response, then the connection closes', async () => {
    const c = connection(fast.port);
    c.socket.write('GET /length HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n');
    await c.closed;
    expect(c.text()).toMatch(/^HTTP\/1.1 200 OK\r\n[^]*Connection: close\r\n[^]*hello$/);
  });

  it('after a Connection: close response, requests sent behind it are dropped, not handed on', async () => {
    const before = fast.proxy.stats.requests;
    const c = connection(fast.port);
    c.socket.write('GET /chunked HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n');
    // Sent after the response ended (our side is closing by then).
    await until(() => c.text().endsWith('0\r\n\r\n'));
    c.socket.write('GET /length HTTP/1.1\r\nHost: a.test\r\n\r\n'.repeat(20));
    await c.closed;
    await new Promise((r) => setTimeout(r, 100));
    expect(c.text()).toMatch(/^HTTP\/1.1 200 OK\r\n[^]*two\r\n0\r\n\r\n$/);
    expect(fast.proxy.stats.requests - before).toBe(1);
  });
});

describe('fast front: timeouts', () => {
  let up: Upstream;
  let p: RunningProxy;
  beforeAll(async () => {
    up = await startUpstream((_req, res) => res.end('ok'));
    p = await startProxy({
      upstreams: [up.url],
      timeouts: { client_header_ms: 300, client_keepalive_ms: 300 },
    });
  });
  afterAll(async () => {
    await p.proxy.close(100);
    await up.close();
  });

  it('a connection that sends nothing gets 408 after client_header_ms, as from node:http', async () => {
    const c = connection(p.port);
    const t0 = performance.now();
    await c.closed;
    expect(performance.now() - t0).toBeGreaterThan(250);
    expect(c.text()).toMatch(/^HTTP\/1.1 408 /);
  });

  it('an idle keep-alive connection closes after client_keepalive_ms plus the one-second buffer of node:http', async () => {
    const c = connection(p.port);
    c.socket.write('GET / HTTP/1.1\r\nHost: a.test\r\n\r\n');
    await until(() => c.text().includes('ok'));
    expect(c.text()).toContain('Keep-Alive: timeout=0\r\n');
    const t0 = performance.now();
    await c.closed;
    const idle = performance.now() - t0;
    expect(idle).toBeGreaterThan(1_200);
    expect(idle).toBeLessThan(3_000);
  });
});
