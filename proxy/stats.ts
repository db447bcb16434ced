// Cumulative counters of the data path, read by the workload monitor (src/monitor/).
// The proxy only increments plain numbers and one histogram slot per request (cheap on the
// hot path); readers take a snapshot and diff it against their previous one, so any number
// of readers can sample at their own pace and nothing here ever resets.

/**
 * Latency histogram bucket upper bounds in milliseconds (log-spaced, ~12% apart, 0.05 ms to
 * ~120 s). A percentile read from it is exact to within one bucket width.
 */
export const LATENCY_BUCKETS_MS: readonly number[] = (() => {
  const bounds: number[] = [];
  for (let b = 0.05; b < 120_000; b *= 1.12) bounds.push(Number(b.toPrecision(4)));
  bounds.push(Number.POSITIVE_INFINITY);
  return bounds;
})();

/** Index of the bucket holding `ms`: binary search over LATENCY_BUCKETS_MS (~7 steps). */
export function latencyBucket(ms: number): number {
  let lo = 0;
  let hi = LATENCY_BUCKETS_MS.length - 1;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (ms <= LATENCY_BUCKETS_MS[mid]!) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}

/** A frozen copy of the counters at one instant. All fields are cumulative since start. */
export interface ProxyStatsSnapshot {
  readonly at: number; // performance.now() when taken
  readonly requests: number; // requests whose response finished (any status)
  readonly bytesIn: number; // request bytes received from clients (head + body)
  readonly bytesOut: number; // response bytes sent to clients (head + body)
  readonly upstreamErrors: number; // connect failures, resets, timeouts, upstream 5xx
  readonly clientErrors: number; // requests refused as malformed / too large (4xx from us)
  readonly redirects: number; // requests answered with a rescue redirect (302 to a rescuer's vhost)
  readonly status: Readonly<Record<'1xx' | '2xx' | '3xx' | '4xx' | '5xx', number>>;
  readonly active: number; // requests in flight now (gauge, not cumulative)
  readonly connections: number; // open client connections now (gauge)
  /** Total-time histogram: counts per LATENCY_BUCKETS_MS bucket. */
  readonly totalLatency: readonly number[];
  /** Upstream time (request sent -> response end) histogram. */
  readonly upstreamLatency: readonly number[];
}

/** Mutable counters owned by one front listener. Only the data path writes them. */
export class ProxyStats {
  requests = 0;
  bytesIn = 0;
  bytesOut = 0;
  upstreamErrors = 0;
  clientErrors = 0;
  redirects = 0;
  active = 0;
  connections = 0;
  readonly status = { '1xx': 0, '2xx': 0, '3xx': 0, '4xx': 0, '5xx': 0 };
  readonly totalLatency: number[] = new Array<number>(LATENCY_BUCKETS_MS.length).fill(0);
  readonly upstreamLatency: number[] = new Array<number>(LATENCY_BUCKETS_MS.length).fill(0);

  /** Record one finished request. Cost: a few increments and two binary searches. */
  recordResponse(statusCode: number, totalMs: number, upstreamMs: number | undefined): void {
    this.requests++;
    const cls =
      statusCode >= 500
        ? '5xx'
        : statusCode >= 400
          ? '4xx'
          : statusCode >= 300
            ? '3xx'
            : statusCode >= 200
              ? '2xx'
              : '1xx';
    this.status[cls]++;
    this.totalLatency[latencyBucket(totalMs)]!++;
    if (upstreamMs !== undefined) this.upstreamLatency[latencyBucket(upstreamMs)]!++;
  }

  snapshot(): ProxyStatsSnapshot {
    return Object.freeze({
      at: performance.now(),
      requests: this.requests,
      bytesIn: this.bytesIn,
      bytesOut: this.bytesOut,
      upstreamErrors: this.upstreamErrors,
      clientErrors: this.clientErrors,
      redirects: this.redirects,
      status: Object.freeze({ ...this.status }),
      active: this.active,
      connections: this.connections,
      totalLatency: Object.freeze(this.totalLatency.slice()),
      upstreamLatency: Object.freeze(this.upstreamLatency.slice()),
    });
  }
}

/** The p-th percentile (0-100) of the requests counted in `later - earlier` histograms, in ms. */
export function percentileBetween(
  earlier: readonly number[] | undefined,
  later: readonly number[],
  p: number,
): number | null {
  let total = 0;
  const diff = later.map((n, i) => {
    const d = n - (earlier?.[i] ?? 0);
    total += d;
    return d;
  });
  if (total === 0) return null;
  const rank = Math.ceil((p / 100) * total);
  let seen = 0;
  for (let i = 0; i < diff.length; i++) {
    seen += diff[i]!;
    if (seen >= rank) {
      const bound = LATENCY_BUCKETS_MS[i]!;
      return Number.isFinite(bound) ? bound : LATENCY_BUCKETS_MS[i - 1]!;
    }
  }
  return null;
}
