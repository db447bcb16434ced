// The cache's plain relays: an origin answer streamed to the client with backpressure and
// nothing kept, requests the cache must not handle passed to the origin as they are, our own
// error answers, and the X-Cache tallies they share with the cache paths.
import { validateHeaderName, validateHeaderValue } from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type CachePolicy from 'http-cache-semantics';
import type pino from 'pino';
import type { Dispatcher } from 'undici';
import { BodyLimit } from '../body-limit.js';
import { errorBodies, ProxyError, ProxyErrors, type ProxyErrorCode } from '../errors.js';
import { classifyError } from '../exchange.js';
import type { CacheCounters, OriginCacheCounters } from './counters.js';
import { cacheControl, cleanResponseHeaders, type CleanHeaders } from './entry.js';
import { fetchHeaders } from './fetch-headers.js';

/** One origin (rescue session) as the caller knows it; the same object may be passed each time. */
export interface CacheOrigin {
  /** Session / origin id; part of every cache key. */
  readonly id: string;
  /** Where to fetch: the origin's public front from the SOS (a path prefix is kept). */
  readonly fetchBase: URL;
  /** Connection pool to fetchBase (undici Pool or Agent), owned by the caller. */
  readonly dispatcher: Dispatcher;
  /** Added to every origin fetch, overriding client headers of the same name (the signed rescuer-fetch marker). */
  readonly headersForFetch?: Readonly<Record<string, string>>;
  /** Paths (prefix match on the request target) the origin allowed to micro-cache for ttlS seconds. */
  readonly microCache?: { readonly paths: readonly string[]; readonly ttlS: number };
  /** Requests carrying one of these cookies bypass the cache (the redirector's session-cookie list). */
  readonly sessionCookies?: readonly string[];
}

export type XCache = 'HIT' | 'MISS' | 'STALE' | 'BYPASS';

export interface RelayOptions {
  counters: CacheCounters;
  headersTimeout: number;
  bodyTimeout: number;
  logger: pino.Logger | undefined;
  /** proxy.limits.max_body_bytes as it is now (0 = no limit): bounds bodies passed to an origin. */
  maxBodyBytes?: () => number;
}

export class Relay {
  readonly counters: CacheCounters;
  readonly headersTimeout: number;
  readonly bodyTimeout: number;
  private readonly logger: pino.Logger | undefined;
  private readonly maxBodyBytes: () => number;

  constructor(opts: RelayOptions) {
    this.maxBodyBytes = opts.maxBodyBytes ?? (() => 0);
    this.counters = opts.counters;
    this.headersTimeout = opts.headersTimeout;
    this.bodyTimeout = opts.bodyTimeout;
    this.logger = opts.logger;
  }

  count(oc: OriginCacheCounters, xcache: XCache): void {
    const c = this.counters;
    if (xcache === 'HIT') {
      c.hits++;
      oc.hits++;
    } else if (xcache === 'MISS') {
      c.misses++;
      oc.misses++;
    } else if (xcache === 'STALE') {
      c.stale++;
      oc.stale++;
    } else {
      c.bypass++;
      oc.bypass++;
    }
  }

  sendError(res: ServerResponse, code: ProxyErrorCode): void {
    this.counters.errors++;
    if (res.headersSent || res.destroyed) {
      res.destroy();
      return;
    }
    const body = errorBodies[code];
    res.writeHead(ProxyErrors[code].status, [
      'content-type',
      'application/json',
      'content-length',
      String(body.length),
      'cache-control',
      'no-store',
      'x-cache',
      'MISS',
    ]);
    res.end(body);
  }

  writeHead(res: ServerResponse, status: number, clean: CleanHeaders, xcache: XCache): boolean {
    if (res.headersSent || res.destroyed) return false;
    try {
      res.writeHead(status, { ...clean, 'x-cache': xcache });
      return true;
    } catch (err) {
      // A header Node refuses to write (invalid characters): the origin's answer is unusable.
      this.logger?.debug({ err }, 'origin response header rejected');
      this.sendError(res, 'PRX_ERR_UPSTREAM_BAD_RESPONSE');
      return false;
    }
  }

