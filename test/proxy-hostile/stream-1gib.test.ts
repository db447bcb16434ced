// 1 GiB streamed through the proxy in each direction, byte-exact (SHA-256 on both ends), while
// the proxy, alone in a child process, stays far below the body size in memory: bodies are
// streamed with backpressure, never buffered whole.
import { createHash, randomBytes } from 'node:crypto';
import * as http from 'node:http';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startChildProxy, startUpstream } from './helpers.js';
import type { ChildProxy, Upstream } from './helpers.js';

const GiB = 1024 ** 3;
const CHUNK = 1024 * 1024;
/** The proxy's RSS may grow by at most this during a transfer (1/5 of the body). */
const RSS_GROWTH_LIMIT = 200 * 1024 * 1024;

// 16 distinct random chunks, sent in a varying order, so a reordered, repeated or dropped
// chunk changes the hash.
const pieces = Array.from({ length: 16 }, () => randomBytes(CHUNK));
const pieceAt = (i: number): Buffer => pieces[(i * 7 + (i >>> 4)) % pieces.length]!;

/** A readable of `total` bytes made of pieceAt(0..), hashing what it emits into `hash`. */
function source(total: number, hash: ReturnType<typeof createHash>): Readable {
  let i = 0;
  return new Readable({
    highWaterMark: 4 * CHUNK,
    read() {
      if (i * CHUNK >= total) return void this.push(null);
      const p = pieceAt(i++);
      hash.update(p);
      this.push(p);
    },
  });
}

let upstream: Upstream;
let front: ChildProxy;
const uploads: Array<{ bytes: number; sha256: string }> = [];
const downloads: Array<{ bytes: number; sha256: string }> = [];

beforeAll(async () => {
  upstream = await startUpstream({
    '/upload': (req, res) => {
      const h = createHash('sha256');
      let bytes = 0;
      req.on('data', (c: Buffer) => {
        bytes += c.length;
        h.update(c);
      });
      req.on('end', () => {
        const r = { bytes, sha256: h.digest('hex') };
        uploads.push(r);
        res.end(JSON.stringify(r));
      });
    },
    '/download': (req, res) => {
      const total = Number(new URL(req.url ?? '/', 'http://x').searchParams.get('bytes'));
      const h = createHash('sha256');
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(total) });
      void pipeline(source(total, h), res)
        .then(() => downloads.push({ bytes: total, sha256: h.digest('hex') }))
        .catch(() => {});
    },
  });
  front = await startChildProxy([upstream.url], {
    limits: { max_body_bytes: 0 },
    timeouts: { client_request_ms: 0, header_ms: 30_000, body_idle_ms: 10_000 },
  });
  // Warm the proxy up (JIT, pools, first-connection buffers) before taking the baseline.
  for (let i = 0; i < 20; i++) {
    await new Promise<void>((resolve, reject) =>
      http
        .get({ host: '127.0.0.1', port: front.port, path: '/download?bytes=65536', agent: false }, (r) =>
          r.resume().on('end', resolve),
        )
        .on('error', reject),
    );
  }
});
afterAll(async () => {
  await front?.close();
  await upstream?.close();
});

interface Growth {
  /** Peak RSS over the settled baseline. */
  rss: number;
  /** Peak Buffer memory over the baseline: a body queued in memory shows here even when RSS was already high. */
  buffers: number;
}

/** Sample the child's memory while `work` runs; returns the peak growth over the settled baseline. */
async function peakGrowthDuring(work: () => Promise<void>): Promise<Growth> {
  const base = await front.gc();
  front.resetMax();
  await work();
  const after = await front.sample();
  const g = { rss: after.maxRss - base.rss, buffers: after.maxArrayBuffers - base.arrayBuffers };
  console.info(
    `proxy memory growth: rss +${(g.rss / 2 ** 20).toFixed(0)} MiB (from ${(base.rss / 2 ** 20).toFixed(0)}), ` +
      `buffers +${(g.buffers / 2 ** 20).toFixed(0)} MiB`,
  );
  return g;
}

describe('1 GiB streamed through the proxy', () => {
  it('upload: client -> proxy -> upstream, byte-exact, bounded proxy memory', async () => {
    const sent = createHash('sha256');
    let reply = '';
    const growth = await peakGrowthDuring(async () => {
      const req = http.request({
        host: '127.0.0.1',
        port: front.port,
        method: 'POST',
        path: '/upload',
        headers: { 'content-length': String(GiB) },
        agent: false,
      });
      const response = new Promise<http.IncomingMessage>((resolve, reject) => {
        req.on('response', resolve);
        req.on('error', reject);
      });
      await pipeline(source(GiB, sent), req);
      const res = await response;
      expect(res.statusCode).toBe(200);
      for await (const c of res) reply += String(c);
    });
    const expected = sent.digest('hex');
    expect(JSON.parse(reply)).toEqual({ bytes: GiB, sha256: expected });
    expect(uploads.at(-1)).toEqual({ bytes: GiB, sha256: expected });
    expect(growth.rss, 'proxy RSS growth').toBeLessThan(RSS_GROWTH_LIMIT);
    expect(growth.buffers, 'proxy Buffer growth').toBeLessThan(RSS_GROWTH_LIMIT);
  }, 120_000);

  it('download: upstream -> proxy -> client, byte-exact, bounded proxy memory', async () => {
    const got = createHash('sha256');
    let bytes = 0;
    const growth = await peakGrowthDuring(async () => {
      const res = await new Promise<http.IncomingMessage>((resolve, reject) =>
        http
          .get({ host: '127.0.0.1', port: front.port, path: `/download?bytes=${GiB}`, agent: false }, resolve)
          .on('error', reject),
      );
      expect(res.statusCode).toBe(200);
      expect(res.headers['content-length']).toBe(String(GiB));
      for await (const c of res as AsyncIterable<Buffer>) {
        bytes += c.length;
        got.update(c);
      }
      expect(res.complete).toBe(true);
    });
    expect(bytes).toBe(GiB);
    expect(downloads.at(-1)).toEqual({ bytes: GiB, sha256: got.digest('hex') });
    expect(growth.rss, 'proxy RSS growth').toBeLessThan(RSS_GROWTH_LIMIT);
    expect(growth.buffers, 'proxy Buffer growth').toBeLessThan(RSS_GROWTH_LIMIT);
  }, 120_000);

  it('download to a client that reads slowly: the proxy applies backpressure instead of buffering', async () => {
    // The client reads nothing for a while: a proxy without backpressure would pull the whole
    // upstream body into memory; with it, only socket buffers fill.
    const total = 512 * CHUNK;
    const growth = await peakGrowthDuring(async () => {
      const res = await new Promise<http.IncomingMessage>((resolve, reject) =>
        http
          .get(
            { host: '127.0.0.1', port: front.port, path: `/download?bytes=${total}`, agent: false },
            resolve,
          )
          .on('error', reject),
      );
      res.pause();
      await new Promise((r) => setTimeout(r, 1_500));
      let n = 0;
      for await (const c of res as AsyncIterable<Buffer>) n += c.length;
      expect(n).toBe(total);
    });
    expect(growth.rss, 'proxy RSS growth').toBeLessThan(RSS_GROWTH_LIMIT / 2);
    expect(growth.buffers, 'proxy Buffer growth').toBeLessThan(RSS_GROWTH_LIMIT / 2);
  }, 60_000);

  it('nothing left in flight afterwards', async () => {
    const s = await front.sample();
    expect(s.active).toBe(0);
  });
});
