// Token bucket that keeps redirects to one rescue session at or below its allowed rate Rr.
// Refilled lazily from a caller-supplied clock, so a decision costs a few flops and no timer.

/** Burst allowance: a bucket holds at most this much time's worth of Rr (issue 3 item 4). */
export const BUCKET_SECONDS = 1;

export class TokenBucket {
  /** Tokens per millisecond. */
  private perMs: number;
  private capacity: number;
  tokens: number;
  private last: number;

  /**
   * A new bucket starts empty: a fresh session then gets at most Rr in its first second (a
   * full bucket would allow Rr at once plus Rr of refill). The first token arrives after 1/Rr s.
   */
  constructor(rate: number, nowMs: number) {
    this.perMs = rate / 1000;
    this.capacity = capacityFor(rate);
    this.tokens = 0;
    this.last = nowMs;
  }

  get rate(): number {
    return this.perMs * 1000;
  }

  get limit(): number {
    return this.capacity;
  }

  /** Refill up to `nowMs`; returns the tokens now available. A clock going back adds nothing. */
  refill(nowMs: number): number {
    const dt = nowMs - this.last;
    if (dt > 0) {
      const t = this.tokens + dt * this.perMs;
      this.tokens = t < this.capacity ? t : this.capacity;
      this.last = nowMs;
    }
    return this.tokens;
  }

  /**
   * New rate (a RATE message, a controller decision): tokens earned so far at the old rate are
   * kept, up to the new capacity, so a swap never refills a bucket by itself.
   */
  reconfigure(rate: number, nowMs: number): void {
    this.refill(nowMs);
    this.perMs = rate / 1000;
    this.capacity = capacityFor(rate);
    if (this.tokens > this.capacity) this.tokens = this.capacity;
  }
}

/** Capacity of about BUCKET_SECONDS of `rate`; at least one token so a low rate still redirects. */
function capacityFor(rate: number): number {
  if (rate <= 0) return 0;
  const c = rate * BUCKET_SECONDS;
  return c < 1 ? 1 : c;
}
