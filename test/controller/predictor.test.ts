// The WWW'03 multiple-time-scale predictor (src/controller/predictor.ts): exact arithmetic on
// small inputs, coverage and tightness on a seeded self-similar trace, and how early it sees a
// flash crowd compared with the workload monitor's smoothed heavy region.
import { describe, expect, it } from 'vitest';
import { TrafficPredictor, type Prediction } from '../../src/controller/predictor.js';
import { RegionClassifier } from '../../src/monitor/regions.js';
import { syntheticTrace } from './trace.js';

/** Feed per-second counts with push(); the prediction after each second (null before T). */
function feed(trace: readonly number[], p = new TrafficPredictor()): Array<Prediction | null> {
  return trace.map((c, i) => {
    p.push(c, (i + 1) * 1000);
    return p.latest;
  });
}

const sum = (xs: readonly number[]): number => xs.reduce((a, b) => a + b, 0);

describe('arithmetic', () => {
  it('needs a whole interval before it predicts', () => {
    const p = new TrafficPredictor({ intervalMs: 10_000, subIntervals: 10 });
    for (let i = 0; i < 9; i++) expect(p.push(100, i * 1000)).toBeNull();
    expect(p.boundForNext()).toBeNull();
    expect(p.push(100, 9_000)).not.toBeNull();
  });

  it('flat traffic: the bound is the current volume', () => {
    const p = new TrafficPredictor();
    feed(Array(12).fill(100), p);
    expect(p.boundForNext()).toBe(1000);
    expect(p.boundRateForNext()).toBe(100);
  });

  it("bound = V + n^H mu(D(T')) + k n^H sigma(D(T')) over the last n sub-intervals", () => {
    const H = 0.85;
    const p = new TrafficPredictor({ intervalMs: 5_000, subIntervals: 5, hurst: H, k: 2 });
    // Only the last 5 count: 10, 12, 11, 15, 20 -> differences 2, -1, 4, 5.
    feed([999, 999, 10, 12, 11, 15, 20], p);
    const d = [2, -1, 4, 5];
    const mu = sum(d) / 4;
    const sd = Math.sqrt(sum(d.map((x) => (x - mu) ** 2)) / 3);
    const scale = 5 ** H;
    const pred = p.latest!;
    expect(pred.volume).toBe(68);
    expect(pred.mean).toBeCloseTo(scale * mu, 9);
    expect(pred.sigma).toBeCloseTo(scale * sd, 9);
    expect(pred.bound).toBeCloseTo(68 + scale * mu + 2 * scale * sd, 9);
    expect(pred.boundRate).toBeCloseTo(pred.bound / 5, 9);
  });

  it('never predicts a negative volume', () => {
    const p = new TrafficPredictor({ k: 0 });
    feed([1000, 900, 700, 500, 300, 100, 0, 0, 0, 0], p);
    expect(p.boundForNext()).toBeGreaterThanOrEqual(0);
  });

  it('refuses settings the method cannot use', () => {
    expect(() => new TrafficPredictor({ subIntervals: 2 })).toThrow(RangeError);
    expect(() => new TrafficPredictor({ hurst: 1 })).toThrow(RangeError);
    expect(() => new TrafficPredictor({ intervalMs: 0 })).toThrow(RangeError);
    expect(() => new TrafficPredictor({ k: -1 })).toThrow(RangeError);
  });
});

describe('record(count, atMs): counts over spans, on an uneven clock', () => {
  it("on the T' cadence it matches push()", () => {
    const trace = syntheticTrace({ seed: 11, seconds: 60, baseRate: 200, sources: 10, alpha: 1.3 });
    const a = new TrafficPredictor();
    const b = new TrafficPredictor();
    trace.forEach((c, i) => {
      a.push(c, 5_000 + (i + 1) * 1000);
      b.record(c, 5_000 + (i + 1) * 1000);
    });
    expect(b.boundForNext()).toBeCloseTo(a.boundForNext()!, 6);
  });

  it('spreads a count over the sub-intervals its span covers (a late or missed tick)', () => {
    const p = new TrafficPredictor({ intervalMs: 10_000, subIntervals: 10 });
    let t = 0;
    for (let i = 0; i < 8; i++) p.record(100, (t += 1000));
    // One tick is missed: the next record covers 2 s with 200 requests.
    p.record(200, (t += 2000));
    expect(p.latest!.volume).toBeCloseTo(1000, 9);
    expect(p.latest!.sigma).toBeCloseTo(0, 9);
    // Jitter: ticks 300 ms late then 300 ms early; the volume is conserved.
    p.record(130, (t += 1300));
    p.record(70, (t += 700));
    expect(p.latest!.volume).toBeCloseTo(1000, 6);
  });

  it('starts over after a gap longer than the interval', () => {
    const p = new TrafficPredictor();
    for (let i = 1; i <= 12; i++) p.record(100, i * 1000);
    expect(p.boundForNext()).not.toBeNull();
    p.record(5, 60_000);
    expect(p.boundForNext()).toBeNull();
  });
});

