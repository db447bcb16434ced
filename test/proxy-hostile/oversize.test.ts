// Oversize requests: a head above limits.max_header_bytes gets 431, a body above
// limits.max_body_bytes gets 413, and neither reaches the upstream whole.
import * as http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TEST_LIMITS, bodyOf, rawExchange, sleep, startProxy, startUpstream, waitFor } from './helpers.js';
import type { StartedProxy, Upstream } from './helpers.js';

const MAX_BODY = TEST_LIMITS.max_body_bytes; // 1 MiB
const MAX_HEAD = TEST_LIMITS.max_header_bytes; // 8 KiB

let upstream: Upstream;
let front: StartedProxy;

beforeAll(async () => {
  upstream = await startUpstream();
  front = await startProxy([upstream.url]);
});
afterAll(async () => {
  await front?.close();
  await upstream?.close();
});

describe('oversize request head', () => {
  it('control: a head just under the limit is forwarded', async () => {
    const pad = 'x'.repeat(MAX_HEAD - 1_024);
    const res = await rawExchange(
      front.port,
      `GET /near HTTP/1.1\r\nHost: a\r\nX-Pad: ${pad}\r\nConnection: close\r\n\r\n`,
    );
    expect(res.status, res.text.slice(0, 200)).toBe(200);
    expect(upstream.seen.at(-1)?.headers['x-pad']).toBe(pad);
  });

  it('one huge header -> 431 and closed, upstream sees nothing', async () => {
    const before = upstream.seen.length;
    const res = await rawExchange(
      front.port,
      `GET /big HTTP/1.1\r\nHost: a\r\nX-Pad: ${'x'.repeat(MAX_HEAD + 100)}\r\n\r\n`,
    );
    expect(res.status, res.text.slice(0, 200)).toBe(431);
    expect(bodyOf(res.text)).toContain('PRX_ERR_HEADERS_TOO_LARGE');
    expect(res.closed).toBe(true);
    expect(upstream.seen.length).toBe(before);
  });

  it('many small headers adding up past the limit -> 431', async () => {
    const before = upstream.seen.length;
    const headers = Array.from({ length: 2_000 }, (_, i) => `X-H${i}: v\r\n`).join('');
    const res = await rawExchange(front.port, `GET /many HTTP/1.1\r\nHost: a\r\n${headers}\r\n`);
    expect(res.status).toBe(431);
    expect(res.closed).toBe(true);
    expect(upstream.seen.length).toBe(before);
  });

  it('a request line longer than the limit -> 431 (or 414)', async () => {
    const before = upstream.seen.length;
    const res = await rawExchange(
      front.port,
      `GET /${'a'.repeat(MAX_HEAD + 100)} HTTP/1.1\r\nHost: a\r\n\r\n`,
    );
    expect([414, 431]).toContain(res.status);
    expect(res.closed).toBe(true);
    expect(upstream.seen.length).toBe(before);
  });

  it('more header fields than Node keeps (2000) cannot make framing headers vanish', async () => {
    // Node's server.maxHeadersCount truncates req.rawHeaders at 2000 while its parser still
    // frames the body by the headers past that: a proxy reading rawHeaders would then forward
    // the request without its body (and without any later header). Refuse or forward whole.
    const p = await startProxy([upstream.url], { limits: { max_header_bytes: 16_384 } });
    try {
      const junk = 'a:\r\n'.repeat(2_100);
      for (const [framing, body] of [
        ['Content-Length: 5', 'hello'],
        ['Transfer-Encoding: chunked', '5\r\nhello\r\n0\r\n\r\n'],
      ] as const) {
        const before = upstream.seen.length;
        const res = await rawExchange(
          p.port,
          `POST /many-fields HTTP/1.1\r\nHost: a\r\n${junk}${framing}\r\nX-Last: kept\r\nConnection: close\r\n\r\n${body}`,
        );
        expect([200, 431], res.text.slice(0, 200)).toContain(res.status);
        if (res.status === 200) {
          expect(upstream.seen.slice(before)).toMatchObject([
            { url: '/many-fields', bodyBytes: 5, complete: true },
          ]);
          expect(upstream.seen.at(-1)!.headers['x-last']).toBe('kept');
        } else {
          expect(upstream.seen.length).toBe(before);
        }
      }
    } finally {
      await p.close();
    }
  });

  it('a head that never ends (sent in pieces) -> 431, not unbounded buffering', async () => {
    const piece = `X-P: ${'y'.repeat(1_000)}\r\n`;
    const parts = ['GET / HTTP/1.1\r\nHost: a\r\n', ...Array.from({ length: 40 }, () => piece)];
    const res = await rawExchange(front.port, parts, { gapMs: 5 });
    expect(res.status).toBe(431);
    expect(res.closed).toBe(true);
  });
});

