// Fixtures for the cache tests: a real origin server that counts what reaches it, and a
// rescuer server whose handler is PullThroughCache.handle, both on 127.0.0.1 port 0.
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Agent, Pool, request } from 'undici';
import { MemoryStore } from '../../../proxy/cache/memory-store.js';
import {
  PullThroughCache,
  type CacheOrigin,
  type PullThroughOptions,
} from '../../../proxy/cache/pull-through.js';

export interface SeenRequest {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
}

export interface Origin {
  url: string;
  seen: SeenRequest[];
  /** Requests for one path. */
  count(path: string): number;
  handler: http.RequestListener;
  close(): Promise<void>;
}

/** An origin whose behaviour the test sets with `handler` (replaceable mid-test). */
export async function startOrigin(handler: http.RequestListener): Promise<Origin> {
  const seen: SeenRequest[] = [];
  const o = { handler } as Origin;
  const server = http.createServer((req, res) => {
    seen.push({ method: req.method!, url: req.url!, headers: req.headers });
    o.handler(req, res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  o.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  o.seen = seen;
  o.count = (path) => seen.filter((s) => s.url === path).length;
  o.close = () =>
    new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  return o;
}

export interface Rescuer {
  url: string;
  cache: PullThroughCache;
  store: MemoryStore;
  origin: CacheOrigin;
  close(): Promise<void>;
}

export async function startRescuer(
  originUrl: string,
  opts: {
    maxBytes?: number;
    maxEntryBytes?: number;
    cache?: Partial<PullThroughOptions>;
    origin?: Partial<CacheOrigin>;
  } = {},
): Promise<Rescuer> {
  const store = new MemoryStore({ maxBytes: opts.maxBytes ?? 16 << 20, maxEntryBytes: opts.maxEntryBytes });
  const cache = new PullThroughCache({ store, ...opts.cache });
  const pool = new Pool(originUrl, { connections: 16, pipelining: 1 });
  const origin: CacheOrigin = {
    id: 'origin.example',
    fetchBase: new URL(originUrl),
    dispatcher: pool,
    headersForFetch: { 'x-dotslash-rescuer': 'signed-marker' },
    ...opts.origin,
  };
  const server = http.createServer((req, res) => cache.handle(req, res, origin));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    cache,
    store,
    origin,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await pool.destroy();
    },
  };
}

export interface Got {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

const client = new Agent({ connections: 256, pipelining: 1 });

export async function get(
  url: string,
  opts: { method?: 'GET' | 'HEAD' | 'POST'; headers?: Record<string, string>; body?: string } = {},
): Promise<Got> {
  const r = await request(url, {
    method: opts.method ?? 'GET',
    headers: opts.headers,
    body: opts.body,
    dispatcher: client,
  });
  const body = Buffer.from(await r.body.arrayBuffer());
  return { status: r.statusCode, headers: r.headers, body };
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Answer `body` with `headers` (content-length added). */
export function reply(
  res: http.ServerResponse,
  status: number,
  headers: Record<string, string | string[]>,
  body: string | Buffer,
): void {
  const b = typeof body === 'string' ? Buffer.from(body) : body;
  res.writeHead(status, { 'content-length': String(b.length), ...headers });
  res.end(b);
}
