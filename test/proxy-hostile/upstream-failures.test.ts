// Upstream failures as the client sees them: down -> 502, slow -> 504, each with a PRX_ERR code in
// the body; an upstream dying mid-body aborts the client connection instead of ending it cleanly.
import * as http from 'node:http';
import * as net from 'node:net';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deadUpstreamUrl, rawExchange, request, startProxy, startUpstream, waitFor } from './helpers.js';
import type { StartedProxy, Upstream } from './helpers.js';

const HEADER_MS = 500;
const BODY_IDLE_MS = 500;

let upstream: Upstream;
let front: StartedProxy;
const stalled: http.ServerResponse[] = [];

beforeAll(async () => {
  upstream = await startUpstream({
    // Never answers (until the test ends).
    '/slow': (_req, res) => void stalled.push(res),
    // Promises 100000 bytes, sends half, then the upstream process "dies".
    '/cut-length': (req, res) => {
      res.writeHead(200, { 'content-length': '100000' });
      res.write(Buffer.alloc(50_000, 1), () => setTimeout(() => req.socket.destroy(), 50));
    },
    // Chunked, sends some chunks, then dies without the last-chunk.
    '/cut-chunked': (req, res) => {
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      res.write(Buffer.alloc(10_000, 1));
      res.write(Buffer.alloc(10_000, 2), () => setTimeout(() => req.socket.destroy(), 50));
    },
    // Sends a little, then goes silent past body_idle_ms.
    '/stall-body': (_req, res) => {
      res.writeHead(200, { 'content-length': '100000' });
      res.write(Buffer.alloc(1_000, 1));
      stalled.push(res);
    },
    // Accepts the request, then resets the connection before any response.
    '/reset': (req) => req.socket.destroy(),
  });
  front = await startProxy([upstream.url], {
    timeouts: { header_ms: HEADER_MS, body_idle_ms: BODY_IDLE_MS },
  });
});
afterAll(async () => {
  for (const r of stalled) r.destroy();
  await front?.close();
  await upstream?.close();
});

interface ClientOutcome {
  status: number;
  bytes: number;
  /** The body ended normally ('end' with res.complete). */
  complete: boolean;
  /** The response was cut: 'aborted'/'error' on the response or request. */
  aborted: boolean;
}

/** GET through the proxy and watch how the response body ends. */
function fetchOutcome(port: number, path: string): Promise<ClientOutcome> {
  return new Promise((resolve) => {
    const out: ClientOutcome = { status: 0, bytes: 0, complete: false, aborted: false };
    let settled = false;
    const settle = (): void => {
      if (settled) return;
      settled = true;
      resolve(out);
    };
    const req = http.get({ host: '127.0.0.1', port, path, agent: false }, (res) => {
      out.status = res.statusCode ?? 0;
      res.on('data', (c: Buffer) => (out.bytes += c.length));
      res.on('end', () => ((out.complete = res.complete), settle()));
      res.on('aborted', () => ((out.aborted = true), settle()));
      res.on('error', () => ((out.aborted = true), settle()));
      res.on('close', () => {
        if (!res.complete) out.aborted = true;
        settle();
      });
    });
    req.on('error', () => ((out.aborted = true), settle()));
  });
}

describe('upstream failures', () => {
  it('upstream down -> 502 with PRX_ERR_UPSTREAM_CONNECT in the body', async () => {
    const dead = await startProxy([await deadUpstreamUrl()]);
    try {
      const res = await request(dead.port, { path: '/x' });
      expect(res.status).toBe(502);
      expect(JSON.parse(res.body)).toMatchObject({ error: { code: 'PRX_ERR_UPSTREAM_CONNECT' } });
      expect(dead.proxy.stats.upstreamErrors).toBeGreaterThan(0);
    } finally {
      await dead.close();
    }
  });

  it('upstream never answers -> 504 with PRX_ERR_UPSTREAM_HEADERS_TIMEOUT; the upstream request is closed', async () => {
    const before = upstream.seen.length;
    const res = await request(front.port, { path: '/slow' });
    expect(res.status).toBe(504);
    expect(JSON.parse(res.body)).toMatchObject({ error: { code: 'PRX_ERR_UPSTREAM_HEADERS_TIMEOUT' } });
    const mine = upstream.seen.slice(before);
    expect(mine.length).toBeGreaterThanOrEqual(1);
    expect(await waitFor(() => mine.every((s) => s.closed), 3_000)).toBe(true);
  });

  it('upstream resets before responding -> 502 with a PRX_ERR code', async () => {
    const res = await request(front.port, { method: 'POST', path: '/reset', body: 'x' });
    expect(res.status).toBe(502);
    expect(JSON.parse(res.body).error.code).toMatch(/^PRX_ERR_UPSTREAM_/);
  });

  it('upstream sending garbage instead of HTTP -> 502 PRX_ERR_UPSTREAM_BAD_RESPONSE', async () => {
    const garbage = net.createServer((s) => {
      s.on('error', () => {});
      s.once('data', () => s.end('SSH-2.0-OpenSSH_9.6\r\nnot http at all\r\n\r\n'));
    });
    await new Promise<void>((r) => garbage.listen(0, '127.0.0.1', r));
    const bad = await startProxy([`http://127.0.0.1:${(garbage.address() as AddressInfo).port}`]);
    try {
      const res = await request(bad.port, { path: '/' });
      expect(res.status).toBe(502);
      expect(JSON.parse(res.body).error.code).toMatch(/^PRX_ERR_UPSTREAM_/);
    } finally {
      await bad.close();
      await new Promise<void>((r) => garbage.close(() => r()));
    }
  });

  it('upstream dies mid-body (Content-Length) -> client sees an aborted response, not a complete one', async () => {
    const out = await fetchOutcome(front.port, '/cut-length');
    expect(out.status).toBe(200);
    expect(out.complete).toBe(false);
    expect(out.aborted).toBe(true);
    expect(out.bytes).toBeLessThan(100_000);
  });

  it('upstream dies mid-body (chunked) -> no terminating chunk, connection closed', async () => {
    const raw = await rawExchange(front.port, 'GET /cut-chunked HTTP/1.1\r\nHost: a\r\n\r\n', {
      waitMs: 3_000,
    });
    expect(raw.status).toBe(200);
    expect(raw.closed).toBe(true);
    expect(raw.text.endsWith('0\r\n\r\n')).toBe(false);
    const out = await fetchOutcome(front.port, '/cut-chunked');
    expect(out.complete).toBe(false);
    expect(out.aborted).toBe(true);
  });

  it('upstream goes silent mid-body -> client aborted after body_idle_ms, upstream request closed', async () => {
    const before = upstream.seen.length;
    const out = await fetchOutcome(front.port, '/stall-body');
    expect(out.status).toBe(200);
    expect(out.complete).toBe(false);
    expect(out.aborted).toBe(true);
    const mine = upstream.seen.slice(before);
    expect(await waitFor(() => mine.every((s) => s.closed), 3_000)).toBe(true);
  });

  it('after all failures: nothing in flight, the proxy still serves', async () => {
    expect(await waitFor(() => front.proxy.stats.active === 0, 3_000)).toBe(true);
    const res = await request(front.port, { path: '/fine' });
    expect(res.status).toBe(200);
  });
});
