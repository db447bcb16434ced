// Plain-JSON shapes the workload monitor hands out: samples, region events and /status.
import type { RESOURCE_UNITS, ResourceName } from './format.js';
import type { Region } from './regions.js';

export interface ResourceStatus {
  /** Smoothed value in `unit`; null before the first sample. */
  readonly value: number | null;
  /** The last sample's unsmoothed value. */
  readonly raw: number | null;
  readonly unit: (typeof RESOURCE_UNITS)[ResourceName];
  /** In `unit`; 0 = resource disabled (region null). For cpu, 0 in config means all host cores. */
  readonly capacity: number;
  /** value / capacity. */
  readonly utilisation: number | null;
  readonly lower: number;
  readonly upper: number;
  readonly region: Region | null;
  /** A region the resource is heading to, waiting out the dwell count. */
  readonly pending: { readonly region: Region; readonly samples: number } | null;
}

export interface Percentiles {
  readonly p50: number | null;
  readonly p95: number | null;
  readonly p99: number | null;
}

export interface Rates {
  /** All finished requests per second, whatever their status. */
  readonly requests: number;
  /**
   * Requests per second served here: not ended in an upstream-caused 5xx and not answered with
   * a rescue redirect. This is the request_rate load: a 302 costs next to nothing, and the
   * controller's Pr arithmetic assumes local load falls as (1 - Pr).
   */
  readonly served: number;
  /** Rescue redirects (302 to a rescuer) issued per second. */
  readonly redirects: number;
  readonly bytesOut: number;
  readonly bytesIn: number;
  readonly upstreamErrors: number;
  readonly clientErrors: number;
}

export interface MonitorSample {
  /** Wall-clock time (ms since epoch), for display; rates use a monotonic clock. */
  readonly at: number;
  /** Span this sample's rates cover. */
  readonly elapsedMs: number;
  readonly rates: Rates;
  /** upstream errors / requests in this span; null when there were no requests. */
  readonly upstreamErrorRatio: number | null;
  /** Total request time (ms) percentiles in this span. */
  readonly latency: Percentiles;
  /** Upstream time (ms) percentiles in this span. */
  readonly upstreamLatency: Percentiles;
  readonly active: number;
  readonly connections: number;
  readonly cpu: {
    readonly cores: number;
    readonly hostCores: number;
    readonly missingPids: readonly number[];
  };
  readonly resources: Readonly<Record<ResourceName, ResourceStatus>>;
  /** The busiest enabled resource's region. */
  readonly region: Region;
}

export interface RegionEvent {
  /** 'overall' when the busiest resource's region (what the rescue controller acts on) changed. */
  readonly resource: ResourceName | 'overall';
  readonly from: Region;
  readonly to: Region;
  readonly reason: string;
  /** Smoothed value and capacity of the resource (for 'overall': of the busiest resource). */
  readonly value: number;
  readonly capacity: number;
  /** Wall-clock ms since epoch. */
  readonly at: number;
}

export interface MonitorStatus {
  readonly region: Region;
  /** Wall-clock ms since epoch of the last overall change (or of start). */
  readonly regionSince: number;
  readonly busiest: ResourceName | null;
  readonly resources: Readonly<Record<ResourceName, ResourceStatus>>;
  readonly rates: Rates | null;
  readonly upstreamErrorRatio: number | null;
  readonly latency: Percentiles | null;
  readonly upstreamLatency: Percentiles | null;
  readonly active: number | null;
  readonly connections: number | null;
  readonly cpu: {
    readonly source: 'host' | 'processes';
    readonly pids: readonly number[];
    readonly missingPids: readonly number[];
    readonly hostCores: number;
  };
  readonly net: { readonly source: 'proxy' | 'netdev'; readonly interface: string | null };
  readonly intervalMs: number;
  readonly samples: number;
  readonly lastSampleAt: number | null;
}
