// The controller's arithmetic on numbers: the Pr it steers to, saturated or not (slide 18).
import { describe, expect, it } from 'vitest';
import {
  desiredUtil,
  grantRate,
  spareRate,
  stepPr,
  targetPr,
  type Measure,
} from '../../src/controller/policy.js';

const m = (over: Partial<Measure>): Measure => ({
  region: 'heavy',
  util: 1,
  lower: 0.5,
  upper: 0.8,
  rate: 100,
  requestCapacity: 10,
  ...over,
});

describe('targetPr', () => {
  it('unsaturated: the utilisation and the arrival rate give the same Pr', () => {
    // 20 req/s arrive, capacity 10: utilisation 2 (not capped), u* = 0.65 -> keep 6.5 req/s here.
    const t = targetPr(0, m({ util: 2, rate: 20 }));
    expect(t).toBeCloseTo(1 - 6.5 / 20, 6);
  });

  it('saturated (utilisation stuck at ~1 behind a queue): asks by arrivals, not by utilisation', () => {
    // 100 req/s arrive at a site that can serve 10: byUtil would say 0.35, the need is 0.935.
    const t = targetPr(0, m({ util: 1, rate: 100 }));
    expect(t).toBeCloseTo(1 - 6.5 / 100, 6);
    expect(t * 100).toBeCloseTo(93.5, 6); // the redirect rate the SOS asks for
  });

  it('light: the utilisation (exact when unsaturated) decides, not the noisier arrival estimate', () => {
    // byUtil = 1 - 0.65 x 0.5 / 0.2 < 0 -> 0; the arrival estimate alone would have said 0.935.
    expect(targetPr(0.5, m({ region: 'light', util: 0.2, rate: 100 }))).toBe(0);
  });

  it('without a request_rate capacity it falls back to the utilisation formula', () => {
    expect(targetPr(0, m({ util: 1, requestCapacity: 0 }))).toBeCloseTo(1 - desiredUtil(m({})), 6);
  });

  it('at Pr 1 it can still come down (1% counted as served here), and no load means Pr 0', () => {
    expect(targetPr(1, m({ util: 0.1, rate: 1, region: 'light' }))).toBeLessThan(1);
    expect(targetPr(0.5, m({ util: 0 }))).toBe(0);
  });
});

describe('stepPr, grantRate, spareRate', () => {
  it('moves Pr by at most the step, drops tiny leftovers', () => {
    expect(stepPr(0, 0.9, 0.2)).toBeCloseTo(0.2, 9);
    expect(stepPr(0.5, 0, 0.2)).toBeCloseTo(0.3, 9);
    expect(stepPr(0.004, 0, 0.2)).toBe(0);
  });
  it('grants what is wanted within what can be spared', () => {
    expect(grantRate(95, 100)).toBe(95);
    expect(grantRate(95, 40)).toBe(40);
    // capacity 200, max_share 0.5, nothing granted, light (util 0.1 of band 0.5-0.8): budget 100, headroom 110
    expect(spareRate(m({ util: 0.1, region: 'light' }), 200, 0.5, 0)).toBe(100);
    expect(spareRate(m({ util: 0.1, region: 'light' }), 200, 0.5, 80)).toBe(20);
  });
});
