// Header rewriting through the proxy: hop-by-hop fields removed both ways, X-Forwarded-*,
// Via, and the three Host modes.
import type * as http from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import {
  rawRequest,
  request,
  startProxy,
  startUpstream,
  type RunningProxy,
  type Upstream,
} from './helpers.js';

let up: Upstream | null = null;
let front: RunningProxy | null = null;
let seen: http.IncomingHttpHeaders = {};

afterEach(async () => {
  await front?.proxy.close(1000);
  await up?.close();
  front = null;
  up = null;
});

/** Upstream that records the request headers and answers with a few hop-by-hop ones. */
async function echoUpstream(): Promise<Upstream> {
  return startUpstream((req, res) => {
    seen = req.headers;
    res.writeHead(200, {
      'content-type': 'text/plain',
      connection: 'keep-alive, x-hop-res',
      'keep-alive': 'timeout=30',
      'x-hop-res': 'secret',
      'proxy-authenticate': 'Basic',
      'x-end-to-end': 'kept',
      via: '1.1 origin-cache',
    });
    res.end('ok');
  });
}

describe('hop-by-hop headers', () => {
  it('strips Connection-named, Keep-Alive, Proxy-*, TE (but trailers), Upgrade from the request', async () => {
    up = await echoUpstream();
    front = await startProxy({ upstreams: [up.url] });
    const text = await rawRequest(
      front.port,
      'GET /h HTTP/1.1\r\nHost: site.example\r\nConnection: keep-alive, X-Hop-Req\r\nX-Hop-Req: 1\r\n' +
        'Keep-Alive: timeout=5\r\nProxy-Authorization: Basic Zm9v\r\nProxy-Connection: keep-alive\r\nProxy: http://evil\r\n' +
        'TE: trailers, deflate;q=0.5\r\nX-Keep: yes\r\n\r\n',
    );
    expect(text).toMatch(/^HTTP\/1.1 200/);
    expect(seen['x-hop-req']).toBeUndefined();
    expect(seen['keep-alive']).toBeUndefined();
    expect(seen['proxy-authorization']).toBeUndefined();
    expect(seen['proxy-connection']).toBeUndefined();
    expect(seen['proxy']).toBeUndefined();
    expect(seen.te).toBe('trailers');
    expect(seen['x-keep']).toBe('yes');
    expect(seen.host).toBe('site.example');
  });

  it('never forwards a rescuer-fetch marker or a client-sent verified-rescuer header', async () => {
    up = await echoUpstream();
    front = await startProxy({ upstreams: [up.url] });
    const text = await rawRequest(
      front.port,
      'GET /m HTTP/1.1\r\nHost: site.example\r\nX-DotSlash-Rescuer: rescue-b.example 1 forged\r\n' +
        'X-DotSlash-Verified-Rescuer: rescue-b.example\r\nX-Keep: yes\r\n\r\n',
    );
    expect(text).toMatch(/^HTTP\/1.1 200/);
    expect(seen['x-dotslash-rescuer']).toBeUndefined();
    // Only the front writes the verified-rescuer header, after checking a marker.
    expect(seen['x-dotslash-verified-rescuer']).toBeUndefined();
    expect(seen['x-keep']).toBe('yes');
  });

  it('strips hop-by-hop fields from the response and appends our Via', async () => {
    up = await echoUpstream();
    front = await startProxy({ upstreams: [up.url], via: 'edge-1' });
    const r = await request(`${front.url}/`);
    expect(r.status).toBe(200);
    expect(r.headers['x-hop-res']).toBeUndefined();
    expect(r.headers['proxy-authenticate']).toBeUndefined();
    expect(r.headers['keep-alive']).not.toBe('timeout=30');
    expect(r.headers['x-end-to-end']).toBe('kept');
    expect(r.headers.via).toBe('1.1 origin-cache, 1.1 edge-1');
  });
});

describe('X-Forwarded-* and Via', () => {
  it('sets X-Forwarded-For/Proto/Host and Via, replacing what an untrusted client sent', async () => {
    up = await echoUpstream();
    front = await startProxy({ upstreams: [up.url] });
    await request(`${front.url}/`, {
      headers: {
        host: 'www.site.example',
        'x-forwarded-for': '6.6.6.6',
        'x-forwarded-proto': 'https',
        'x-forwarded-host': 'spoofed.example',
        via: '1.0 client-proxy',
      },
    });
    expect(seen['x-forwarded-for']).toBe('127.0.0.1');
    expect(seen['x-forwarded-proto']).toBe('http');
    expect(seen['x-forwarded-host']).toBe('www.site.example');
    expect(seen.via).toBe('1.0 client-proxy, 1.1 dotslash');
  });

  it('extends X-Forwarded-* from a trusted proxy', async () => {
    up = await echoUpstream();
    front = await startProxy({ upstreams: [up.url], trusted_proxies: ['127.0.0.0/8'] });
    await request(`${front.url}/`, {
      headers: {
        host: 'www.site.example',
        'x-forwarded-for': '203.0.113.9',
        'x-forwarded-proto': 'https',
        'x-forwarded-host': 'public.example',
      },
    });
    expect(seen['x-forwarded-for']).toBe('203.0.113.9, 127.0.0.1');
    expect(seen['x-forwarded-proto']).toBe('https');
    expect(seen['x-forwarded-host']).toBe('public.example');
  });
});

describe('Host header modes', () => {
  it('preserve (default) keeps the client Host', async () => {
    up = await echoUpstream();
    front = await startProxy({ upstreams: [up.url] });
    await request(`${front.url}/`, { headers: { host: 'client.example:8080' } });
    expect(seen.host).toBe('client.example:8080');
  });

  it('"upstream" sends the upstream URL host', async () => {
    up = await echoUpstream();
    front = await startProxy({ upstreams: [up.url], host_header: 'upstream' });
    await request(`${front.url}/`, { headers: { host: 'client.example' } });
    expect(seen.host).toBe(`127.0.0.1:${up.port}`);
    expect(seen['x-forwarded-host']).toBe('client.example');
  });

  it('a fixed value is sent as is', async () => {
    up = await echoUpstream();
    front = await startProxy({ upstreams: [up.url], host_header: 'internal.example' });
    await request(`${front.url}/`, { headers: { host: 'client.example' } });
    expect(seen.host).toBe('internal.example');
  });

  it('an HTTP/1.0 request without Host gets the upstream host in preserve mode', async () => {
    up = await echoUpstream();
    front = await startProxy({ upstreams: [up.url] });
    const text = await rawRequest(front.port, 'GET / HTTP/1.0\r\n\r\n');
    expect(text).toMatch(/^HTTP\/1.1 200/);
    expect(seen.host).toBe(`127.0.0.1:${up.port}`);
    expect(seen.via).toBe('1.0 dotslash');
  });
});