describe('oversize request body', () => {
  it('control: a body of exactly max_body_bytes is forwarded whole', async () => {
    const body = Buffer.alloc(MAX_BODY, 7);
    const res = await rawExchange(
      front.port,
      [`POST /exact HTTP/1.1\r\nHost: a\r\nContent-Length: ${MAX_BODY}\r\nConnection: close\r\n\r\n`, body],
      { waitMs: 5_000 },
    );
    expect(res.status).toBe(200);
    expect(upstream.seen.at(-1)).toMatchObject({ url: '/exact', bodyBytes: MAX_BODY, complete: true });
  });

  it('Content-Length above the limit -> 413 at once, before any body is sent, upstream sees nothing', async () => {
    const before = upstream.seen.length;
    // Only the head: a proxy that waited for the body (or forwarded it) would not answer.
    const res = await rawExchange(
      front.port,
      `POST /too-big HTTP/1.1\r\nHost: a\r\nContent-Length: ${MAX_BODY + 1}\r\n\r\n`,
      { waitMs: 2_000 },
    );
    expect(res.status).toBe(413);
    expect(bodyOf(res.text)).toContain('PRX_ERR_BODY_TOO_LARGE');
    expect(upstream.seen.length).toBe(before);
  });

  it('Content-Length above the limit with the body streaming in -> 413, upstream receives none of it', async () => {
    const before = upstream.seen.length;
    const res = await new Promise<{ status: number; error?: string }>((resolve) => {
      const req = http.request(
        {
          host: '127.0.0.1',
          port: front.port,
          method: 'PUT',
          path: '/too-big-streamed',
          headers: { 'content-length': String(4 * MAX_BODY) },
          agent: false,
        },
        (r) => {
          r.resume();
          r.on('end', () => resolve({ status: r.statusCode ?? 0 }));
          r.on('error', () => resolve({ status: r.statusCode ?? 0 }));
        },
      );
      // The proxy may close before we finish writing; EPIPE/ECONNRESET then is fine.
      req.on('error', (e) => resolve({ status: 0, error: e.message }));
      const chunk = Buffer.alloc(64 * 1024, 1);
      let sent = 0;
      const pump = (): void => {
        while (sent < 4 * MAX_BODY) {
          sent += chunk.length;
          if (!req.write(chunk)) return void req.once('drain', pump);
        }
        req.end();
      };
      pump();
    });
    // A 413 must be seen unless the socket was reset first; either way nothing reached the upstream.
    if (res.error === undefined) expect(res.status).toBe(413);
    await sleep(100);
    expect(upstream.seen.length).toBe(before);
  });

  it('Expect: 100-continue with an oversize Content-Length -> final 413, body never requested', async () => {
    const before = upstream.seen.length;
    const res = await rawExchange(
      front.port,
      `POST /expect HTTP/1.1\r\nHost: a\r\nContent-Length: ${MAX_BODY * 10}\r\nExpect: 100-continue\r\n\r\n`,
      { waitMs: 2_000 },
    );
    expect(res.statuses.filter((s) => s !== 100)).toEqual([413]);
    expect(upstream.seen.length).toBe(before);
  });

  it('chunked body growing past the limit -> 413 or closed, and the upstream request is aborted', async () => {
    const before = upstream.seen.length;
    const chunk = Buffer.alloc(64 * 1024, 2);
    const framed = Buffer.concat([
      Buffer.from(`${chunk.length.toString(16)}\r\n`),
      chunk,
      Buffer.from('\r\n'),
    ]);
    const parts: Array<string | Buffer> = [
      'POST /chunked-big HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n',
      ...Array.from({ length: (3 * MAX_BODY) / chunk.length }, () => framed),
      '0\r\n\r\n',
    ];
    const res = await rawExchange(front.port, parts, { gapMs: 2, waitMs: 5_000 });
    expect(res.closed).toBe(true);
    if (res.status !== null) expect(res.status).toBe(413);
    // Whatever was forwarded never completed, never exceeded the limit, and is closed.
    const mine = upstream.seen.slice(before);
    expect(await waitFor(() => mine.every((s) => s.closed), 3_000)).toBe(true);
    for (const s of mine) {
      expect(s.complete).toBe(false);
      expect(s.bodyBytes).toBeLessThanOrEqual(MAX_BODY);
    }
  });

  it('the proxy keeps serving after the oversize attempts', async () => {
    const res = await rawExchange(front.port, 'GET /after HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n');
    expect(res.status).toBe(200);
  });
});
