// Cumulative counters of the pull-through cache, overall and per origin (session), for the
// monitor and usage accounting. Plain number increments on the request path; readers diff
// snapshots, nothing resets.

export interface OriginCacheCounters {
  requests: number;
  hits: number;
  misses: number;
  stale: number;
  bypass: number;
  /** Response body bytes sent to clients (hits, misses, stale and pass-through). */
  bytesServed: number;
  originFetches: number;
}

export function newOriginCounters(): OriginCacheCounters {
  return { requests: 0, hits: 0, misses: 0, stale: 0, bypass: 0, bytesServed: 0, originFetches: 0 };
}

export class CacheCounters {
  requests = 0;
  /** Served from a fresh entry, or one the origin just confirmed with a 304. */
  hits = 0;
  /** Fetched from the origin for storing (the leader and every coalesced waiter). */
  misses = 0;
  /** A stale entry stood in for a failed origin (stale-if-error). */
  stale = 0;
  /** Passed through without the cache: other methods, Authorization, uncacheable or too big. */
  bypass = 0;
  /** Requests that waited on another request's origin fetch instead of making their own. */
  coalesced = 0;
  revalidated = 0;
  originFetches = 0;
  originErrors = 0;
  /** Errors we answered ourselves (502/504). */
  errors = 0;
  stored = 0;
  bytesServed = 0;

  snapshot(): Readonly<Omit<CacheCounters, 'snapshot'>> {
    return Object.freeze({ ...this });
  }
}
