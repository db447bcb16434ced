// The rescuer's pull-through cache (issue 3, item 5): answers a session's GET/HEAD requests
// from memory under RFC 9111 shared-cache rules and fetches each missing or stale URL from the
// origin once, however many clients ask at the same time.
import type { IncomingMessage, ServerResponse } from 'node:http';
import CachePolicy from 'http-cache-semantics';
import type pino from 'pino';
import type { Dispatcher } from 'undici';
import { classifyError } from '../exchange.js';
import type { ProxyErrorCode } from '../errors.js';
import { CacheCounters, newOriginCounters, type OriginCacheCounters } from './counters.js';
import {
  buildEntry,
  cleanResponseHeaders,
  decideStore,
  entryAge,
  headerString,
  headWith,
  notModified,
  notModifiedHead,
  varyFields,
  type CleanHeaders,
} from './entry.js';
import { fetchHeaders, hasCookie, STRIPPED_FOR_SHARED } from './fetch-headers.js';
import {
  isPersonal,
  originPath,
  pick304,
  Relay,
  writableHeaders,
  type CacheOrigin,
  type XCache,
} from './relay.js';
import { cacheKey, variantKey, type CacheEntry, type CacheStore } from './store.js';

export type { CacheOrigin, XCache } from './relay.js';

export interface PullThroughOptions {
  store: CacheStore;
  /** How long past freshness a stale entry may answer while the origin is unreachable (RFC 9111 §4.2.4). Default 60. */
  staleOnDisconnectS?: number;
  headersTimeoutMs?: number;
  bodyTimeoutMs?: number;
  /** After a URL's response proved uncacheable, skip coalescing for it this long. Default 10 s. */
  uncacheableMemoryMs?: number;
  logger?: pino.Logger;
  /** proxy.limits.max_body_bytes as it is now (0 = no limit), for bodies passed to an origin. */
  maxBodyBytes?: () => number;
}

/** What a coalesced origin fetch ended in, for the requests that waited on it. */
type Outcome =
  | { kind: 'entry'; entry: CacheEntry; xcache: XCache }
  | { kind: 'pass' } // personal or too big: each waiter fetches for itself (see handle())
  | { kind: 'replay'; status: number; headers: CleanHeaders; body: Buffer; vary: string[] | null }
  | { kind: 'error'; code: ProxyErrorCode };

interface Flight {
  readonly promise: Promise<Outcome>;
  settle: (o: Outcome) => void;
}

/** Per-origin runtime state; dropped with dropOrigin(). */
interface OriginState {
  readonly prefix: string;
  readonly counters: OriginCacheCounters;
  /** Bumped by purge(): a fetch that started before it does not store its answer. */
  gen: number;
  /** URL key -> Vary field names of its last stored response. */
  readonly vary: Map<string, readonly string[]>;
  /** URL key -> epoch ms until which it is known uncacheable. */
  readonly uncacheable: Map<string, number>;
}

/** Per-request facts the miss path needs (slow path only; hits never build one). */
interface Ask {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly origin: CacheOrigin;
  readonly st: OriginState;
  readonly base: string;
  readonly isHead: boolean;
  readonly inm: string | undefined;
  readonly ims: string | undefined;
  attempt: number;
}

const MAP_BOUND = 100_000;

export class PullThroughCache {
  readonly counters = new CacheCounters();
  readonly store: CacheStore;
  private readonly relay: Relay;
  private readonly origins = new Map<string, OriginState>();
  private readonly flights = new Map<string, Flight>();
  private readonly staleOnDisconnectS: number;
  private readonly headersTimeout: number;
  private readonly bodyTimeout: number;
  private readonly uncacheableMs: number;
  private readonly logger: pino.Logger | undefined;

  constructor(opts: PullThroughOptions) {
    this.store = opts.store;
    this.staleOnDisconnectS = opts.staleOnDisconnectS ?? 60;
    this.headersTimeout = opts.headersTimeoutMs ?? 30_000;
    this.bodyTimeout = opts.bodyTimeoutMs ?? 30_000;
    this.uncacheableMs = opts.uncacheableMemoryMs ?? 10_000;
    this.logger = opts.logger;
    this.relay = new Relay({
      counters: this.counters,
      headersTimeout: this.headersTimeout,
      bodyTimeout: this.bodyTimeout,
      logger: this.logger,
      ...(opts.maxBodyBytes !== undefined && { maxBodyBytes: opts.maxBodyBytes }),
    });
  }

