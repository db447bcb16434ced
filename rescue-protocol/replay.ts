// Replay protection: remembers (sender, nonce) pairs for twice the clock-skew window, in bounded memory.
import { RescueError } from './errors.js';

export interface NonceCacheOptions {
  /**
   * How long a nonce is remembered, ms (monotonic, from receipt). A message is accepted while its
   * timestamp is within skew of our clock, so it can be replayed for at most 2 x skew after it was
   * first seen: remember it that long (default 2 x 30 s).
   */
  readonly ttlMs?: number;
  /** Most nonces remembered in all (default 100 000, a few MB). */
  readonly maxEntries?: number;
  /** Most nonces remembered per sender, so one noisy member cannot use up the whole cache (default 10 000). */
  readonly maxPerSender?: number;
  /** Monotonic clock in ms (tests). */
  readonly now?: () => number;
}

/**
 * When full, new messages are refused (RSC_ERR_NONCE_FLOOD) rather than older nonces forgotten:
 * forgetting a live nonce would reopen the replay window, and only senders whose signature
 * verified get this far, so a flood comes from a known (misbehaving) member. Expiry is in receipt
 * order, and receipt times only grow, so the Map's insertion order is expiry order: O(1) per check.
 */
export class NonceCache {
  private readonly ttlMs: number;
  private readonly maxEntries: number;
  private readonly maxPerSender: number;
  private readonly now: () => number;
  /** key "sender\nnonce" -> expiry (monotonic ms); insertion order == expiry order. */
  private readonly seen = new Map<string, number>();
  private readonly perSender = new Map<string, number>();

  constructor(opts: NonceCacheOptions = {}) {
    this.ttlMs = opts.ttlMs ?? 60_000;
    this.maxEntries = opts.maxEntries ?? 100_000;
    this.maxPerSender = opts.maxPerSender ?? 10_000;
    this.now = opts.now ?? (() => performance.now());
  }

  get size(): number {
    return this.seen.size;
  }

  /**
   * Records (sender, nonce); throws RSC_ERR_REPLAYED_NONCE if it is already remembered, or
   * RSC_ERR_NONCE_FLOOD if the cache (or this sender's share) is full of unexpired nonces.
   */
  check(sender: string, nonce: string): void {
    const now = this.now();
    this.expire(now);
    const key = `${sender}\n${nonce}`;
    if (this.seen.has(key)) throw new RescueError('RSC_ERR_REPLAYED_NONCE', `nonce ${nonce} from ${sender}`);
    const mine = this.perSender.get(sender) ?? 0;
    if (mine >= this.maxPerSender) {
      throw new RescueError(
        'RSC_ERR_NONCE_FLOOD',
        `more than ${this.maxPerSender} messages from ${sender} in ${this.ttlMs} ms`,
      );
    }
    if (this.seen.size >= this.maxEntries) {
      throw new RescueError(
        'RSC_ERR_NONCE_FLOOD',
        `more than ${this.maxEntries} messages in ${this.ttlMs} ms`,
      );
    }
    this.seen.set(key, now + this.ttlMs);
    this.perSender.set(sender, mine + 1);
  }

  private expire(now: number): void {
    for (const [key, expiry] of this.seen) {
      if (expiry > now) break;
      this.seen.delete(key);
      const sender = key.slice(0, key.indexOf('\n'));
      const n = (this.perSender.get(sender) ?? 1) - 1;
      if (n > 0) this.perSender.set(sender, n);
      else this.perSender.delete(sender);
    }
  }

  clear(): void {
    this.seen.clear();
    this.perSender.clear();
  }
}
