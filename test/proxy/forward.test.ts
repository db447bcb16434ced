// Forwarding through FrontProxy: method, path, query, body and status reach the upstream and
// come back intact; stats count each finished request.
import { afterEach, describe, expect, it } from 'vitest';
import { readBody, request, startProxy, startUpstream, type RunningProxy, type Upstream } from './helpers.js';

let up: Upstream | null = null;
let front: RunningProxy | null = null;

afterEach(async () => {
  await front?.proxy.close(1000);
  await up?.close();
  front = null;
  up = null;
});

describe('forwarding', () => {
  it('carries method, path, query and body to the upstream and the response back', async () => {
    up = await startUpstream(async (req, res) => {
      const body = await readBody(req);
      res.writeHead(201, { 'content-type': 'application/json', 'x-upstream': 'yes' });
      res.end(JSON.stringify({ method: req.method, url: req.url, body: body.toString() }));
    });
    front = await startProxy({ upstreams: [up.url] });
    const r = await request(`${front.url}/a/b?x=1&y=%20z`, {
      method: 'POST',
      headers: { 'content-type': 'text/plain' },
      body: 'hello upstream',
    });
    expect(r.status).toBe(201);
    expect(r.headers['x-upstream']).toBe('yes');
    expect(JSON.parse(r.body.toString())).toEqual({
      method: 'POST',
      url: '/a/b?x=1&y=%20z',
      body: 'hello upstream',
    });
    const s = front.proxy.stats.snapshot();
    expect(s.requests).toBe(1);
    expect(s.status['2xx']).toBe(1);
    expect(s.active).toBe(0);
    expect(s.bytesIn).toBeGreaterThan(14);
    expect(s.bytesOut).toBeGreaterThan(r.body.length);
  });

  it.each(['GET', 'PUT', 'DELETE', 'PATCH', 'OPTIONS'])('forwards %s', async (method) => {
    up = await startUpstream(async (req, res) => {
      const body = await readBody(req);
      res.end(`${req.method} ${body.length}`);
    });
    front = await startProxy({ upstreams: [up.url] });
    // An explicit Content-Length: Node's client sends DELETE/OPTIONS bodies without any framing.
    const body = method === 'GET' ? null : 'abc';
    const headers = body ? { 'content-length': '3' } : {};
    const r = await request(`${front.url}/m`, { method, headers, body });
    expect(r.status).toBe(200);
    expect(r.body.toString()).toBe(`${method} ${method === 'GET' ? 0 : 3}`);
  });
});