  /**
   * Answer one client request for `origin`. Never throws; every outcome is a response
   * (origin failures: 502/504 with a PRX_ERR_* JSON body). X-Cache says HIT, MISS (fetched
   * and stored), STALE (stale entry for a failed origin) or BYPASS (not from or into cache).
   *
   * Coalescing: concurrent misses for one key wait on the first one's fetch. If that answer
   * is stored they are all served from it. If it may not be stored but is not personal
   * (no Set-Cookie, private or no-store: e.g. a 503 from an overloaded origin, or a page
   * without freshness) and fits the entry cap, the waiters get a replay of it (X-Cache
   * BYPASS): shared fetches carry no credentials, so it is what each of them would have got,
   * and an origin in trouble sees one request instead of one per waiter. A personal answer
   * (replaying it could hand one client's cookie to others) or a too-big one sends each
   * waiter to make its own fetch, and personal URLs skip coalescing for a while.
   */
  handle(req: IncomingMessage, res: ServerResponse, origin: CacheOrigin): void {
    const st = this.origins.get(origin.id) ?? this.newOrigin(origin.id);
    st.counters.requests++;
    this.counters.requests++;
    const method = req.method;
    const isHead = method === 'HEAD';
    // Origin-form targets only: the fetch goes to fetchBase whatever the target says, but an
    // absolute-form target would make a nonsense path (and a cache key per spelling).
    if (req.url!.charCodeAt(0) !== 0x2f) return this.relay.sendError(res, 'PRX_ERR_BAD_REQUEST');
    if (!isHead && method !== 'GET') return this.relay.pass(req, res, origin, st.counters);
    // One pass over the raw headers (no headers object) for the few that change the path;
    // switching on the name's length keeps ordinary headers to one integer compare.
    let auth = false;
    let range = false;
    let cookie: string | undefined;
    let inm: string | undefined;
    let ims: string | undefined;
    const raw = req.rawHeaders;
    for (let i = 0; i < raw.length; i += 2) {
      const n = raw[i]!;
      switch (n.length) {
        case 5:
          if (n.toLowerCase() === 'range') range = true;
          break;
        case 6:
          if (n.toLowerCase() === 'cookie')
            cookie = cookie === undefined ? raw[i + 1] : `${cookie}; ${raw[i + 1]}`;
          break;
        case 13: {
          const l = n.toLowerCase();
          if (l === 'authorization') auth = true;
          else if (l === 'if-none-match') inm = raw[i + 1];
          break;
        }
        case 17:
          if (n.toLowerCase() === 'if-modified-since') ims = raw[i + 1];
          break;
      }
    }
    // RFC 9111 §3.5: never store answers to Authorization; we do not serve them from cache either.
    if (auth) return this.relay.pass(req, res, origin, st.counters);
    const sc = origin.sessionCookies;
    if (cookie !== undefined && sc !== undefined && sc.length > 0 && hasCookie(cookie, sc)) {
      return this.relay.pass(req, res, origin, st.counters);
    }
    const base = st.prefix + req.url!;
    const fields = st.vary.size === 0 ? undefined : st.vary.get(base);
    const key = fields === undefined ? base : variantKey(base, varyValues(req, fields));
    const e = this.store.get(key);
    const now = Date.now();
    if (e !== undefined && now < e.freshUntil) {
      // Fast path. A Range request gets the whole 200 (RFC 9110 §14.2 lets us ignore Range).
      this.hit(res, e, now, isHead, inm, ims, st.counters);
      return;
    }
    if (e === undefined) {
      if (range) return this.relay.pass(req, res, origin, st.counters);
      const until = st.uncacheable.get(base);
      if (until !== undefined) {
        if (until > now) return this.relay.pass(req, res, origin, st.counters);
        st.uncacheable.delete(base);
      }
    }
    const ask: Ask = { req, res, origin, st, base, isHead, inm, ims, attempt: 0 };
    this.fetch(ask, key, e);
  }

