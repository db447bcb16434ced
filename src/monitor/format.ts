// Human-readable values and region-change reasons for logs, events and /status.
import type { RegionChange, Thresholds } from './regions.js';

export type ResourceName = 'cpu' | 'bytes_out' | 'bytes_in' | 'request_rate';
export const RESOURCE_NAMES: readonly ResourceName[] = ['cpu', 'bytes_out', 'bytes_in', 'request_rate'];

export const RESOURCE_UNITS = {
  cpu: 'cores',
  bytes_out: 'bytes/s',
  bytes_in: 'bytes/s',
  request_rate: 'requests/s',
} as const satisfies Record<ResourceName, string>;

/** "1.85 cores", "11.2 MB/s" (decimal units, like link speeds), "42.0 req/s". */
export function formatValue(resource: ResourceName, value: number): string {
  if (resource === 'cpu') return `${value.toFixed(2)} cores`;
  if (resource === 'request_rate') return `${value.toFixed(1)} req/s`;
  if (value >= 1e9) return `${(value / 1e9).toFixed(1)} GB/s`;
  if (value >= 1e6) return `${(value / 1e6).toFixed(1)} MB/s`;
  if (value >= 1e3) return `${(value / 1e3).toFixed(1)} kB/s`;
  return `${Math.round(value)} B/s`;
}

export function formatPercent(fraction: number): string {
  return `${Math.round(fraction * 100)}%`;
}

/** e.g. "bytes_out 11.2 MB/s = 90% of 12.5 MB/s capacity, above upper 80% for 3 samples". */
export function regionReason(
  resource: ResourceName,
  change: RegionChange,
  capacity: number,
  t: Thresholds,
): string {
  const limit = change.threshold === 'upper' ? t.upper : t.lower;
  const n = change.samples;
  return (
    `${resource} ${formatValue(resource, change.value)} = ${formatPercent(change.utilisation)} of ` +
    `${formatValue(resource, capacity)} capacity, ${change.direction} ${change.threshold} ` +
    `${formatPercent(limit)} for ${n} sample${n === 1 ? '' : 's'}`
  );
}
