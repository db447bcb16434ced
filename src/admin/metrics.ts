// Prometheus metrics for /metrics: the proxy's counters, the monitor's regions, process defaults.
import { Counter, Gauge, Registry, collectDefaultMetrics, type Metric } from 'prom-client';
import { registerRescueMetrics, type RescueMetricsSource } from './rescue-metrics.js';
import { LATENCY_BUCKETS_MS, type ProxyStatsSnapshot } from '../../proxy/stats.js';
import type { WorkloadMonitor } from '../monitor/monitor.js';
import { RESOURCE_NAMES } from '../monitor/format.js';
import { REGION_RANK } from '../monitor/regions.js';

/** Prometheus bucket bounds (seconds) the fine internal histogram is folded into. */
const PROM_BUCKETS_S = [
  0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60,
];

/**
 * For each internal bucket, the first Prometheus bucket whose bound is at or above the internal
 * bucket's upper bound. A bucket straddling a bound is counted above it, so folded counts err
 * towards slower, never faster. Computed once.
 */
const FOLD: readonly number[] = LATENCY_BUCKETS_MS.map((ms) => {
  const i = PROM_BUCKETS_S.findIndex((s) => ms <= s * 1000 * (1 + 1e-9));
  return i < 0 ? PROM_BUCKETS_S.length : i;
});

/** Representative value (ms) of each internal bucket for the _sum: geometric middle of its bounds. */
const MIDDLE_MS: readonly number[] = LATENCY_BUCKETS_MS.map((hi, i) => {
  const lo = i === 0 ? hi / 2 : LATENCY_BUCKETS_MS[i - 1]!;
  return Number.isFinite(hi) ? Math.sqrt(lo * hi) : lo;
});

interface HistogramValue {
  metricName: string;
  labels: Record<string, string | number>;
  value: number;
}

/**
 * A histogram read from a cumulative bucket array owned by the data path. prom-client's own
 * Histogram only supports observe(), which would mean a second per-request cost on the hot
 * path; this reads the existing counts at scrape time instead. It implements the small
 * interface Registry uses (name, help, type, aggregator, get, reset).
 */
class FoldedHistogram {
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  constructor(
    readonly name: string,
    readonly help: string,
    private readonly counts: () => readonly number[],
  ) {}

  get(): { name: string; help: string; type: string; aggregator: string; values: HistogramValue[] } {
    const folded = new Array<number>(PROM_BUCKETS_S.length + 1).fill(0);
    let sumMs = 0;
    let count = 0;
    this.counts().forEach((n, i) => {
      if (n === 0) return;
      folded[FOLD[i]!]! += n;
      sumMs += n * MIDDLE_MS[i]!;
      count += n;
    });
    const values: HistogramValue[] = [];
    let cumulative = 0;
    PROM_BUCKETS_S.forEach((le, i) => {
      cumulative += folded[i]!;
      values.push({ metricName: `${this.name}_bucket`, labels: { le }, value: cumulative });
    });
    values.push({ metricName: `${this.name}_bucket`, labels: { le: '+Inf' }, value: count });
    values.push({ metricName: `${this.name}_sum`, labels: {}, value: sumMs / 1000 });
    values.push({ metricName: `${this.name}_count`, labels: {}, value: count });
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }

  reset(): void {
    // Counts belong to the data path and are never reset.
  }
}