  /**
   * Relay a request to the origin without the cache (X-Cache: BYPASS): for a session's names
   * while they drain after the session ended (issue 3 item 5), before dropOrigin().
   */
  passThrough(req: IncomingMessage, res: ServerResponse, origin: CacheOrigin): void {
    const st = this.origins.get(origin.id) ?? this.newOrigin(origin.id);
    st.counters.requests++;
    this.counters.requests++;
    if (req.url!.charCodeAt(0) !== 0x2f) return this.relay.sendError(res, 'PRX_ERR_BAD_REQUEST');
    this.relay.pass(req, res, origin, st.counters);
  }

  /** Drop cached URLs of an origin (PURGE). A path matches itself and its query variants; a trailing `*` makes it a prefix. */
  purge(originId: string, paths: readonly string[]): number {
    const st = this.origins.get(originId);
    if (st !== undefined) st.gen++;
    const exact = new Set<string>();
    const prefixes: string[] = [];
    for (const p of paths) {
      if (p.endsWith('*')) prefixes.push(p.slice(0, -1));
      else exact.add(p);
    }
    const match = (url: string): boolean => {
      const q = url.indexOf('?');
      if (exact.has(url) || (q >= 0 && exact.has(url.slice(0, q)))) return true;
      for (const p of prefixes) if (url.startsWith(p)) return true;
      return false;
    };
    if (st !== undefined) {
      const n = st.prefix.length;
      for (const k of [...st.vary.keys()]) if (match(k.slice(n))) st.vary.delete(k);
      for (const k of [...st.uncacheable.keys()]) if (match(k.slice(n))) st.uncacheable.delete(k);
    }
    return this.store.deleteByUrl(originId, match);
  }

  /** Session end: drop the origin's entries and state; returns its final counters. */
  dropOrigin(originId: string): OriginCacheCounters | undefined {
    const st = this.origins.get(originId);
    this.origins.delete(originId);
    this.store.deleteOrigin(originId);
    return st?.counters;
  }

  /** Counters of one origin (live object; copy it to keep a snapshot). */
  originCounters(originId: string): Readonly<OriginCacheCounters> | undefined {
    return this.origins.get(originId)?.counters;
  }

  stats(): { counters: ReturnType<CacheCounters['snapshot']>; store: ReturnType<CacheStore['stats']> } {
    return { counters: this.counters.snapshot(), store: this.store.stats() };
  }

  // ---- serving ----------------------------------------------------------------------------

  private hit(
    res: ServerResponse,
    e: CacheEntry,
    now: number,
    isHead: boolean,
    inm: string | undefined,
    ims: string | undefined,
    oc: OriginCacheCounters,
  ): void {
    this.counters.hits++;
    oc.hits++;
    if (
      (inm !== undefined || ims !== undefined) &&
      e.status === 200 &&
      notModified(e.etag, e.lastModified, inm, ims)
    ) {
      res.writeHead(304, notModifiedHead(e, now, 'HIT'));
      res.end();
      return;
    }
    // The prepared head is shared by every hit of this entry: only its age slot changes, at
    // most once a second (writeHead serialises it synchronously, so in-place is safe).
    const age = entryAge(e, now);
    if (age !== e.ageShown) {
      e.ageShown = age;
      e.head[e.head.length - 3] = String(age);
    }
    res.writeHead(e.status, e.head);
    if (isHead) {
      res.end();
      return;
    }
    res.end(e.body);
    this.counters.bytesServed += e.body.length;
    oc.bytesServed += e.body.length;
  }

  /** Serve an entry on a slow path (after a fetch, or stale), with its conditional check. */
  private serveEntry(a: Ask, e: CacheEntry, xcache: XCache): void {
    const { res } = a;
    if (res.headersSent || res.destroyed) return;
    const now = Date.now();
    this.relay.count(a.st.counters, xcache);
    if (e.status === 200 && notModified(e.etag, e.lastModified, a.inm, a.ims)) {
      res.writeHead(304, notModifiedHead(e, now, xcache));
      res.end();
      return;
    }
    res.writeHead(e.status, headWith(e, now, xcache));
    if (a.isHead) {
      res.end();
      return;
    }
    res.end(e.body);
    this.counters.bytesServed += e.body.length;
    a.st.counters.bytesServed += e.body.length;
  }

  // ---- origin fetches -----------------------------------------------------------------------

