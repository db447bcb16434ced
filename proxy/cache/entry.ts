// Origin response -> cache entry: which responses a shared cache may store (RFC 9111 via
// http-cache-semantics, plus our stricter rules), how long they stay fresh or usable stale,
// and the prepared header arrays a hit is served from.
import type CachePolicy from 'http-cache-semantics';
import type { CacheEntry } from './store.js';

export type Headers = Record<string, string | string[] | undefined>;
export type CleanHeaders = Record<string, string | string[]>;

/** RFC 9110 §7.6.1 hop-by-hop fields (and legacy ones); never stored, never forwarded. */
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
]);

export function headerString(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v.join(', ') : v;
}

/**
 * Response headers minus hop-by-hop ones, those the Connection header names, and X-Cache
 * (ours to set). `forStore` also drops Age: a stored entry's age is recomputed per hit.
 */
export function cleanResponseHeaders(h: Headers, forStore: boolean): CleanHeaders {
  const out: CleanHeaders = {};
  const conn = headerString(h.connection);
  const named = conn === undefined ? null : conn.toLowerCase().split(/\s*,\s*/);
  for (const name in h) {
    const v = h[name];
    if (v === undefined || HOP_BY_HOP.has(name) || name === 'x-cache') continue;
    if (forStore && name === 'age') continue;
    if (named !== null && named.includes(name)) continue;
    out[name] = v;
  }
  return out;
}

/** Cache-Control directives, lower-cased names; value '' for directives without one. */
export function cacheControl(v: string | string[] | undefined): Map<string, string> {
  const cc = new Map<string, string>();
  const s = headerString(v);
  if (s === undefined) return cc;
  for (const part of s.split(',')) {
    const eq = part.indexOf('=');
    const name = (eq < 0 ? part : part.slice(0, eq)).trim().toLowerCase();
    if (name !== '')
      cc.set(
        name,
        eq < 0
          ? ''
          : part
              .slice(eq + 1)
              .trim()
              .replace(/^"|"$/g, ''),
      );
  }
  return cc;
}

function seconds(v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const n = Number.parseInt(v, 10);
  return Number.isFinite(n) && n >= 0 ? n : undefined;
}

/** The Vary field names of a response (lower-cased), null without Vary, ['*'] for "Vary: *". */
export function varyFields(h: Headers): string[] | null {
  const v = headerString(h.vary);
  if (v === undefined || v.trim() === '') return null;
  const fields = v
    .toLowerCase()
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  return fields.length === 0 ? null : fields;
}

export interface StoreDecision {
  freshS: number;
  staleOnDisconnectS: number;
  staleOn5xxS: number;
}

export interface DecideOptions {
  /** Micro-cache lifetime for responses without explicit freshness on allowed paths; 0 = off. */
  microTtlS: number;
  /** How long past freshness a stale entry may stand in when the origin cannot be reached. */
  staleOnDisconnectS: number;
}

/**
 * May this response be stored, and for how long? null = never. On top of
 * `policy.storable()` (RFC 9111 §3: method, status, no-store, private and Authorization for
 * a shared cache) we refuse Set-Cookie whatever the directives (one client's cookie must not
 * reach another), `Vary: *`, and responses that would be useless: stale at once without a
 * validator to revalidate them with.
 */
export function decideStore(
  policy: CachePolicy,
  headers: Headers,
  opts: DecideOptions,
): StoreDecision | null {
  if (!policy.storable()) return null;
  if (headers['set-cookie'] !== undefined) return null;
  const cc = cacheControl(headers['cache-control']);
  if (cc.has('private') || cc.has('no-store')) return null;
  const vary = varyFields(headers);
  if (vary !== null && vary.includes('*')) return null;
  const explicit =
    cc.has('max-age') || cc.has('s-maxage') || cc.has('no-cache') || headers.expires !== undefined;
  let freshS = policy.maxAge() - policy.age();
  // Micro-caching (the origin allowed it in its SOS): a short lifetime for responses that say
  // nothing about freshness; an explicit max-age/Expires/no-cache still wins.
  if (!explicit && opts.microTtlS > 0) freshS = opts.microTtlS;
  const validator = headers.etag !== undefined || headers['last-modified'] !== undefined;
  if (!(freshS > 0) && !validator) return null;
  // RFC 9111 §4.2.4 / §5.2.2: must-revalidate, proxy-revalidate, no-cache and (for shared
  // caches) s-maxage forbid serving stale; an explicit stale-if-error (RFC 5861) allows it.
  const strict =
    cc.has('must-revalidate') || cc.has('proxy-revalidate') || cc.has('no-cache') || cc.has('s-maxage');
  const sie = seconds(cc.get('stale-if-error'));
  return {
    freshS: Math.max(0, freshS),
    staleOn5xxS: sie ?? 0,
    staleOnDisconnectS: sie ?? (strict ? 0 : opts.staleOnDisconnectS),
  };
}