describe('on a seeded self-similar trace (Pareto on/off sources, H about 0.85)', () => {
  // Mean 200 req/s, per-second CV about 0.3, bursts at every time scale.
  const traces = [1, 2, 3].map((seed) =>
    syntheticTrace({ seed, seconds: 3600, baseRate: 200, sources: 10, alpha: 1.3 }),
  );

  it('the trace is self-similar enough to be a fair test (variance-time H estimate 0.75-0.95)', () => {
    for (const trace of traces) {
      const pts: Array<[number, number]> = [];
      for (const m of [1, 2, 4, 8, 16, 32, 64]) {
        const agg: number[] = [];
        for (let i = 0; i + m <= trace.length; i += m) agg.push(sum(trace.slice(i, i + m)) / m);
        const mu = sum(agg) / agg.length;
        pts.push([Math.log(m), Math.log(sum(agg.map((x) => (x - mu) ** 2)) / agg.length)]);
      }
      const mx = sum(pts.map((q) => q[0])) / pts.length;
      const my = sum(pts.map((q) => q[1])) / pts.length;
      const slope = sum(pts.map(([x, y]) => (x - mx) * (y - my))) / sum(pts.map(([x]) => (x - mx) ** 2));
      const h = 1 + slope / 2; // Var(X^(m)) ~ m^(2H - 2)
      expect(h).toBeGreaterThan(0.75);
      expect(h).toBeLessThan(0.95);
    }
  });

  it('covers the next interval in >= 95% of intervals and is not loose', () => {
    for (const trace of traces) {
      const preds = feed(trace);
      // Non-overlapping intervals: predict at the end of each 10 s interval for the next one.
      const rows: Array<{ bound: number; volume: number; actual: number }> = [];
      for (let i = 9; i + 10 < trace.length; i += 10) {
        const p = preds[i]!;
        rows.push({ bound: p.bound, volume: p.volume, actual: sum(trace.slice(i + 1, i + 11)) });
      }
      const covered = rows.filter((r) => r.bound >= r.actual).length / rows.length;
      expect(covered).toBeGreaterThanOrEqual(0.95);

      // Tightness 1: headroom in units of the real sigma(D(T)) measured in hindsight. A bound
      // that knew mu and sigma of D(T) exactly would sit k = 3 sigma above on average; the
      // estimate from inside one interval may cost at most one sigma more.
      const d = rows.map((r) => r.actual - r.volume);
      const md = sum(d) / d.length;
      const sigmaD = Math.sqrt(sum(d.map((x) => (x - md) ** 2)) / d.length);
      const headroom = sum(rows.map((r) => r.bound - r.actual)) / rows.length;
      expect(headroom / sigmaD).toBeLessThan(4);

      // Tightness 2: against the best fixed multiplier of the current volume chosen in
      // hindsight for the same coverage, the bound is no more than 15% looser on average.
      const ratios = rows.map((r) => r.actual / r.volume).sort((a, b) => a - b);
      const c = ratios[Math.min(ratios.length - 1, Math.ceil(covered * ratios.length) - 1)]!;
      const meanRatio = sum(rows.map((r) => r.bound / r.actual)) / rows.length;
      const hindsight = sum(rows.map((r) => (c * r.volume) / r.actual)) / rows.length;
      expect(meanRatio).toBeLessThan(2);
      expect(meanRatio / hindsight).toBeLessThan(1.15);
    }
  });
});

describe('a flash crowd: the predictor crosses before the monitor turns heavy', () => {
  // The monitor's defaults (src/config/schema.ts): EWMA 0.3, dwell 3 samples, hysteresis 0.05,
  // heavy above 0.8 of capacity. Capacity 1000 req/s; the crowd brings 10x the 200 req/s base.
  const CAPACITY = 1000;
  const UPPER = 0.8;

  function crossings(trace: readonly number[], crowdAt: number) {
    const p = new TrafficPredictor();
    const monitor = new RegionClassifier({ smoothing: 0.3, dwellSamples: 3, hysteresis: 0.05 });
    let predictor = -1;
    let heavy = -1;
    let falseAlarms = 0;
    trace.forEach((c, s) => {
      p.push(c, (s + 1) * 1000);
      monitor.push(c, CAPACITY, { lower: 0.5, upper: UPPER });
      const rate = p.boundRateForNext();
      // Early SOS rule: the next interval's bound exceeds the heavy threshold.
      if (rate !== null && rate > UPPER * CAPACITY) {
        if (s < crowdAt) falseAlarms++;
        else if (predictor < 0) predictor = s;
      }
      if (heavy < 0 && s >= crowdAt && monitor.region === 'heavy') heavy = s;
    });
    return { predictor, heavy, falseAlarms };
  }

  for (const rampS of [0, 10, 30, 60]) {
    it(`${rampS === 0 ? 'a step' : `a ${rampS} s ramp`} to 10x: no false alarm before, an earlier alarm after`, () => {
      for (const seed of [7, 8, 9]) {
        const trace = syntheticTrace({
          seed,
          seconds: 900,
          baseRate: 200,
          sources: 10,
          alpha: 1.3,
          crowd: { atS: 600, factor: 10, rampS },
        });
        const x = crossings(trace, 600);
        expect(x.falseAlarms, `seed ${seed}`).toBe(0);
        expect(x.predictor, `seed ${seed}`).toBeGreaterThanOrEqual(600);
        expect(x.heavy, `seed ${seed}`).toBeGreaterThan(x.predictor);
        if (rampS === 0) expect(x.predictor, `seed ${seed}`).toBe(600); // the very first second
      }
    });
  }
});
