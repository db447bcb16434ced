// 1000 clients that walk away mid-response or mid-request-body: afterwards the proxy has nothing
// in flight, no client connection open, no upstream request or socket left behind, and its heap
// has not grown (the proxy runs in a child process so its memory is measured alone).
import * as net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startChildProxy, startUpstream, waitFor } from './helpers.js';
import type { ChildProxy, Upstream } from './helpers.js';

const UPSTREAM_KEEPALIVE_MS = 500;
/** Heap the proxy may keep after 1000 aborts, over its post-warm-up baseline (after full GCs). */
const HEAP_GROWTH_LIMIT = 8 * 1024 * 1024;

let upstream: Upstream;
let front: ChildProxy;
/** Upstream responses still streaming (they stop when their request closes). */
let streaming = 0;

beforeAll(async () => {
  upstream = await startUpstream({
    // Streams forever, 16 KiB every 5 ms, until the proxy drops the request.
    '/stream': (req, res) => {
      streaming++;
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      const chunk = Buffer.alloc(16 * 1024, 0x61);
      const timer = setInterval(() => res.write(chunk), 5);
      res.write(chunk);
      res.on('close', () => {
        clearInterval(timer);
        streaming--;
      });
      req.resume();
    },
    // Reads the body (counted by the fixture) and answers only when it is complete.
    '/sink': (req, res) => {
      req.on('end', () => res.end('ok'));
    },
  });
  front = await startChildProxy([upstream.url], {
    connections: 64,
    limits: { max_body_bytes: 0 },
    timeouts: { upstream_keepalive_ms: UPSTREAM_KEEPALIVE_MS, client_request_ms: 0, body_idle_ms: 10_000 },
  });
});
afterAll(async () => {
  await front?.close();
  await upstream?.close();
});

type Kind = 'mid-response' | 'before-response' | 'mid-body';

/** One client that aborts at the point `kind` names. Resolves when its socket is gone. */
function abortingClient(port: number, kind: Kind, id: number): Promise<void> {
  return new Promise((resolve) => {
    const sock = net.connect(port, '127.0.0.1');
    sock.on('error', () => {});
    sock.on('close', () => resolve());
    // Safety net: a client never lingers, whatever the proxy does.
    const cap = setTimeout(() => sock.destroy(), 5_000);
    sock.on('close', () => clearTimeout(cap));
    sock.once('connect', () => {
      if (kind === 'mid-body') {
        sock.write(`POST /sink?${id} HTTP/1.1\r\nHost: a\r\nContent-Length: 1048576\r\n\r\n`);
        sock.write(Buffer.alloc(64 * 1024, 0x62), () => setTimeout(() => sock.destroy(), 5));
        return;
      }
      sock.write(`GET /stream?${id} HTTP/1.1\r\nHost: a\r\n\r\n`);
      if (kind === 'before-response') return void setImmediate(() => sock.destroy());
      let got = 0;
      sock.on('data', (c: Buffer) => {
        got += c.length;
        // Past the head and well into the body.
        if (got > 40_000) sock.destroy();
      });
    });
  });
}

/** Run `total` aborting clients, `concurrency` at a time, kinds mixed 70/15/15. */
async function abortMany(port: number, total: number, concurrency: number, offset: number): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < total) {
      const i = next++;
      const kind: Kind = i % 20 < 14 ? 'mid-response' : i % 20 < 17 ? 'before-response' : 'mid-body';
      await abortingClient(port, kind, offset + i);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
}

/** Wait until the proxy and the upstream have let go of everything. */
async function settled(): Promise<void> {
  const ok = await waitFor(
    async () => {
      const s = await front.sample();
      return (
        s.active === 0 &&
        s.connections === 0 &&
        streaming === 0 &&
        upstream.seen.every((r) => r.closed) &&
        upstream.sockets.size === 0
      );
    },
    UPSTREAM_KEEPALIVE_MS + 8_000,
    100,
  );
  if (!ok) {
    const s = await front.sample();
    const open = upstream.seen.filter((r) => !r.closed).map((r) => r.url);
    throw new Error(
      `not settled: active=${s.active} connections=${s.connections} streaming=${streaming} ` +
        `upstreamSockets=${upstream.sockets.size} openUpstreamRequests=${open.length} (${open.slice(0, 5).join(', ')})`,
    );
  }
}

describe('1000 client aborts', () => {
  it('leave no request, connection, upstream socket or memory behind', async () => {
    // Warm-up round: JIT, pool and buffer allocations happen here, not in the measured round.
    await abortMany(front.port, 200, 50, 0);
    await settled();
    const base = await front.gc();

    const seenBefore = upstream.seen.length;
    await abortMany(front.port, 1_000, 100, 1_000);
    await settled();

    const mine = upstream.seen.slice(seenBefore);
    // Most aborts happened after the request reached the upstream: the test really exercised
    // the upstream-cancel path, and every one of those upstream requests was closed.
    expect(mine.length).toBeGreaterThan(800);
    expect(mine.every((r) => r.closed)).toBe(true);
    expect(mine.filter((r) => r.url.startsWith('/sink')).every((r) => !r.complete)).toBe(true);
    expect(await new Promise<number>((r) => upstream.server.getConnections((_e, n) => r(n)))).toBe(0);

    const after = await front.gc();
    console.info(
      `aborts: proxy heap ${(base.heapUsed / 2 ** 20).toFixed(1)} -> ${(after.heapUsed / 2 ** 20).toFixed(1)} MiB, ` +
        `rss ${(base.rss / 2 ** 20).toFixed(0)} -> ${(after.rss / 2 ** 20).toFixed(0)} MiB, upstream requests ${mine.length}`,
    );
    expect(after.active).toBe(0);
    expect(after.connections).toBe(0);
    expect(
      after.heapUsed - base.heapUsed,
      `proxy heap ${base.heapUsed >> 20} MiB -> ${after.heapUsed >> 20} MiB after 1000 aborts`,
    ).toBeLessThan(HEAP_GROWTH_LIMIT);
  }, 120_000);

  it('the proxy still serves a normal request afterwards', async () => {
    const body = await new Promise<string>((resolve, reject) => {
      const sock = net.connect(front.port, '127.0.0.1');
      let text = '';
      sock.on('data', (c: Buffer) => (text += c.toString('latin1')));
      sock.on('end', () => resolve(text));
      sock.on('error', reject);
      sock.write('POST /sink HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi');
    });
    expect(body.startsWith('HTTP/1.1 200')).toBe(true);
  });
});