/** Build the entry (and its prepared hit head) for a stored response. */
export function buildEntry(a: {
  originId: string;
  key: string;
  status: number;
  headers: CleanHeaders;
  body: Buffer;
  policy: CachePolicy;
  decision: StoreDecision;
  now: number;
}): CacheEntry {
  const headers: CleanHeaders = { ...a.headers };
  delete headers.age;
  if (a.status === 204 || a.status === 304) delete headers['content-length'];
  else headers['content-length'] = String(a.body.length);
  const head: string[] = [];
  let size = a.body.length;
  for (const name in headers) {
    const v = headers[name]!;
    if (Array.isArray(v)) for (const one of v) head.push(name, one);
    else head.push(name, v);
  }
  for (let i = 0; i < head.length; i++) size += head[i]!.length + 2;
  const ageAtStore = a.policy.age();
  const age = Math.floor(ageAtStore);
  head.push('age', String(age), 'x-cache', 'HIT');
  const freshUntil = a.now + a.decision.freshS * 1000;
  return {
    originId: a.originId,
    key: a.key,
    status: a.status,
    headers,
    body: a.body,
    policy: a.policy,
    storedAt: a.now,
    ageAtStore,
    freshUntil,
    staleOnDisconnectUntil: freshUntil + a.decision.staleOnDisconnectS * 1000,
    staleOn5xxUntil: freshUntil + a.decision.staleOn5xxS * 1000,
    etag: headerString(headers.etag),
    lastModified: headerString(headers['last-modified']),
    vary: varyFields(headers),
    size: Math.max(1, size),
    head,
    ageShown: age,
  };
}

/** Index of the age value in an entry's prepared head. */
export function ageSlot(e: CacheEntry): number {
  return e.head.length - 3;
}

/** Whole seconds of age of `e` at `now` (RFC 9111 §4.2.3, resident time added to the stored age). */
export function entryAge(e: CacheEntry, now: number): number {
  return Math.floor(e.ageAtStore + (now - e.storedAt) / 1000);
}

/** A head for this entry with another X-Cache value (slow paths: MISS, STALE). */
export function headWith(e: CacheEntry, now: number, xcache: string): string[] {
  const h = e.head.slice();
  h[h.length - 3] = String(entryAge(e, now));
  h[h.length - 1] = xcache;
  return h;
}

/** RFC 9110 §15.4.5: the fields a 304 carries. */
const NOT_MODIFIED_FIELDS = [
  'cache-control',
  'content-location',
  'date',
  'etag',
  'expires',
  'last-modified',
  'vary',
];

export function notModifiedHead(e: CacheEntry, now: number, xcache: string): string[] {
  const h: string[] = [];
  for (const name of NOT_MODIFIED_FIELDS) {
    const v = e.headers[name];
    if (v === undefined) continue;
    if (Array.isArray(v)) for (const one of v) h.push(name, one);
    else h.push(name, v);
  }
  h.push('age', String(entryAge(e, now)), 'x-cache', xcache);
  return h;
}

/**
 * RFC 9110 §13.1.2/§13.1.3: does a client's If-None-Match (weak comparison) or, without it,
 * If-Modified-Since make this a 304?
 */
export function notModified(
  etag: string | undefined,
  lastModified: string | undefined,
  ifNoneMatch: string | undefined,
  ifModifiedSince: string | undefined,
): boolean {
  if (ifNoneMatch !== undefined) {
    if (etag === undefined) return false;
    const want = etag.replace(/^W\//, '');
    for (const tag of ifNoneMatch.split(',')) {
      const t = tag.trim();
      if (t === '*' || t.replace(/^W\//, '') === want) return true;
    }
    return false;
  }
  if (ifModifiedSince !== undefined && lastModified !== undefined) {
    const since = Date.parse(ifModifiedSince);
    const lm = Date.parse(lastModified);
    return Number.isFinite(since) && Number.isFinite(lm) && lm <= since;
  }
  return false;
}
