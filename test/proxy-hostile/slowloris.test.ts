// Slow clients (slowloris): a head trickled byte by byte, a body trickled, an idle connection,
// each cut off by its timeout while the proxy keeps serving everyone else.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rawExchange, request, startProxy, startUpstream, waitFor } from './helpers.js';
import type { StartedProxy, Upstream } from './helpers.js';

const HEADER_MS = 1_500;
const REQUEST_MS = 2_500;
const KEEPALIVE_MS = 1_000;
/** How late past its timeout a cut-off may come (the timer check runs on an interval). */
const SLACK_MS = 2_000;

let upstream: Upstream;
let front: StartedProxy;

beforeAll(async () => {
  upstream = await startUpstream();
  front = await startProxy([upstream.url], {
    timeouts: {
      client_header_ms: HEADER_MS,
      client_request_ms: REQUEST_MS,
      client_keepalive_ms: KEEPALIVE_MS,
    },
  });
});
afterAll(async () => {
  await front?.close();
  await upstream?.close();
});

/** `text` split into one-byte parts. */
const bytes = (text: string): string[] => [...text];

describe('slowloris', () => {
  it('a head sent 1 byte per second is cut off after client_header_ms (408 or closed)', async () => {
    const before = upstream.seen.length;
    // 60 bytes at 1 byte/s would take a minute; without the guard the socket stays open that long.
    const head = 'GET /slow-head HTTP/1.1\r\nHost: a\r\nX-Slow: ' + 'z'.repeat(20) + '\r\n\r\n';
    const res = await rawExchange(front.port, bytes(head), {
      gapMs: 1_000,
      waitMs: HEADER_MS + SLACK_MS + 1_000,
    });
    expect(res.closed).toBe(true);
    expect(res.elapsedMs).toBeLessThan(HEADER_MS + SLACK_MS);
    if (res.status !== null) expect(res.status).toBe(408);
    expect(upstream.seen.length).toBe(before);
  });

  it('a connection that never sends a byte is closed after client_header_ms', async () => {
    const res = await rawExchange(front.port, [], { waitMs: HEADER_MS + SLACK_MS + 1_000 });
    expect(res.closed).toBe(true);
    expect(res.elapsedMs).toBeLessThan(HEADER_MS + SLACK_MS);
  });

  it('a body trickled byte by byte hits client_request_ms; the upstream request is aborted', async () => {
    const before = upstream.seen.length;
    const head = 'POST /slow-body HTTP/1.1\r\nHost: a\r\nContent-Length: 1000\r\n\r\n';
    const parts = [head, ...Array.from({ length: 1_000 }, () => 'b')];
    const res = await rawExchange(front.port, parts, { gapMs: 200, waitMs: REQUEST_MS + SLACK_MS + 2_000 });
    expect(res.closed).toBe(true);
    expect(res.elapsedMs).toBeLessThan(REQUEST_MS + SLACK_MS);
    if (res.status !== null) expect(res.status).toBe(408);
    const mine = upstream.seen.slice(before);
    expect(await waitFor(() => mine.every((s) => s.closed), 3_000)).toBe(true);
    expect(mine.every((s) => !s.complete)).toBe(true);
  });

  it('an idle keep-alive connection is closed after client_keepalive_ms', async () => {
    const res = await rawExchange(front.port, 'GET /ka HTTP/1.1\r\nHost: a\r\n\r\n', {
      waitMs: KEEPALIVE_MS + SLACK_MS + 1_000,
    });
    expect(res.status).toBe(200);
    expect(res.closed).toBe(true);
    expect(res.elapsedMs).toBeLessThan(KEEPALIVE_MS + SLACK_MS);
  });

  it('serves other clients while 50 slow clients hold connections open', async () => {
    const slow = Array.from({ length: 50 }, (_, i) =>
      rawExchange(
        front.port,
        bytes(`GET /loris-${i} HTTP/1.1\r\nHost: a\r\nX-A: ${'q'.repeat(40)}\r\n\r\n`),
        {
          gapMs: 100,
          waitMs: HEADER_MS + SLACK_MS + 1_000,
        },
      ),
    );
    const served: number[] = [];
    for (let i = 0; i < 20; i++) {
      const r = await request(front.port, { path: `/fast-${i}` });
      served.push(r.status);
    }
    expect(served).toEqual(Array.from({ length: 20 }, () => 200));
    const results = await Promise.all(slow);
    expect(results.every((r) => r.closed && (r.status === null || r.status === 408))).toBe(true);
    expect(upstream.seen.some((s) => s.url.startsWith('/loris-'))).toBe(false);
  });
});
