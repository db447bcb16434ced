// Early SOS (issue 3, RESEARCH.md WWW'03): the traffic predictor's upper bound of the next
// interval's request rate, compared with the upper threshold, so the origin can ask for help
// before its smoothed load turns heavy.
import type { Measure } from './policy.js';
import { TrafficPredictor } from './predictor.js';
import type { RescueSettings } from './settings.js';

export class EarlyWarning {
  private readonly predictor: TrafficPredictor | null;
  private readonly capacity: number;
  private readonly upper: number;

  constructor(settings: RescueSettings) {
    const p = settings.predictor;
    this.predictor = p.enabled
      ? new TrafficPredictor({
          intervalMs: p.intervalMs,
          subIntervals: p.subIntervals,
          hurst: p.hurst,
          k: p.k,
        })
      : null;
    this.capacity = settings.requestCapacity;
    this.upper = settings.requestUpper;
  }

  /** One monitor sample's request count (one sub-interval), at monotonic `atMs`. */
  push(requests: number, atMs: number): void {
    this.predictor?.push(requests, atMs);
  }

  /** Predicted requests/s for the next interval, or null (disabled, or not a whole interval yet). */
  boundRate(): number | null {
    return this.predictor?.boundRateForNext() ?? null;
  }

  /** The bound is above the upper threshold of the request capacity. */
  heavy(): boolean {
    const bound = this.boundRate();
    return bound !== null && this.capacity > 0 && bound > this.upper * this.capacity;
  }

  /** Requests/s the bound exceeds the middle of the desired band by. */
  excess(m: Measure | null): number {
    const mid = m ? (m.lower + m.upper) / 2 : this.upper;
    return (this.boundRate() ?? 0) - mid * this.capacity;
  }
}