  /** A miss or a stale entry: join the key's fetch in flight, or lead a new one. */
  private fetch(a: Ask, key: string, stale: CacheEntry | undefined): void {
    const inflight = this.flights.get(key);
    if (inflight !== undefined) {
      this.counters.coalesced++;
      inflight.promise
        .then((o) => this.afterFlight(a, o))
        .catch((err: unknown) => {
          this.logger?.error({ err, url: a.req.url }, 'cache waiter failed unexpectedly');
          this.relay.sendError(a.res, 'PRX_ERR_INTERNAL');
        });
      return;
    }
    let settle!: (o: Outcome) => void;
    const promise = new Promise<Outcome>((resolve) => (settle = resolve));
    const flight: Flight = {
      promise,
      settle: (o) => {
        if (this.flights.get(key) !== flight) return;
        this.flights.delete(key);
        settle(o);
      },
    };
    this.flights.set(key, flight);
    this.lead(a, key, stale, flight).catch((err: unknown) => {
      this.logger?.error({ err, url: a.req.url }, 'cache fetch failed unexpectedly');
      flight.settle({ kind: 'error', code: 'PRX_ERR_INTERNAL' });
      this.relay.sendError(a.res, 'PRX_ERR_INTERNAL');
    });
  }

  /** A waiter's turn once the fetch it joined has ended. */
  private afterFlight(a: Ask, o: Outcome): void {
    const { res } = a;
    if (res.headersSent || res.destroyed) return;
    if (o.kind === 'error') return this.relay.sendError(res, o.code);
    if (o.kind === 'pass') return this.relay.pass(a.req, res, a.origin, a.st.counters);
    if (o.kind === 'replay') return this.replay(a, o);
    const e = o.entry;
    // The answer varies on request headers this waiter may not share: look again, once.
    if (e.vary !== null && variantKey(a.base, varyValues(a.req, e.vary)) !== e.key) {
      if (a.attempt > 0) return this.relay.pass(a.req, res, a.origin, a.st.counters);
      a.attempt++;
      const key = variantKey(a.base, varyValues(a.req, e.vary));
      const found = this.store.get(key);
      if (found !== undefined && Date.now() < found.freshUntil) return this.serveEntry(a, found, 'HIT');
      return this.fetch(a, key, found);
    }
    this.serveEntry(a, e, o.xcache);
  }

  /** A waiter gets the leader's unstored (but not personal) answer, if it asked the same. */
  private replay(a: Ask, o: Extract<Outcome, { kind: 'replay' }>): void {
    if (o.vary !== null) return this.relay.pass(a.req, a.res, a.origin, a.st.counters); // may not be what it asked
    this.relay.count(a.st.counters, 'BYPASS');
    if (!this.relay.writeHead(a.res, o.status, o.headers, 'BYPASS') || a.isHead) {
      if (!a.res.writableEnded) a.res.end();
      return;
    }
    a.res.end(o.body);
    this.counters.bytesServed += o.body.length;
    a.st.counters.bytesServed += o.body.length;
  }

