// Floods: one connection pipelining many requests cannot occupy the upstream pool (they are
// forwarded one at a time), a connection flood over max_connections is refused with 503 while
// admitted clients are served, and a pipeline of 1000 requests is answered in order.
import type * as http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rawExchange, request, startProxy, startUpstream, waitFor } from './helpers.js';
import type { Upstream } from './helpers.js';

let upstream: Upstream;
/** Responses of '/hold' requests, answered when a test releases them. */
const held: http.ServerResponse[] = [];
let inFlight = 0;
let maxInFlight = 0;

beforeAll(async () => {
  upstream = await startUpstream({
    '/hold': (_req, res) => void held.push(res),
    // Answers after 30 ms and records how many requests it is working on at once.
    '/slow': (_req, res) => {
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      setTimeout(() => {
        inFlight--;
        res.end('done');
      }, 30);
    },
  });
});
afterAll(async () => {
  await upstream?.close();
});

function pipeline(n: number, path: (i: number) => string): string {
  let out = '';
  for (let i = 0; i < n; i++) {
    out += `GET ${path(i)} HTTP/1.1\r\nHost: a\r\n${i === n - 1 ? 'Connection: close\r\n' : ''}\r\n`;
  }
  return out;
}

describe('floods', () => {
  it('a pipelining client gets one upstream request at a time, answered in order', async () => {
    const front = await startProxy([upstream.url], { limits: { max_connections: 1 } });
    try {
      maxInFlight = 0;
      const before = upstream.seen.length;
      const res = await rawExchange(
        front.port,
        pipeline(30, (i) => `/slow?${i}`),
        { waitMs: 10_000 },
      );
      expect(res.statuses).toEqual(Array.from({ length: 30 }, () => 200));
      expect(res.closed).toBe(true);
      // Without serialisation all 30 would be upstream at once (Node emits them together).
      expect(maxInFlight).toBe(1);
      expect(upstream.seen.slice(before).map((s) => s.url)).toEqual(
        Array.from({ length: 30 }, (_, i) => `/slow?${i}`),
      );
    } finally {
      await front.close();
    }
  });

  it('1000 pipelined requests in one write are all answered, in order, and nothing is left in flight', async () => {
    const front = await startProxy([upstream.url]);
    try {
      const res = await rawExchange(
        front.port,
        pipeline(1_000, (i) => `/p?${i}`),
        { waitMs: 20_000 },
      );
      expect(res.statuses.length).toBe(1_000);
      expect(res.statuses.every((s) => s === 200)).toBe(true);
      const urls = [...res.text.matchAll(/"url":"\/p\?(\d+)"/g)].map((m) => Number(m[1]));
      expect(urls).toEqual(Array.from({ length: 1_000 }, (_, i) => i));
      expect(await waitFor(() => front.proxy.stats.active === 0, 3_000)).toBe(true);
    } finally {
      await front.close();
    }
  }, 60_000);

  it('a connection flood over max_connections: the excess gets 503 and is closed, admitted ones are served', async () => {
    const MAX = 20;
    const front = await startProxy([upstream.url], { limits: { max_connections: MAX } });
    try {
      // Fill every slot with a request the upstream holds, so the flood meets a full house.
      const seenBefore = upstream.seen.length;
      const admitted = Array.from({ length: MAX }, (_, i) =>
        rawExchange(front.port, `GET /hold?${i} HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n`, {
          waitMs: 20_000,
        }),
      );
      expect(await waitFor(() => upstream.seen.length - seenBefore === MAX, 10_000)).toBe(true);
      const flood = await Promise.all(
        Array.from({ length: 100 }, (_, i) =>
          rawExchange(front.port, `GET /flood?${i} HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n`, {
            waitMs: 10_000,
          }),
        ),
      );
      const odd = flood.filter((r) => r.status !== 503 || !r.closed);
      expect(odd.map((r) => `${r.status} closed=${r.closed} ${r.text.slice(0, 60)}`).slice(0, 5)).toEqual([]);
      expect(flood.every((r) => r.text.includes('PRX_ERR_TOO_MANY_CONNECTIONS'))).toBe(true);
      expect(upstream.seen.some((s) => s.url.startsWith('/flood'))).toBe(false);
      // The admitted clients are answered once the upstream lets go.
      for (const r of held.splice(0)) r.end('released');
      const results = await Promise.all(admitted);
      expect(results.map((r) => r.status)).toEqual(Array.from({ length: MAX }, () => 200));
      expect(await waitFor(() => front.proxy.stats.connections === 0, 3_000)).toBe(true);
      // Once the flood is over, the proxy takes new clients again.
      expect((await request(front.port, { path: '/after-flood' })).status).toBe(200);
    } finally {
      for (const r of held.splice(0)) r.destroy();
      await front.close();
    }
  });
});
