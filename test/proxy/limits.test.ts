// Client-side limits: body size (413, by Content-Length at once or while streaming chunked),
// header size (431), slow clients (408), connection count (503), malformed requests (400).
import { afterEach, describe, expect, it } from 'vitest';
import {
  rawRequest,
  readBody,
  request,
  startProxy,
  startUpstream,
  type RunningProxy,
  type Upstream,
} from './helpers.js';
import * as net from 'node:net';

let up: Upstream | null = null;
let front: RunningProxy | null = null;
let received: number[] = [];

afterEach(async () => {
  await front?.proxy.close(500);
  await up?.close();
  front = null;
  up = null;
  received = [];
});

async function sink(): Promise<Upstream> {
  return startUpstream(async (req, res) => {
    try {
      received.push((await readBody(req)).length);
      res.end('ok');
    } catch {
      received.push(-1);
    }
  });
}

describe('body size', () => {
  it('Content-Length over max_body_bytes -> 413 at once, nothing forwarded', async () => {
    up = await sink();
    front = await startProxy({ upstreams: [up.url], limits: { max_body_bytes: 1024 } });
    const text = await rawRequest(front.port, 'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5000\r\n\r\n');
    expect(text).toMatch(/^HTTP\/1.1 413 /);
    expect(text).toMatch(/connection: close/i);
    expect(text).toContain('PRX_ERR_BODY_TOO_LARGE');
    expect(received).toEqual([]);
    expect(front.proxy.stats.clientErrors).toBe(1);
  });

  it('a chunked body growing past the limit -> 413 and the upstream request is aborted', async () => {
    up = await sink();
    front = await startProxy({ upstreams: [up.url], limits: { max_body_bytes: 1024 } });
    const chunk = 'x'.repeat(600);
    const text = await rawRequest(
      front.port,
      'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n' +
        `258\r\n${chunk}\r\n258\r\n${chunk}\r\n258\r\n${chunk}\r\n0\r\n\r\n`,
    );
    expect(text).toMatch(/^HTTP\/1.1 413 /);
    expect(received.every((n) => n === -1)).toBe(true);
  });

  it('a body within the limit passes', async () => {
    up = await sink();
    front = await startProxy({ upstreams: [up.url], limits: { max_body_bytes: 1024 } });
    const r = await request(`${front.url}/`, {
      method: 'POST',
      headers: { 'content-length': '1024' },
      body: 'y'.repeat(1024),
    });
    expect(r.status).toBe(200);
    expect(received).toEqual([1024]);
  });
});

describe('head size, slow clients, connection count, malformed requests', () => {
  it('request head over max_header_bytes -> 431 with Connection: close', async () => {
    up = await sink();
    front = await startProxy({ upstreams: [up.url], limits: { max_header_bytes: 2048 } });
    const text = await rawRequest(
      front.port,
      `GET / HTTP/1.1\r\nHost: a\r\nX-Big: ${'z'.repeat(4000)}\r\n\r\n`,
    );
    expect(text).toMatch(/^HTTP\/1.1 431 /);
    expect(text).toMatch(/connection: close/i);
    expect(text).toContain('PRX_ERR_HEADERS_TOO_LARGE');
  });

  it('a client that never finishes its head gets 408 after client_header_ms', async () => {
    up = await sink();
    front = await startProxy({
      upstreams: [up.url],
      timeouts: { client_header_ms: 300, client_request_ms: 1000 },
    });
    const text = await rawRequest(front.port, 'GET / HTTP/1.1\r\nHost: a\r\nX-Slow: ', 3000);
    expect(text).toMatch(/^HTTP\/1.1 408 /);
    expect(text).toContain('PRX_ERR_CLIENT_TIMEOUT');
  });

  it('connections over max_connections get 503 and are closed', async () => {
    up = await sink();
    front = await startProxy({ upstreams: [up.url], limits: { max_connections: 2 } });
    const held = [net.connect(front.port, '127.0.0.1'), net.connect(front.port, '127.0.0.1')];
    await Promise.all(held.map((s) => new Promise((r) => s.once('connect', r))));
    await new Promise((r) => setTimeout(r, 50));
    const text = await rawRequest(front.port, 'GET / HTTP/1.1\r\nHost: a\r\n\r\n');
    expect(text).toMatch(/^HTTP\/1.1 503 /);
    expect(text).toContain('PRX_ERR_TOO_MANY_CONNECTIONS');
    for (const s of held) s.destroy();
  });

  it.each([
    [
      'CL and TE together',
      'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
    ],
    [
      'two Content-Length',
      'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd',
    ],
    ['a bad header character', 'GET / HTTP/1.1\r\nHost: a\r\nX-Bad: a\x01b\r\n\r\n'],
    ['no Host in HTTP/1.1', 'GET / HTTP/1.1\r\n\r\n'],
    ['absolute-form target', 'GET http://elsewhere.example/ HTTP/1.1\r\nHost: a\r\n\r\n'],
  ])('%s -> 400, not forwarded', async (_name, wire) => {
    up = await sink();
    front = await startProxy({ upstreams: [up.url] });
    const text = await rawRequest(front.port, wire);
    expect(text).toMatch(/^HTTP\/1.1 400 /);
    expect(text).toContain('PRX_ERR_BAD_REQUEST');
    expect(received).toEqual([]);
  });
});

describe('transfer-codings', () => {
  it('a transfer-coding other than chunked -> 400, not forwarded', async () => {
    up = await sink();
    front = await startProxy({ upstreams: [up.url] });
    const text = await rawRequest(
      front.port,
      'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n',
    );
    expect(text).toMatch(/^HTTP\/1.1 400 /);
    expect(received).toEqual([]);
  });
});