  /** The leader: fetch from the origin (conditionally if we hold a stale entry), store, answer. */
  private async lead(a: Ask, key: string, stale: CacheEntry | undefined, flight: Flight): Promise<void> {
    const { req, res, origin, st } = a;
    const gen = st.gen;
    this.counters.originFetches++;
    st.counters.originFetches++;
    const headers = fetchHeaders(req, origin.fetchBase.host, origin.headersForFetch, true);
    const policyReq = { url: req.url!, method: 'GET', headers: { ...headers } };
    // RFC 9111 §4.3.1: validate a stale entry with its validators.
    if (stale !== undefined && stale.etag !== undefined) headers['if-none-match'] = stale.etag;
    if (stale !== undefined && stale.lastModified !== undefined)
      headers['if-modified-since'] = stale.lastModified;
    let r: Dispatcher.ResponseData;
    try {
      r = await origin.dispatcher.request({
        origin: origin.fetchBase.origin,
        path: originPath(origin, req.url!),
        method: 'GET', // HEAD too: the GET answer serves both
        headers,
        headersTimeout: this.headersTimeout,
        bodyTimeout: this.bodyTimeout,
      });
    } catch (err) {
      this.counters.originErrors++;
      const code = classifyError(err as Error, (err as { code?: string }).code);
      this.logger?.debug({ err, url: req.url, origin: origin.id }, 'origin fetch failed');
      // RFC 9111 §4.2.4: a disconnected cache may serve stale within the allowed window.
      if (stale !== undefined && Date.now() < stale.staleOnDisconnectUntil) {
        flight.settle({ kind: 'entry', entry: stale, xcache: 'STALE' });
        return this.serveEntry(a, stale, 'STALE');
      }
      flight.settle({ kind: 'error', code });
      return this.relay.sendError(res, code);
    }
    const status = r.statusCode;
    const rh = r.headers;
    if (stale !== undefined && status === 304) {
      r.body.resume();
      return this.revalidated(a, key, stale, policyReq, rh, gen, flight);
    }
    if (stale !== undefined && status >= 500 && Date.now() < stale.staleOn5xxUntil) {
      this.counters.originErrors++;
      r.body.resume();
      flight.settle({ kind: 'entry', entry: stale, xcache: 'STALE' });
      return this.serveEntry(a, stale, 'STALE');
    }
    const policy = new CachePolicy(policyReq, { status, headers: rh }, { shared: true });
    const micro = origin.microCache;
    const microTtlS =
      micro !== undefined && micro.ttlS > 0 && micro.paths.some((p) => req.url!.startsWith(p))
        ? micro.ttlS
        : 0;
    const decision =
      status === 304
        ? null
        : decideStore(policy, rh, { microTtlS, staleOnDisconnectS: this.staleOnDisconnectS });
    const clean = cleanResponseHeaders(rh, false);
    if (!writableHeaders(clean)) {
      // A header Node would refuse to write: storing it would break every later hit.
      r.body.destroy();
      flight.settle({ kind: 'error', code: 'PRX_ERR_UPSTREAM_BAD_RESPONSE' });
      return this.relay.sendError(res, 'PRX_ERR_UPSTREAM_BAD_RESPONSE');
    }
    const cl = Number(headerString(rh['content-length']));
    const cap = this.store.maxEntryBytes;
    const personal = decision === null && isPersonal(rh);
    this.uncacheable(st, a.base, personal);
    if (decision === null) this.store.delete(key); // the URL answers uncacheably now
    if (personal || cl > cap) {
      flight.settle({ kind: 'pass' });
      this.relay.count(st.counters, 'BYPASS');
      return this.relay.stream(r, res, status, clean, 'BYPASS', a.isHead, st.counters);
    }
    this.storeThrough(a, key, r, policy, decision, clean, gen, flight);
  }

  /** 304 from the origin for our stale entry: refresh its headers and lifetime, keep its body. */
  private revalidated(
    a: Ask,
    key: string,
    stale: CacheEntry,
    policyReq: CachePolicy.Request,
    rh: CachePolicy.Headers,
    gen: number,
    flight: Flight,
  ): void {
    const { st } = a;
    const { policy, matches } = stale.policy.revalidatedPolicy(policyReq, { status: 304, headers: rh });
    const merged = cleanResponseHeaders(policy.responseHeaders(), true);
    const decision = matches
      ? decideStore(policy, merged, { microTtlS: 0, staleOnDisconnectS: this.staleOnDisconnectS })
      : null;
    if (decision === null) {
      // The 304 does not match what we hold, or now forbids storing: use the body once, drop it.
      this.store.delete(key);
      flight.settle({ kind: 'pass' });
      return this.serveEntry(a, stale, 'BYPASS');
    }
    const entry = buildEntry({
      originId: a.origin.id,
      key,
      status: stale.status,
      headers: merged,
      body: stale.body,
      policy,
      decision,
      now: Date.now(),
    });
    if (this.current(st, gen)) this.store.set(entry);
    this.counters.revalidated++;
    flight.settle({ kind: 'entry', entry, xcache: 'HIT' });
    this.serveEntry(a, entry, 'HIT');
  }

  /** Remember (or forget) that a URL answers personally: its requests then skip coalescing. */
  private uncacheable(st: OriginState, base: string, set: boolean): void {
    if (!set) {
      if (st.uncacheable.size > 0) st.uncacheable.delete(base);
      return;
    }
    if (st.uncacheable.size >= MAP_BOUND) st.uncacheable.clear();
    st.uncacheable.set(base, Date.now() + this.uncacheableMs);
  }

  private current(st: OriginState, gen: number): boolean {
    return st.gen === gen && this.origins.get(st.prefix.slice(0, -1)) === st;
  }

