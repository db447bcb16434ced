// What an origin knows about its round-trip times to other members: a per-member EWMA, bounded in
// size and age, handed to registry lookups as `rtt_ms` (issue 5: candidates "ranked by spare
// capacity and, where known, by measured latency from the origin"). Pure: the clock is given.

/** The registry's lookup schema takes at most this many `rtt_ms` entries (messages.ts). */
export const MAX_RTT_ENTRIES = 256;
/** ...and no value above this (ms). */
export const MAX_RTT_MS = 60_000;
/** Weight of a new sample: about the last five probes count. */
export const RTT_ALPHA = 0.3;

export interface RttTableOptions {
  /** A member not measured for this long is forgotten (it ranks as unmeasured again). */
  readonly maxAgeMs: number;
  /** Most members kept; the least recently measured is dropped first. Default 256. */
  readonly maxEntries?: number;
  /** Weight of a new sample in the EWMA, (0, 1]. Default RTT_ALPHA. */
  readonly alpha?: number;
  /** Monotonic ms (performance.now by default). */
  readonly now?: () => number;
}

interface Entry {
  ms: number;
  at: number;
}

/**
 * Member id -> smoothed RTT. The Map is kept in measurement order (an update moves the entry to
 * the end), so both the size bound and the age limit drop from the front: every operation is
 * O(1) amortised, and `snapshot()` is O(entries) <= 256.
 */
export class RttTable {
  private readonly entries = new Map<string, Entry>();
  private readonly maxAgeMs: number;
  private readonly maxEntries: number;
  private readonly alpha: number;
  private readonly now: () => number;

  constructor(opts: RttTableOptions) {
    this.maxAgeMs = opts.maxAgeMs;
    this.maxEntries = Math.max(1, Math.min(opts.maxEntries ?? MAX_RTT_ENTRIES, MAX_RTT_ENTRIES));
    this.alpha = Math.min(1, Math.max(Number.MIN_VALUE, opts.alpha ?? RTT_ALPHA));
    this.now = opts.now ?? (() => performance.now());
  }

  /** One measurement of `id`, ms. Non-finite or negative samples are ignored; big ones clamp to MAX_RTT_MS. */
  record(id: string, ms: number): void {
    if (!Number.isFinite(ms) || ms < 0) return;
    const sample = Math.min(ms, MAX_RTT_MS);
    const now = this.now();
    this.expire(now);
    const before = this.entries.get(id);
    this.entries.delete(id); // re-inserted at the end: most recently measured
    const smoothed = before ? before.ms + this.alpha * (sample - before.ms) : sample;
    this.entries.set(id, { ms: smoothed, at: now });
    while (this.entries.size > this.maxEntries) this.entries.delete(this.entries.keys().next().value!);
  }

  /** The smoothed RTT of `id`, or undefined when never measured or measured too long ago. */
  get(id: string): number | undefined {
    this.expire(this.now());
    return this.entries.get(id)?.ms;
  }

  /** When `id` was last measured (monotonic ms), if it is still remembered. */
  measuredAt(id: string): number | undefined {
    this.expire(this.now());
    return this.entries.get(id)?.at;
  }

  forget(id: string): void {
    this.entries.delete(id);
  }

  get size(): number {
    this.expire(this.now());
    return this.entries.size;
  }

  /** Every live measurement, rounded to 0.1 ms: what a lookup sends as `rtt_ms` (<= 256 entries). */
  snapshot(): Record<string, number> {
    this.expire(this.now());
    const out: Record<string, number> = {};
    for (const [id, e] of this.entries) out[id] = Math.round(e.ms * 10) / 10;
    return out;
  }

  private expire(now: number): void {
    for (const [id, e] of this.entries) {
      if (now - e.at <= this.maxAgeMs) return; // measurement order: the rest are newer
      this.entries.delete(id);
    }
  }
}
