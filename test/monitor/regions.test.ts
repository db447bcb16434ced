// Region classification: EWMA smoothing, hysteresis margin and dwell count on synthetic values.
import { describe, expect, it } from 'vitest';
import { candidateRegion, plainRegion, RegionClassifier, type Region } from '../../src/monitor/regions.js';
import { regionReason, formatValue } from '../../src/monitor/format.js';

const t = { lower: 0.5, upper: 0.8 };

/** Pushes values (as utilisations of capacity 100) and returns the region after each. */
function run(c: RegionClassifier, utilisations: number[]): Region[] {
  return utilisations.map((u) => {
    c.push(u * 100, 100, t);
    return c.region;
  });
}

describe('plainRegion / candidateRegion', () => {
  it('splits utilisation at the thresholds', () => {
    expect(plainRegion(0.2, t)).toBe('light');
    expect(plainRegion(0.5, t)).toBe('desired');
    expect(plainRegion(0.8, t)).toBe('desired');
    expect(plainRegion(0.81, t)).toBe('heavy');
  });

  it('needs a clear crossing (the margin) to leave the current region', () => {
    expect(candidateRegion('light', 0.52, t, 0.05)).toBe('light');
    expect(candidateRegion('light', 0.56, t, 0.05)).toBe('desired');
    expect(candidateRegion('desired', 0.83, t, 0.05)).toBe('desired');
    expect(candidateRegion('desired', 0.86, t, 0.05)).toBe('heavy');
    expect(candidateRegion('heavy', 0.77, t, 0.05)).toBe('heavy');
    expect(candidateRegion('heavy', 0.74, t, 0.05)).toBe('desired');
    expect(candidateRegion('desired', 0.47, t, 0.05)).toBe('desired');
    expect(candidateRegion('desired', 0.44, t, 0.05)).toBe('light');
    expect(candidateRegion('heavy', 0.1, t, 0.05)).toBe('light');
  });
});

describe('RegionClassifier', () => {
  it('starts light and moves only after the dwell count', () => {
    const c = new RegionClassifier({ smoothing: 1, dwellSamples: 3, hysteresis: 0.05 });
    expect(run(c, [0.1, 0.95, 0.95])).toEqual(['light', 'light', 'light']);
    expect(c.pendingRegion).toEqual({ region: 'heavy', samples: 2 });
    expect(run(c, [0.95])).toEqual(['heavy']);
    expect(c.pendingRegion).toBeNull();
  });

  it('does not flap on noise around a threshold', () => {
    const c = new RegionClassifier({ smoothing: 1, dwellSamples: 3, hysteresis: 0.05 });
    run(c, [0.9, 0.9, 0.9]);
    expect(c.region).toBe('heavy');
    // Alternating just above and below the upper threshold (inside the margin): stays heavy.
    const noisy = Array.from({ length: 40 }, (_, i) => (i % 2 ? 0.83 : 0.77));
    expect(new Set(run(c, noisy))).toEqual(new Set(['heavy']));
    // Single dips below the margin, never three in a row: still heavy.
    expect(new Set(run(c, [0.6, 0.6, 0.9, 0.6, 0.9, 0.6, 0.6, 0.9]))).toEqual(new Set(['heavy']));
    // Three in a row: leaves.
    expect(run(c, [0.6, 0.6, 0.6])).toEqual(['heavy', 'heavy', 'desired']);
  });

  it('smooths with an EWMA so a single spike does not count', () => {
    const c = new RegionClassifier({ smoothing: 0.3, dwellSamples: 1, hysteresis: 0 });
    c.push(10, 100, t);
    expect(c.smoothed).toBe(10);
    const change = c.push(200, 100, t); // 0.3 * 200 + 0.7 * 10 = 67 -> desired, not heavy
    expect(c.smoothed).toBeCloseTo(67);
    expect(change?.to).toBe('desired');
    expect(c.region).toBe('desired');
  });

  it('reports the crossed threshold and direction for every kind of change', () => {
    const c = new RegionClassifier({ smoothing: 1, dwellSamples: 2, hysteresis: 0 });
    const changes: string[] = [];
    for (const u of [0.6, 0.6, 0.9, 0.9, 0.7, 0.7, 0.1, 0.1, 0.95, 0.95, 0.1, 0.1]) {
      const ch = c.push(u * 100, 100, t);
      if (ch) changes.push(`${ch.from}->${ch.to} ${ch.direction} ${ch.threshold} x${ch.samples}`);
    }
    expect(changes).toEqual([
      'light->desired above lower x2',
      'desired->heavy above upper x2',
      'heavy->desired below upper x2',
      'desired->light below lower x2',
      'light->heavy above upper x2',
      'heavy->light below lower x2',
    ]);
  });

  it('keeps its region across configure() and forgets it on reset()', () => {
    const c = new RegionClassifier({ smoothing: 1, dwellSamples: 1, hysteresis: 0 });
    c.push(90, 100, t);
    c.configure({ smoothing: 0.5, dwellSamples: 5, hysteresis: 0.1 });
    expect(c.region).toBe('heavy');
    c.reset();
    expect(c.region).toBe('light');
    expect(c.smoothed).toBeNull();
  });

  it('treats negative or non-finite values as zero', () => {
    const c = new RegionClassifier({ smoothing: 1, dwellSamples: 1, hysteresis: 0 });
    c.push(Number.NaN, 100, t);
    expect(c.smoothed).toBe(0);
    c.push(-5, 100, t);
    expect(c.smoothed).toBe(0);
  });
});

describe('region reasons', () => {
  it('reads like the issue example', () => {
    const reason = regionReason(
      'bytes_out',
      {
        from: 'desired',
        to: 'heavy',
        value: 11_200_000,
        utilisation: 0.896,
        threshold: 'upper',
        direction: 'above',
        samples: 3,
      },
      12_500_000,
      t,
    );
    expect(reason).toBe('bytes_out 11.2 MB/s = 90% of 12.5 MB/s capacity, above upper 80% for 3 samples');
  });

  it('formats each unit', () => {
    expect(formatValue('cpu', 1.853)).toBe('1.85 cores');
    expect(formatValue('request_rate', 42)).toBe('42.0 req/s');
    expect(formatValue('bytes_in', 2_500)).toBe('2.5 kB/s');
    expect(formatValue('bytes_in', 12)).toBe('12 B/s');
  });
});
