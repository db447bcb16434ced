// Upper bound of the next interval's request volume from the current interval alone, by the
// multiple-time-scale method of the WWW 2003 DotSlash paper (RESEARCH.md, slide 31), so the
// origin can send an early SOS before the monitor's smoothed load turns heavy.
//
// D(T) is the difference in volume between adjacent intervals of length T. Web traffic is
// self-similar, so D over T and over T' = T/n are related by the Hurst parameter H:
//   mu(D(T)) = n^H * mu(D(T')),  sigma(D(T)) = n^H * sigma(D(T')).
// The n sub-interval volumes of the current interval give n - 1 samples of D(T'); the bound is
//   V(current) + mu(D(T)) + k * sigma(D(T)).

export interface PredictorOptions {
  /** T, the prediction interval (the paper: < 100 s). Default 10 s. */
  intervalMs?: number;
  /** n, sub-intervals per interval (the paper: 10 or 100). Default 10: with T = 10 s, the monitor's 1 s samples. */
  subIntervals?: number;
  /** H, the Hurst parameter (the paper: 0.8-0.9). Default 0.85. */
  hurst?: number;
  /** k, standard deviations of headroom. Default 3. */
  k?: number;
}

export interface Prediction {
  /** Monotonic ms at which the window ended (end of its last sub-interval). */
  readonly atMs: number;
  /** Requests in the current interval (the last n sub-intervals). */
  readonly volume: number;
  /** Estimated mu(D(T)) and sigma(D(T)). */
  readonly mean: number;
  readonly sigma: number;
  /** Upper bound of requests in the next interval of length T (never negative). */
  readonly bound: number;
  /** The bound as a rate, requests/s, to compare with a capacity in requests/s. */
  readonly boundRate: number;
}

/**
 * Feed it request counts as they are measured; it keeps the last n sub-interval volumes and
 * recomputes the bound each time a sub-interval completes (a sliding window: a fresh bound
 * every T', each for the T that follows). Cost per completed sub-interval: O(n).
 */
export class TrafficPredictor {
  readonly intervalMs: number;
  readonly subIntervals: number;
  readonly hurst: number;
  readonly k: number;
  /** T' in ms. */
  readonly subMs: number;
  /** n^H, the scale factor from T' to T. */
  readonly scale: number;

  private readonly ring: Float64Array;
  private filled = 0;
  private head = 0;
  /** Open sub-interval: its end and what it has collected so far. */
  private bucketEnd: number | null = null;
  private acc = 0;
  /** Time of the last record() (start of the span the next record covers). */
  private lastAt = 0;
  private last: Prediction | null = null;

  constructor(opts: PredictorOptions = {}) {
    this.intervalMs = opts.intervalMs ?? 10_000;
    this.subIntervals = opts.subIntervals ?? 10;
    this.hurst = opts.hurst ?? 0.85;
    this.k = opts.k ?? 3;
    if (!(this.intervalMs > 0)) throw new RangeError('intervalMs must be > 0');
    if (!Number.isInteger(this.subIntervals) || this.subIntervals < 3) {
      throw new RangeError('subIntervals must be an integer >= 3 (sigma needs at least two differences)');
    }
    if (!(this.hurst > 0 && this.hurst < 1)) throw new RangeError('hurst must be within (0, 1)');
    if (!(this.k >= 0)) throw new RangeError('k must be >= 0');
    this.subMs = this.intervalMs / this.subIntervals;
    this.scale = Math.pow(this.subIntervals, this.hurst);
    this.ring = new Float64Array(this.subIntervals);
  }

  /**
   * `count` requests were observed in the span since the previous record() (for the first,
   * the T' before `atMs`); `atMs` is a monotonic clock. Counts are spread over the aligned
   * sub-intervals the span covers, in proportion to the overlap, so jitter in the caller's
   * timer and a missed tick cost accuracy, not correctness. A gap longer than T starts over.
   * Returns the new prediction if a sub-interval completed, else null.
   */
  record(count: number, atMs: number): Prediction | null {
    const c = Number.isFinite(count) && count > 0 ? count : 0;
    if (this.bucketEnd === null || atMs - this.bucketEnd > this.intervalMs) {
      // First record, or stale history: this record fills one sub-interval ending at atMs.
      if (this.bucketEnd !== null) this.reset();
      this.lastAt = atMs - this.subMs;
      this.bucketEnd = atMs;
    }
    const span = atMs - this.lastAt;
    if (span <= 0) {
      // The clock did not move: the count belongs to the open sub-interval.
      this.acc += c;
      return null;
    }
    let from = this.lastAt;
    let out: Prediction | null = null;
    while (atMs >= this.bucketEnd) {
      this.acc += (c * (this.bucketEnd - from)) / span;
      out = this.complete(this.acc, this.bucketEnd);
      this.acc = 0;
      from = this.bucketEnd;
      this.bucketEnd += this.subMs;
    }
    this.acc += (c * (atMs - from)) / span;
    this.lastAt = atMs;
    return out;
  }

  /**
   * One whole sub-interval's count, when the caller already measures on a T' cadence (the
   * monitor's 1 s samples with T = 10 s, n = 10). `atMs` (end of the sub-interval) only
   * labels the prediction. Do not mix with record().
   */
  push(count: number, atMs: number = performance.now()): Prediction | null {
    return this.complete(Number.isFinite(count) && count > 0 ? count : 0, atMs);
  }

  /** Upper bound of requests in the next interval, or null until a whole interval was seen. */
  boundForNext(): number | null {
    return this.last === null ? null : this.last.bound;
  }

  /** The same bound in requests/s. */
  boundRateForNext(): number | null {
    return this.last === null ? null : this.last.boundRate;
  }

  /** The latest prediction with its parts (for logs and /status), or null. */
  get latest(): Prediction | null {
    return this.last;
  }

  /** Forget all history (after a pause in measurement). */
  reset(): void {
    this.filled = 0;
    this.head = 0;
    this.acc = 0;
    this.bucketEnd = null;
    this.last = null;
  }

  private complete(volume: number, atMs: number): Prediction | null {
    const n = this.subIntervals;
    this.ring[this.head] = volume;
    this.head = (this.head + 1) % n;
    if (this.filled < n) this.filled++;
    if (this.filled < n) return null;
    // Oldest to newest: ring[head], ring[head + 1], ... ring[head - 1].
    let total = 0;
    let sumD = 0;
    let sumD2 = 0;
    let prev = this.ring[this.head]!;
    total += prev;
    for (let i = 1; i < n; i++) {
      const v = this.ring[(this.head + i) % n]!;
      const d = v - prev;
      total += v;
      sumD += d;
      sumD2 += d * d;
      prev = v;
    }
    const m = n - 1; // differences inside the interval
    const muSub = sumD / m;
    // Sample standard deviation of the m differences.
    const varSub = Math.max(0, (sumD2 - m * muSub * muSub) / (m - 1));
    const mean = this.scale * muSub;
    const sigma = this.scale * Math.sqrt(varSub);
    const bound = Math.max(0, total + mean + this.k * sigma);
    this.last = { atMs, volume: total, mean, sigma, bound, boundRate: bound / (this.intervalMs / 1000) };
    return this.last;
  }
}
