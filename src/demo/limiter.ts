// The demo origin's capacity limit: a FIFO token bucket in requests/s that queues like a saturated
// uplink. Excess requests wait their turn (responses slow down); nothing is ever refused.

export class RateQueue {
  readonly #rate: number;
  readonly #burst: number;
  #tokens: number;
  #last = performance.now();
  readonly #queue: Waiter[] = [];
  /** Served before #queue: the few fetches rescuers make to fill their caches. */
  readonly #urgent: Waiter[] = [];
  #head = 0;
  #timer: NodeJS.Timeout | null = null;
  #closed = false;

  /** `rate` requests/s; `burst` tokens may accumulate while idle (default: a tenth of a second's worth, at least 1). */
  constructor(rate: number, burst = Math.max(1, rate / 10)) {
    if (!(rate > 0)) throw new RangeError('rate must be > 0');
    this.#rate = rate;
    this.#burst = burst;
    this.#tokens = burst;
  }

  /** Requests waiting for their turn now. */
  get waiting(): number {
    return this.#queue.length - this.#head + this.#urgent.length;
  }

  /**
   * Runs `fn` when its turn comes (in arrival order). A waiter whose `gone()` turns true before
   * its turn leaves the queue without using capacity (a client that gave up).
   */
  take(fn: () => void, gone: () => boolean = never, urgent = false): void {
    if (this.#closed) return;
    this.#refill();
    if (this.waiting === 0 && this.#tokens >= 1) {
      this.#tokens -= 1;
      fn();
      return;
    }
    (urgent ? this.#urgent : this.#queue).push({ fn, gone });
    this.#schedule();
  }

  /** Drops the queue (the demo is ending). */
  close(): void {
    this.#closed = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    this.#queue.length = 0;
    this.#urgent.length = 0;
    this.#head = 0;
  }

  #refill(): void {
    const now = performance.now();
    this.#tokens = Math.min(this.#burst, this.#tokens + ((now - this.#last) * this.#rate) / 1000);
    this.#last = now;
  }

  #schedule(): void {
    if (this.#timer !== null || this.#closed) return;
    const wait = Math.max(1, Math.ceil(((1 - this.#tokens) * 1000) / this.#rate));
    this.#timer = setTimeout(() => {
      this.#timer = null;
      this.#refill();
      while (this.waiting > 0 && this.#tokens >= 1) {
        let w = this.#urgent.shift();
        if (w === undefined) {
          w = this.#queue[this.#head]!;
          this.#queue[this.#head++] = DONE;
        }
        if (w.gone()) continue;
        this.#tokens -= 1;
        w.fn();
      }
      if (this.#head > 1024 && this.#head * 2 > this.#queue.length) {
        this.#queue.splice(0, this.#head);
        this.#head = 0;
      }
      if (this.waiting > 0) this.#schedule();
    }, wait);
    this.#timer.unref();
  }
}

interface Waiter {
  readonly fn: () => void;
  readonly gone: () => boolean;
}
const never = (): boolean => false;
const DONE: Waiter = { fn: () => {}, gone: () => true };
