// Light / desired / heavy classification of one resource, with EWMA smoothing, a hysteresis
// margin and a dwell count, so that noise around a threshold does not flap the region.

export type Region = 'light' | 'desired' | 'heavy';

/** Order of business: the busiest resource decides the overall region. */
export const REGION_RANK: Readonly<Record<Region, number>> = { light: 0, desired: 1, heavy: 2 };

export interface ClassifierSettings {
  /** EWMA weight of a new value, (0, 1]; 1 = no smoothing. */
  readonly smoothing: number;
  /** Consecutive samples a new region must hold before the change is made. */
  readonly dwellSamples: number;
  /** Margin, as a fraction of capacity, beyond a threshold needed to leave the current region. */
  readonly hysteresis: number;
}

export interface Thresholds {
  /** Fractions of capacity: below `lower` is light, above `upper` is heavy. */
  readonly lower: number;
  readonly upper: number;
}

/** The plain region of a utilisation (fraction of capacity), without hysteresis. */
export function plainRegion(utilisation: number, t: Thresholds): Region {
  if (utilisation > t.upper) return 'heavy';
  if (utilisation < t.lower) return 'light';
  return 'desired';
}

/**
 * The region `utilisation` points to when the resource is in `current`: each threshold is
 * moved `margin` away from the current region, so leaving it needs a clear crossing, while
 * values just past a threshold keep the region they already have.
 */
export function candidateRegion(current: Region, utilisation: number, t: Thresholds, margin: number): Region {
  const lower = current === 'light' ? t.lower + margin : t.lower - margin;
  const upper = current === 'heavy' ? t.upper - margin : t.upper + margin;
  if (utilisation > upper) return 'heavy';
  if (utilisation < lower) return 'light';
  return 'desired';
}

/** A committed change, with what is needed to explain it. */
export interface RegionChange {
  readonly from: Region;
  readonly to: Region;
  /** Smoothed value (resource unit) and its fraction of capacity when the change was made. */
  readonly value: number;
  readonly utilisation: number;
  /** The threshold that was crossed, and in which direction. */
  readonly threshold: 'lower' | 'upper';
  readonly direction: 'above' | 'below';
  /** Samples the new region held (the dwell count). */
  readonly samples: number;
}

/** Mutable state of one resource's classification. Cost per push: a few arithmetic operations. */
export class RegionClassifier {
  private settings: ClassifierSettings;
  private current: Region = 'light';
  private ewma: number | null = null;
  private pending: Region | null = null;
  private pendingCount = 0;

  constructor(settings: ClassifierSettings) {
    this.settings = settings;
  }

  get region(): Region {
    return this.current;
  }

  /** Smoothed value in the resource's unit; null before the first push. */
  get smoothed(): number | null {
    return this.ewma;
  }

  /** The region waiting out its dwell, and how many samples it has held so far. */
  get pendingRegion(): { region: Region; samples: number } | null {
    return this.pending ? { region: this.pending, samples: this.pendingCount } : null;
  }

  /** New settings (config reload) keep the current region and smoothed value. */
  configure(settings: ClassifierSettings): void {
    this.settings = settings;
  }

  /** Forget everything: back to light with no history (a resource re-enabled by a reload). */
  reset(): void {
    this.current = 'light';
    this.ewma = null;
    this.pending = null;
    this.pendingCount = 0;
  }

  /** Adds one raw value; returns the change if this value completed a region's dwell. */
  push(value: number, capacity: number, t: Thresholds): RegionChange | null {
    const v = Number.isFinite(value) && value > 0 ? value : 0;
    const a = this.settings.smoothing;
    this.ewma = this.ewma === null ? v : a * v + (1 - a) * this.ewma;
    const utilisation = capacity > 0 ? this.ewma / capacity : 0;
    const next = candidateRegion(this.current, utilisation, t, this.settings.hysteresis);
    if (next === this.current) {
      this.pending = null;
      this.pendingCount = 0;
      return null;
    }
    if (next === this.pending) this.pendingCount++;
    else {
      this.pending = next;
      this.pendingCount = 1;
    }
    if (this.pendingCount < this.settings.dwellSamples) return null;
    const from = this.current;
    const up = REGION_RANK[next] > REGION_RANK[from];
    const change: RegionChange = {
      from,
      to: next,
      value: this.ewma,
      utilisation,
      // Going up into heavy or down into desired crosses `upper`; the other two cross `lower`.
      threshold: (up ? next === 'heavy' : next === 'desired') ? 'upper' : 'lower',
      direction: up ? 'above' : 'below',
      samples: this.pendingCount,
    };
    this.current = next;
    this.pending = null;
    this.pendingCount = 0;
    return change;
  }
}