  /** Stream an origin answer to the client with backpressure; nothing is kept. */
  stream(
    r: Dispatcher.ResponseData,
    res: ServerResponse,
    status: number,
    clean: CleanHeaders,
    xcache: XCache,
    isHead: boolean,
    oc: OriginCacheCounters,
  ): void {
    const body = r.body;
    if (!this.writeHead(res, status, clean, xcache) || isHead) {
      body.destroy();
      if (!res.writableEnded && !res.destroyed) res.end();
      return;
    }
    body.on('data', (chunk: Buffer) => {
      this.counters.bytesServed += chunk.length;
      oc.bytesServed += chunk.length;
      if (!res.write(chunk)) {
        body.pause();
        res.once('drain', () => body.resume());
      }
    });
    body.on('end', () => res.end());
    body.on('error', () => {
      this.counters.originErrors++;
      res.destroy();
    });
    res.on('close', () => {
      if (!res.writableFinished) body.destroy();
    });
  }

  /** Not for the cache (other methods, Authorization, session cookies, uncacheable): relay to the origin. */
  pass(req: IncomingMessage, res: ServerResponse, origin: CacheOrigin, oc: OriginCacheCounters): void {
    this.counters.originFetches++;
    oc.originFetches++;
    const headers = fetchHeaders(req, origin.fetchBase.host, origin.headersForFetch, false);
    const h = req.headers;
    const hasBody =
      (h['content-length'] !== undefined && h['content-length'] !== '0') ||
      h['transfer-encoding'] !== undefined;
    if (hasBody && h['content-length'] !== undefined) headers['content-length'] = h['content-length'];
    // A declared length was checked before we got here; a chunked body is counted as it streams.
    const max = this.maxBodyBytes();
    const body = !hasBody
      ? null
      : max > 0 && h['content-length'] === undefined
        ? req.pipe(new BodyLimit(max))
        : req;
    const ac = new AbortController();
    res.once('close', () => {
      if (!res.writableFinished) ac.abort();
    });
    origin.dispatcher
      .request({
        origin: origin.fetchBase.origin,
        path: originPath(origin, req.url!),
        method: req.method as Dispatcher.HttpMethod,
        headers,
        body,
        signal: ac.signal,
        headersTimeout: this.headersTimeout,
        bodyTimeout: this.bodyTimeout,
      })
      .then(
        (r) => {
          this.count(oc, 'BYPASS');
          this.stream(
            r,
            res,
            r.statusCode,
            cleanResponseHeaders(r.headers, false),
            'BYPASS',
            req.method === 'HEAD',
            oc,
          );
        },
        (err: Error) => {
          if (ac.signal.aborted) return;
          // Our own limit on the client's body is not the origin's failure.
          if (!(err instanceof ProxyError && err.code === 'PRX_ERR_BODY_TOO_LARGE'))
            this.counters.originErrors++;
          this.sendError(res, classifyError(err, (err as { code?: string }).code));
        },
      );
  }
}

/** The path to fetch: fetchBase's path prefix (if any) + the request target. */
export function originPath(origin: CacheOrigin, url: string): string {
  const p = origin.fetchBase.pathname;
  return p === '/' || p === '' ? url : p.replace(/\/$/, '') + url;
}

/** An answer meant for one client (RFC 9111 §5.2.2.7 private, §5.2.2.5 no-store, or a cookie). */
export function isPersonal(h: CachePolicy.Headers): boolean {
  if (h['set-cookie'] !== undefined) return true;
  const cc = cacheControl(h['cache-control']);
  return cc.has('private') || cc.has('no-store');
}

export function writableHeaders(h: CleanHeaders): boolean {
  try {
    for (const name in h) {
      validateHeaderName(name);
      validateHeaderValue(name, h[name] as string);
    }
    return true;
  } catch {
    return false;
  }
}

export function pick304(h: CleanHeaders): CleanHeaders {
  const out: CleanHeaders = {};
  for (const k of ['cache-control', 'content-location', 'date', 'etag', 'expires', 'last-modified', 'vary']) {
    if (h[k] !== undefined) out[k] = h[k]!;
  }
  return out;
}