  /**
   * A storable (decision set) or replayable (decision null) answer: the leader gets it as it
   * arrives (without backpressure, since the body is bounded by the entry cap), a copy is
   * collected, and at the end it is stored, or handed to the waiters to replay. Past the cap
   * (no Content-Length) it turns into a plain stream with backpressure and the waiters fetch
   * for themselves.
   */
  private storeThrough(
    a: Ask,
    key: string,
    r: Dispatcher.ResponseData,
    policy: CachePolicy,
    decision: ReturnType<typeof decideStore>,
    clean: CleanHeaders,
    gen: number,
    flight: Flight,
  ): void {
    const { res, st } = a;
    const status = r.statusCode;
    const cap = this.store.maxEntryBytes;
    const vary = varyFields(r.headers);
    const storeKey = vary === null ? a.base : variantKey(a.base, varyValues(a.req, vary));
    const xcache: XCache = decision === null ? 'BYPASS' : 'MISS';
    this.relay.count(st.counters, xcache);
    let toClient = !a.isHead && !res.destroyed;
    if (
      decision !== null &&
      status === 200 &&
      notModified(headerString(clean.etag), headerString(clean['last-modified']), a.inm, a.ims)
    ) {
      toClient = false;
      res.writeHead(304, { ...pick304(clean), 'x-cache': 'MISS' });
      res.end();
    } else if (!this.relay.writeHead(res, status, clean, xcache)) {
      toClient = false;
    } else if (a.isHead) {
      res.end(); // the GET body is still read, for the store and the waiters
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let storing = true;
    const body = r.body;
    const onDrain = (): void => void body.resume();
    body.on('data', (chunk: Buffer) => {
      if (storing) {
        size += chunk.length;
        if (size > cap) {
          storing = false;
          chunks.length = 0;
          flight.settle({ kind: 'pass' });
        } else chunks.push(chunk);
      }
      if (toClient) {
        if (res.destroyed) {
          toClient = false;
          if (!storing) body.destroy();
          return;
        }
        this.counters.bytesServed += chunk.length;
        st.counters.bytesServed += chunk.length;
        if (!res.write(chunk) && !storing) {
          body.pause();
          res.once('drain', onDrain);
        }
      } else if (!storing) body.destroy();
    });
    body.on('end', () => {
      if (toClient || (!res.writableEnded && !res.destroyed)) res.end();
      if (!storing) return;
      const whole = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size);
      if (decision === null) {
        flight.settle({ kind: 'replay', status, headers: clean, body: whole, vary });
        return;
      }
      const entry = buildEntry({
        originId: a.origin.id,
        key: storeKey,
        status,
        headers: cleanResponseHeaders(r.headers, true),
        body: whole,
        policy,
        decision,
        now: Date.now(),
      });
      if (this.current(st, gen) && this.store.set(entry)) {
        this.counters.stored++;
        if (vary !== null) {
          if (st.vary.size >= MAP_BOUND) st.vary.clear();
          st.vary.set(a.base, vary);
        } else st.vary.delete(a.base);
        // A new variant key: the old unvaried entry (if any) is stale knowledge.
        if (storeKey !== key) this.store.delete(key);
      }
      flight.settle({ kind: 'entry', entry, xcache: 'MISS' });
    });
    body.on('error', (err: Error) => {
      this.counters.originErrors++;
      this.logger?.debug({ err, url: a.req.url }, 'origin body failed');
      if (!res.writableEnded) res.destroy();
      flight.settle({ kind: 'error', code: classifyError(err, (err as { code?: string }).code) });
    });
    res.on('close', () => {
      if (!storing && !body.destroyed && !res.writableFinished) body.destroy();
    });
  }

  private newOrigin(id: string): OriginState {
    const st: OriginState = {
      prefix: cacheKey(id, ''),
      counters: newOriginCounters(),
      gen: 0,
      vary: new Map(),
      uncacheable: new Map(),
    };
    this.origins.set(id, st);
    return st;
  }
}

/**
 * The request's values of the Vary fields. Fields we never forward on shared fetches
 * (Cookie, Authorization, ...) count as absent: the stored answer was made without them.
 */
function varyValues(req: IncomingMessage, fields: readonly string[]): string[] {
  const h = req.headers;
  return fields.map((f) => (STRIPPED_FOR_SHARED.has(f) ? '' : (headerString(h[f]) ?? '')));
}