/** Builds a registry whose metrics are read from `stats()` and `monitor` at scrape time. */
export function createAdminRegistry(
  stats: () => ProxyStatsSnapshot,
  monitor: WorkloadMonitor,
  rescue?: RescueMetricsSource,
): Registry {
  const registry = new Registry();
  if (rescue !== undefined) registerRescueMetrics(registry, rescue);
  collectDefaultMetrics({ register: registry });
  // Each collector takes its own snapshot: a few array copies per scrape, and no ordering
  // assumptions about how the registry calls collectors.
  const current = stats;

  const mirror = (name: string, help: string, read: (s: ProxyStatsSnapshot) => number): void => {
    new Counter({
      name,
      help,
      registers: [registry],
      collect() {
        this.reset();
        this.inc(read(current()));
      },
    });
  };

  new Counter({
    name: 'dotslash_requests_total',
    help: 'Requests whose response finished, by status class.',
    labelNames: ['status_class'],
    registers: [registry],
    collect() {
      const snap = current();
      this.reset();
      for (const [cls, n] of Object.entries(snap.status)) this.inc({ status_class: cls }, n);
    },
  });
  mirror('dotslash_bytes_in_total', 'Request bytes received from clients (head and body).', (s) => s.bytesIn);
  mirror('dotslash_bytes_out_total', 'Response bytes sent to clients (head and body).', (s) => s.bytesOut);
  mirror(
    'dotslash_upstream_errors_total',
    'Upstream connect failures, resets, timeouts and 5xx answers.',
    (s) => s.upstreamErrors,
  );
  mirror(
    'dotslash_client_errors_total',
    'Requests refused as malformed or too large.',
    (s) => s.clientErrors,
  );
  new Gauge({
    name: 'dotslash_active_requests',
    help: 'Requests in flight.',
    registers: [registry],
    collect() {
      this.set(current().active);
    },
  });
  new Gauge({
    name: 'dotslash_client_connections',
    help: 'Open client connections.',
    registers: [registry],
    collect() {
      this.set(current().connections);
    },
  });
  for (const [name, help, pick] of [
    [
      'dotslash_request_duration_seconds',
      'Total request time, client view.',
      (s: ProxyStatsSnapshot) => s.totalLatency,
    ],
    [
      'dotslash_upstream_duration_seconds',
      'Upstream time, request sent to response end.',
      (s: ProxyStatsSnapshot) => s.upstreamLatency,
    ],
  ] as const) {
    registry.registerMetric(new FoldedHistogram(name, help, () => pick(current())) as unknown as Metric);
  }

  new Gauge({
    name: 'dotslash_load_region',
    help: 'Load region per resource and overall: 0 light, 1 desired, 2 heavy (absent = disabled).',
    labelNames: ['resource'],
    registers: [registry],
    collect() {
      const st = monitor.status();
      this.reset();
      this.set({ resource: 'overall' }, REGION_RANK[st.region]);
      for (const name of RESOURCE_NAMES) {
        const r = st.resources[name];
        if (r.region !== null) this.set({ resource: name }, REGION_RANK[r.region]);
      }
    },
  });
  const perResource = (name: string, help: string, pick: 'value' | 'capacity' | 'utilisation'): void => {
    new Gauge({
      name,
      help,
      labelNames: ['resource'],
      registers: [registry],
      collect() {
        const st = monitor.status();
        this.reset();
        for (const res of RESOURCE_NAMES) {
          const v = st.resources[res][pick];
          if (v !== null && st.resources[res].region !== null) this.set({ resource: res }, v);
        }
      },
    });
  };
  perResource(
    'dotslash_resource_utilisation',
    'Smoothed value / capacity per monitored resource.',
    'utilisation',
  );
  perResource(
    'dotslash_resource_value',
    'Smoothed value per resource (cores, bytes/s, requests/s).',
    'value',
  );
  perResource('dotslash_resource_capacity', 'Configured capacity per resource.', 'capacity');
  new Gauge({
    name: 'dotslash_latency_seconds',
    help: 'Request time percentiles over the last monitor interval.',
    labelNames: ['quantile'],
    registers: [registry],
    collect() {
      const lat = monitor.status().latency;
      this.reset();
      if (!lat) return;
      for (const [q, v] of [
        ['0.5', lat.p50],
        ['0.95', lat.p95],
        ['0.99', lat.p99],
      ] as const) {
        if (v !== null) this.set({ quantile: q }, v / 1000);
      }
    },
  });
  new Gauge({
    name: 'dotslash_upstream_error_ratio',
    help: 'Upstream errors / requests over the last monitor interval (reported, not counted as load).',
    registers: [registry],
    collect() {
      this.set(monitor.status().upstreamErrorRatio ?? 0);
    },
  });
  return registry;
}
