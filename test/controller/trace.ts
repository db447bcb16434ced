// Seeded synthetic web traffic for the predictor tests: per-second request counts from a
// superposition of on/off sources with Pareto-distributed periods (heavy tails make the sum
// self-similar, H = (3 - alpha) / 2; Willinger et al. 1997), Poisson-like counting noise, and
// an optional flash crowd (a step or a ramp to a multiple of the base rate).

/** mulberry32: small, fast, seedable uniform [0, 1). */
export function rng(seed: number): () => number {
  let s = seed | 0;
  return () => {
    s = (s + 0x6d2b79f5) | 0;
    let x = Math.imul(s ^ (s >>> 15), 1 | s);
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

/** Standard normal by Box-Muller. */
function gaussian(u: () => number): number {
  const a = Math.max(u(), 1e-12);
  return Math.sqrt(-2 * Math.log(a)) * Math.cos(2 * Math.PI * u());
}

export interface TraceOptions {
  seed: number;
  seconds: number;
  /** Mean requests/s before any crowd. */
  baseRate: number;
  /** On/off sources; each emits baseRate * 2 / sources req/s while on (on half the time on average). */
  sources?: number;
  /** Pareto shape of on and off periods (1 < alpha < 2: heavy-tailed, H = (3 - alpha) / 2). */
  alpha?: number;
  /** Shortest on/off period, s. */
  minPeriodS?: number;
  /** Flash crowd: from `atS` the rate grows to `factor` x over `rampS` seconds (0 = a step) and stays. */
  crowd?: { atS: number; factor: number; rampS: number };
}

/** Per-second request counts. */
export function syntheticTrace(o: TraceOptions): number[] {
  const u = rng(o.seed);
  const sources = o.sources ?? 40;
  const alpha = o.alpha ?? 1.4;
  const xm = o.minPeriodS ?? 1;
  const pareto = (): number => xm / Math.pow(1 - u(), 1 / alpha);
  // Mean period xm * alpha / (alpha - 1); on and off alike, so each source is on half the time.
  const perSource = (2 * o.baseRate) / sources;
  const on: boolean[] = [];
  const left: number[] = [];
  for (let i = 0; i < sources; i++) {
    on.push(u() < 0.5);
    left.push(pareto() * u()); // start part-way through a period
  }
  const out: number[] = [];
  for (let t = 0; t < o.seconds; t++) {
    // Fraction of this second each source spends on.
    let rate = 0;
    for (let i = 0; i < sources; i++) {
      let pos = 0;
      let onTime = 0;
      while (pos < 1) {
        const step = Math.min(left[i]!, 1 - pos);
        if (on[i]) onTime += step;
        pos += step;
        left[i]! -= step;
        if (left[i]! <= 1e-12) {
          on[i] = !on[i];
          left[i] = pareto();
        }
      }
      rate += onTime * perSource;
    }
    const c = o.crowd;
    if (c !== undefined && t >= c.atS) {
      const ramp = c.rampS > 0 ? Math.min(1, (t - c.atS + 1) / c.rampS) : 1;
      rate *= 1 + (c.factor - 1) * ramp;
    }
    // Poisson counting noise (normal approximation, fine at these rates).
    out.push(Math.max(0, Math.round(rate + Math.sqrt(rate) * gaussian(u))));
  }
  return out;
}
