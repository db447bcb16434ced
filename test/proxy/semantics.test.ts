// HTTP semantics through the proxy: HEAD, chunked bodies both ways, Expect: 100-continue,
// response trailers and 1xx informational responses.
import * as http from 'node:http';
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

let up: Upstream | null = null;
let front: RunningProxy | null = null;

afterEach(async () => {
  await front?.proxy.close(1000);
  await up?.close();
  front = null;
  up = null;
});

describe('HEAD', () => {
  it('answers HEAD with the upstream headers and no body, and the connection stays usable', async () => {
    up = await startUpstream((req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '11' });
      res.end(req.method === 'HEAD' ? undefined : 'hello world');
    });
    front = await startProxy({ upstreams: [up.url] });
    const text = await rawRequest(
      front.port,
      'HEAD /x HTTP/1.1\r\nHost: a\r\n\r\nGET /x HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n',
    );
    const responses = text.split(/(?=HTTP\/1.1 )/);
    expect(responses).toHaveLength(2);
    expect(responses[0]).toMatch(/^HTTP\/1.1 200/);
    expect(responses[0]).toMatch(/content-length: 11\r\n/i);
    expect(responses[0]!.endsWith('\r\n\r\n')).toBe(true);
    expect(responses[1]!.endsWith('\r\n\r\nhello world')).toBe(true);
  });
});

describe('chunked transfer', () => {
  it('streams a chunked request body to the upstream and a chunked response back', async () => {
    let upstreamTE: string | undefined;
    let firstChunk: () => void = () => {};
    const firstChunkSeen = new Promise<void>((r) => (firstChunk = r));
    up = await startUpstream(async (req, res) => {
      upstreamTE = req.headers['transfer-encoding'];
      req.once('data', () => firstChunk());
      const body = await readBody(req);
      res.writeHead(200, { 'content-type': 'text/plain' }); // no length: chunked
      res.write('got:');
      setTimeout(() => res.end(body.toString().toUpperCase()), 20);
    });
    front = await startProxy({ upstreams: [up.url] });
    const result = await new Promise<{ te?: string; body: string }>((resolve, reject) => {
      const req = http.request(`${front!.url}/c`, { method: 'POST', agent: false });
      req.on('response', (res) => {
        let body = '';
        res.on('data', (c) => (body += c));
        res.on('end', () => resolve({ te: res.headers['transfer-encoding'], body }));
      });
      req.on('error', reject);
      req.write('hello');
      // The rest is sent only once the upstream has the first part: the proxy streams the
      // body on as it comes instead of waiting for its end (this would deadlock otherwise).
      void firstChunkSeen.then(() => req.end(' world'));
    });
    expect(upstreamTE).toBe('chunked');
    expect(result.te).toBe('chunked');
    expect(result.body).toBe('got:HELLO WORLD');
  });
});

describe('Expect: 100-continue', () => {
  it('sends 100 Continue, then forwards the body', async () => {
    let upstreamExpect: string | undefined = 'unset';
    up = await startUpstream(async (req, res) => {
      upstreamExpect = req.headers.expect;
      res.end(`len=${(await readBody(req)).length}`);
    });
    front = await startProxy({ upstreams: [up.url] });
    const result = await new Promise<{ continued: boolean; status: number; body: string }>(
      (resolve, reject) => {
        let continued = false;
        const req = http.request(`${front!.url}/upload`, {
          method: 'PUT',
          agent: false,
          headers: { expect: '100-continue', 'content-length': '5' },
        });
        req.on('continue', () => {
          continued = true;
          req.end('12345');
        });
        req.on('response', (res) => {
          let body = '';
          res.on('data', (c) => (body += c));
          res.on('end', () => resolve({ continued, status: res.statusCode!, body }));
        });
        req.on('error', reject);
      },
    );
    expect(result).toEqual({ continued: true, status: 200, body: 'len=5' });
    expect(upstreamExpect).toBeUndefined();
  });

  it('refuses an oversized body with 413 before the client sends it', async () => {
    up = await startUpstream((_req, res) => res.end('should not be reached'));
    front = await startProxy({ upstreams: [up.url], limits: { max_body_bytes: 100 } });
    const text = await rawRequest(
      front.port,
      'PUT /big HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 1000\r\n\r\n',
    );
    expect(text).toMatch(/^HTTP\/1.1 413/);
    expect(text).not.toMatch(/100 Continue/);
    expect(text).toContain('PRX_ERR_BODY_TOO_LARGE');
  });
});

describe('trailers and informational responses', () => {
  it('forwards response trailers on a chunked response', async () => {
    up = await startUpstream((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain', trailer: 'x-checksum' });
      res.write('data');
      res.addTrailers({ 'x-checksum': 'abc123' });
      res.end();
    });
    front = await startProxy({ upstreams: [up.url] });
    const r = await request(`${front.url}/t`, { headers: { te: 'trailers' } });
    expect(r.body.toString()).toBe('data');
    expect(r.headers.trailer).toBe('x-checksum');
    expect(r.trailers['x-checksum']).toBe('abc123');
  });

  it('forwards 103 Early Hints before the final response', async () => {
    up = await startUpstream((_req, res) => {
      res.writeEarlyHints({ link: '</style.css>; rel=preload; as=style' });
      setTimeout(() => res.end('final'), 20);
    });
    front = await startProxy({ upstreams: [up.url] });
    const text = await rawRequest(front.port, 'GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n');
    expect(text).toMatch(/^HTTP\/1.1 103 Early Hints\r\n/);
    expect(text).toMatch(/link: <\/style.css>; rel=preload; as=style/i);
    expect(text).toMatch(/\r\n\r\nHTTP\/1.1 200 OK\r\n/);
    expect(text.endsWith('final')).toBe(true);
  });
});
