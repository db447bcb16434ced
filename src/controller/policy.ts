// The controller's arithmetic (slide 18), pure so it can be tested on numbers: the measurement it
// acts on, the redirect probability Pr it steers towards, and the rate Rr a rescuer grants.
import type { MonitorSample } from '../monitor/types.js';
import type { Region } from '../monitor/regions.js';

/** What one tick acts on: the busiest enabled resource (DESIGN.md "Workload monitoring"). */
export interface Measure {
  readonly region: Region;
  /** Busiest resource's utilisation (value / capacity). */
  readonly util: number;
  /** Its thresholds; the middle of the desired band is the target u*. */
  readonly lower: number;
  readonly upper: number;
  /** Requests/s arriving at the front (redirected ones included). */
  readonly rate: number;
  /** The request_rate capacity (requests/s the site is sized for); 0 when that resource is off. */
  readonly requestCapacity: number;
}

export function measureOf(sample: MonitorSample): Measure {
  let best: { util: number; lower: number; upper: number } | null = null;
  for (const r of Object.values(sample.resources)) {
    if (r.region === null || r.utilisation === null) continue;
    if (best === null || r.utilisation > best.util)
      best = { util: r.utilisation, lower: r.lower, upper: r.upper };
  }
  return {
    region: sample.region,
    util: best?.util ?? 0,
    lower: best?.lower ?? 0.5,
    upper: best?.upper ?? 0.8,
    rate: sample.rates.requests,
    requestCapacity: sample.resources.request_rate?.capacity ?? 0,
  };
}

/** u*: the middle of the desired band. */
export const desiredUtil = (m: Measure): number => (m.lower + m.upper) / 2;

const clamp01 = (x: number): number => (x < 0 ? 0 : x > 1 ? 1 : x);

/**
 * The Pr that would bring the local load to u*: the local load is proportional to the share
 * (1 - Pr) served here, so u* = u (1 - Pr') / (1 - Pr), i.e. Pr' = 1 - u* (1 - Pr) / u.
 */
export function targetPr(pr: number, m: Measure): number {
  if (!(m.util > 0)) return 0;
  // At Pr = 1 the formula gives 1 whatever the load (nothing is served here, so it cannot tell),
  // and a Pr of 1 would never come down or be released: count at least 1% as served here.
  const byUtil = clamp01(1 - (desiredUtil(m) * Math.max(1 - pr, 0.01)) / m.util);
  // A saturated site (a full uplink, a queue at the upstream) serves at its capacity however
  // many requests arrive, so its utilisation stops at ~1 and byUtil under-asks. The arrival rate
  // does not saturate: keep u* x capacity here and send the rest, Pr = 1 - u* capacity / rate.
  // Unsaturated, both give the same Pr; saturated, the arrival rate is the right one. Saturation
  // only shows while heavy: light, the utilisation is exact and the arrival estimate is the noisier.
  if (m.region !== 'heavy' || !(m.requestCapacity > 0) || !(m.rate > 0)) return byUtil;
  const byArrivals = clamp01(1 - (desiredUtil(m) * m.requestCapacity) / m.rate);
  return Math.max(byUtil, byArrivals);
}

/** Moves Pr towards `target` by at most `stepMax` (rescue.pr_step_max), so one noisy sample cannot swing it. */
export function stepPr(pr: number, target: number, stepMax: number): number {
  const d = Math.max(-stepMax, Math.min(stepMax, target - pr));
  const next = clamp01(pr + d);
  // Tiny leftovers would keep a rescue alive for nothing.
  return next < 0.005 ? 0 : next;
}

/** Request rate a rescuer can still give away: its budget (max_share of capacity) less what it granted, and its headroom now. */
export function spareRate(m: Measure | null, capacity: number, maxShare: number, granted: number): number {
  if (!(capacity > 0)) return 0;
  const budget = maxShare * capacity - granted;
  const headroom = m === null ? budget : Math.max(0, desiredUtil(m) - m.util) * capacity;
  // The epsilon keeps 0.65 - 0.55 = 0.0999... from costing a whole request/s.
  return Math.max(0, Math.floor(Math.min(budget, headroom) + 1e-6));
}

/** Rr for an SOS asking for `want`: what is wanted, within what can be spared (slide 18, "provide rescue"). */
export function grantRate(want: number, spare: number): number {
  return Math.max(0, Math.floor(Math.min(want, spare)));
}

/** Rr scaled down while heavy: in proportion to u* / u, and by at least 20% per step. */
export function lowerRate(rate: number, m: Measure): number {
  const f = m.util > 0 ? Math.min(0.8, desiredUtil(m) / m.util) : 0.8;
  return Math.floor(rate * f);
}
