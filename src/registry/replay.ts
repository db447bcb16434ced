// The registry's replay cache: (sender, nonce) pairs seen in the last 2-4 x skew, in two
// generations of Sets that rotate, so a check is O(1) at any rate. (The rescue protocol's
// NonceCache expires entry by entry from the front of a Map, which is fine for members' rates
// but slows down under thousands of lookups a second.)
import { RegistryError } from './errors.js';

export interface ReplayCacheOptions {
  /** A generation's span, ms (default 2 x 30 s skew: an accepted message is replayable that long). */
  readonly spanMs?: number;
  /** Most nonces held in both generations (default 4 000 000, some hundreds of MB at worst). */
  readonly maxEntries?: number;
  /** Monotonic clock, ms (tests). */
  readonly now?: () => number;
}

export class ReplayCache {
  private readonly spanMs: number;
  private readonly maxEntries: number;
  private readonly now: () => number;
  private current = new Set<string>();
  private previous = new Set<string>();
  private rotatedAt: number;

  constructor(opts: ReplayCacheOptions = {}) {
    this.spanMs = opts.spanMs ?? 60_000;
    this.maxEntries = opts.maxEntries ?? 4_000_000;
    this.now = opts.now ?? (() => performance.now());
    this.rotatedAt = this.now();
  }

  /** Records (sender, nonce); REG_ERR_REPLAYED_NONCE if seen, REG_ERR_NONCE_FLOOD if full. */
  check(sender: string, nonce: string): void {
    const now = this.now();
    if (now - this.rotatedAt >= this.spanMs) {
      // Two spans passed: both generations are older than any replayable message.
      this.previous = now - this.rotatedAt >= 2 * this.spanMs ? new Set() : this.current;
      this.current = new Set();
      this.rotatedAt = now;
    }
    const key = `${sender}\n${nonce}`;
    if (this.current.has(key) || this.previous.has(key))
      throw new RegistryError('REG_ERR_REPLAYED_NONCE', `nonce ${nonce} from ${sender}`);
    if (this.current.size + this.previous.size >= this.maxEntries)
      throw new RegistryError(
        'REG_ERR_NONCE_FLOOD',
        `more than ${this.maxEntries} requests in ${this.spanMs} ms`,
      );
    this.current.add(key);
  }

  clear(): void {
    this.current.clear();
    this.previous.clear();
  }
}
