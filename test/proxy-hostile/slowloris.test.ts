// Slow clients (slowloris): a head trickled byte by byte, a body trickled, an idle connection,
// each cut off by its timeout while the proxy keeps serving everyone else.
import * as net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rawExchange, request, sleep, startProxy, startUpstream, waitFor } from './helpers.js';
import type { StartedProxy, Upstream } from './helpers.js';

const HEADER_MS = 1_500;
const REQUEST_MS = 2_500;
const KEEPALIVE_MS = 1_000;
const BODY_IDLE_MS = 1_000;
/** How late past its timeout a cut-off may come (the timer check runs on an interval). */
const SLACK_MS = 3_000;

let upstream: Upstream;
let front: StartedProxy;

beforeAll(async () => {
  upstream = await startUpstream({
    // 256 MiB, written as fast as the proxy takes it (with backpressure).
    '/big': (_req, res) => {
      const chunk = Buffer.alloc(64 * 1024, 0x62);
      let left = 4_096;
      res.writeHead(200, { 'content-length': String(left * chunk.length) });
      const pump = (): void => {
        while (left > 0) {
          left--;
          if (!res.write(chunk)) return void res.once('drain', pump);
        }
        res.end();
      };
      pump();
    },
  });
  front = await startProxy([upstream.url], {
    timeouts: {
      client_header_ms: HEADER_MS,
      client_request_ms: REQUEST_MS,
      client_keepalive_ms: KEEPALIVE_MS,
      body_idle_ms: BODY_IDLE_MS,
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

  it('slow read: a client that stops reading a download is cut, and its upstream request freed', async () => {
    // Without a send-side timeout such clients pin an upstream connection each, forever:
    // a few hundred of them exhaust the upstream pool (the reverse slowloris).
    const before = upstream.seen.length;
    const sock = net.connect(front.port, '127.0.0.1');
    sock.on('error', () => {});
    sock.write('GET /big HTTP/1.1\r\nHost: a\r\n\r\n');
    sock.pause(); // read nothing (a paused reader also never sees the FIN, so watch the far sides)
    expect(await waitFor(() => upstream.seen.length > before, 2_000)).toBe(true);
    const mine = upstream.seen.slice(before);
    expect(mine.map((s) => s.url)).toEqual(['/big']);
    const freed = await waitFor(() => mine[0]!.closed, BODY_IDLE_MS + SLACK_MS + 1_000);
    expect(freed, 'upstream request still held for a client that reads nothing').toBe(true);
    expect(mine[0]!.aborted).toBe(true);
    expect(await waitFor(() => front.proxy.stats.active === 0, 2_000)).toBe(true);
    // Reading now shows a cut response: the connection ends before the 256 MiB body does.
    let got = 0;
    const ended = new Promise<void>((r) => sock.once('close', () => r()));
    sock.on('data', (c: Buffer) => (got += c.length));
    sock.resume();
    await Promise.race([ended, sleep(5_000)]);
    expect(sock.destroyed || sock.readableEnded).toBe(true);
    expect(got).toBeLessThan(4_096 * 64 * 1024);
    sock.destroy();
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
