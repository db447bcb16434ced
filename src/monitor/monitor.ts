// The workload monitor: samples CPU, byte and request rates, latency and upstream errors every
// interval, places each resource in the light / desired / heavy region and emits region changes.
import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import type { MonitorConfig } from '../config/schema.js';
import { percentileBetween, type ProxyStatsSnapshot } from '../../proxy/stats.js';
import { CpuMeter, type CpuReading } from './cpu.js';
import { assertLinux } from './errors.js';
import { RESOURCE_NAMES, RESOURCE_UNITS, regionReason, type ResourceName } from './format.js';
import { readInterfaceBytes, type InterfaceBytes } from './netdev.js';
import { REGION_RANK, RegionClassifier, type ClassifierSettings, type Region } from './regions.js';
import type {
  MonitorSample,
  MonitorStatus,
  Percentiles,
  Rates,
  RegionEvent,
  ResourceStatus,
} from './types.js';

export type { Region } from './regions.js';
export type { ResourceName } from './format.js';
export type * from './types.js';

export interface WorkloadMonitorOptions {
  readonly config: MonitorConfig;
  /** Cumulative data-path counters (ProxyStats.snapshot); diffed between samples. */
  readonly readStats: () => ProxyStatsSnapshot;
  readonly logger: Logger;
}

interface Sources {
  cpu: CpuMeter;
  net: { iface: string; prev: InterfaceBytes; prevAt: number } | null;
}

/**
 * One per daemon. Capacities come from config, so several daemons on one machine (tests, the
 * demo) each judge their own load. Upstream errors are reported but are not load: the
 * request_rate resource counts served requests only, so an outage does not look like a flash
 * crowd. Linux only (reads /proc).
 */
export class WorkloadMonitor extends EventEmitter {
  private config: MonitorConfig;
  private readonly readStats: () => ProxyStatsSnapshot;
  private readonly logger: Logger;
  private sources: Sources;
  private prevStats: ProxyStatsSnapshot;
  private readonly classifiers: Record<ResourceName, RegionClassifier>;
  private readonly raw: Record<ResourceName, number | null> = {
    cpu: null,
    bytes_out: null,
    bytes_in: null,
    request_rate: null,
  };
  private hostCores: number;
  private overall: Region = 'light';
  private overallSince = Date.now();
  private last: MonitorSample | null = null;
  private samples = 0;
  private timer: NodeJS.Timeout | null = null;
  private closed = false;

  constructor(opts: WorkloadMonitorOptions) {
    super();
    assertLinux();
    this.config = opts.config;
    this.readStats = opts.readStats;
    this.logger = opts.logger;
    this.sources = this.openSources(opts.config, null);
    this.hostCores = this.sources.cpu.hostCores;
    this.prevStats = this.readStats();
    const settings = classifierSettings(opts.config);
    this.classifiers = {
      cpu: new RegionClassifier(settings),
      bytes_out: new RegionClassifier(settings),
      bytes_in: new RegionClassifier(settings),
      request_rate: new RegionClassifier(settings),
    };
  }

  /** Samples every `interval_ms` until close(). Calling it again while running does nothing. */
  start(): void {
    if (this.closed || this.timer) return;
    this.timer = setInterval(() => this.tick(), this.config.interval_ms);
    // The listeners keep the daemon alive; the sampler alone should not.
    this.timer.unref();
  }

  /** Stops sampling. Idempotent; safe after a failed start. */
  close(): void {
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /**
   * SIGHUP reload: new capacities, thresholds and sources. Regions and smoothed values survive
   * (a reload is not a new workload) unless a resource is re-enabled or its source changes.
   * Throws (keeping the old config) if a new source cannot be read.
   */
  update(config: MonitorConfig): void {
    const sources = this.openSources(config, this.config);
    const old = this.config;
    this.config = config;
    this.sources = sources;
    const settings = classifierSettings(config);
    for (const name of RESOURCE_NAMES) {
      this.classifiers[name].configure(settings);
      const wasOff = name !== 'cpu' && old[name].capacity === 0;
      if (wasOff && config[name].capacity > 0) this.classifiers[name].reset();
    }
    if (old.cpu.source !== config.cpu.source || String(old.cpu.pids) !== String(config.cpu.pids)) {
      this.classifiers.cpu.reset();
    }
    if (old.net_source !== config.net_source || old.interface !== config.interface) {
      this.classifiers.bytes_out.reset();
      this.classifiers.bytes_in.reset();
    }
    if (this.timer && old.interval_ms !== config.interval_ms) {
      clearInterval(this.timer);
      this.timer = null;
      this.start();
    }
  }

  /** Takes one sample now (the timer calls this too); emits 'sample' and any 'region' events. */
  sampleNow(): MonitorSample {
    const now = performance.now();
    const wall = Date.now();
    // The one read that can fail (an interface that went away) comes before any state changes,
    // so a failed sample loses nothing: the next one covers the whole span.
    const netBytes = this.sources.net ? readInterfaceBytes(this.sources.net.iface) : null;
    const stats = this.readStats();
    const prev = this.prevStats;
    this.prevStats = stats;
    const seconds = Math.max(stats.at - prev.at, 1e-3) / 1000;
    const perSecond = (later: number, earlier: number): number => Math.max(0, later - earlier) / seconds;

    const requests = perSecond(stats.requests, prev.requests);
    const upstreamErrors = perSecond(stats.upstreamErrors, prev.upstreamErrors);
    let bytesOut = perSecond(stats.bytesOut, prev.bytesOut);
    let bytesIn = perSecond(stats.bytesIn, prev.bytesIn);
    const net = this.sources.net;
    if (net && netBytes) {
      const bytes = netBytes;
      const netSeconds = Math.max(now - net.prevAt, 1e-3) / 1000;
      bytesOut = Math.max(0, bytes.tx - net.prev.tx) / netSeconds;
      bytesIn = Math.max(0, bytes.rx - net.prev.rx) / netSeconds;
      net.prev = bytes;
      net.prevAt = now;
    }
    const cpu: CpuReading = this.sources.cpu.read(now) ?? {
      cores: 0,
      hostCores: this.hostCores,
      missingPids: [],
    };
    this.hostCores = cpu.hostCores;
    // Requests that ended in an upstream-caused error response are not load (an outage is not
    // a flash crowd). Upstream errors also count retries that then succeeded, and our own 5xx
    // answers include overload refusals (503), so only the smaller of the two is taken off.
    const failed = Math.min(
      perSecond(stats.upstreamErrors, prev.upstreamErrors),
      perSecond(stats.status['5xx'], prev.status['5xx']),
    );
    const redirects = perSecond(stats.redirects, prev.redirects);
    const rates: Rates = {
      requests,
      served: Math.max(0, requests - failed - redirects),
      redirects,
      bytesOut,
      bytesIn,
      upstreamErrors,
      clientErrors: perSecond(stats.clientErrors, prev.clientErrors),
    };

    const values: Record<ResourceName, number> = {
      cpu: cpu.cores,
      bytes_out: bytesOut,
      bytes_in: bytesIn,
      request_rate: rates.served,
    };
    const events: RegionEvent[] = [];
    for (const name of RESOURCE_NAMES) {
      this.raw[name] = values[name];
      const capacity = this.capacityOf(name);
      if (capacity <= 0) continue;
      const t = this.config[name];
      const change = this.classifiers[name].push(values[name], capacity, t);
      if (!change) continue;
      const reason = regionReason(name, change, capacity, t);
      events.push({
        resource: name,
        from: change.from,
        to: change.to,
        reason,
        value: change.value,
        capacity,
        at: wall,
      });
    }

    const resources = this.resourceStatuses();
    const busiest = busiestResource(resources);
    const region = busiest ? resources[busiest].region! : 'light';
    if (region !== this.overall) {
      const why = events.map((e) => e.reason).join('; ') || 'a reload disabled or reset a resource';
      const top = busiest ? resources[busiest] : null;
      events.push({
        resource: 'overall',
        from: this.overall,
        to: region,
        reason: `overall ${region} (busiest: ${busiest ?? 'none'}): ${why}`,
        value: top?.value ?? 0,
        capacity: top?.capacity ?? 0,
        at: wall,
      });
      this.overall = region;
      this.overallSince = wall;
    }

    const percentiles = (later: readonly number[], earlier: readonly number[]): Percentiles => ({
      p50: percentileBetween(earlier, later, 50),
      p95: percentileBetween(earlier, later, 95),
      p99: percentileBetween(earlier, later, 99),
    });
    const count = stats.requests - prev.requests;
    const sample: MonitorSample = {
      at: wall,
      elapsedMs: seconds * 1000,
      rates,
      upstreamErrorRatio:
        count > 0 ? Math.min(1, (stats.upstreamErrors - prev.upstreamErrors) / count) : null,
      latency: percentiles(stats.totalLatency, prev.totalLatency),
      upstreamLatency: percentiles(stats.upstreamLatency, prev.upstreamLatency),
      active: stats.active,
      connections: stats.connections,
      cpu: { cores: cpu.cores, hostCores: cpu.hostCores, missingPids: cpu.missingPids },
      resources,
      region,
    };
    this.last = sample;
    this.samples++;

    for (const e of events) {
      const level = e.resource === 'overall' && e.to === 'heavy' ? 'warn' : 'info';
      this.logger[level](
        { resource: e.resource, from: e.from, to: e.to, value: e.value, capacity: e.capacity },
        `load region ${e.from} -> ${e.to}: ${e.reason}`,
      );
    }
    this.emit('sample', sample);
    for (const e of events) this.emit('region', e);
    return sample;
  }

  /** Plain JSON for /status and the dashboard. */
  status(): MonitorStatus {
    const last = this.last;
    const resources = this.resourceStatuses();
    return {
      region: this.overall,
      regionSince: this.overallSince,
      busiest: busiestResource(resources),
      resources,
      rates: last?.rates ?? null,
      upstreamErrorRatio: last?.upstreamErrorRatio ?? null,
      latency: last?.latency ?? null,
      upstreamLatency: last?.upstreamLatency ?? null,
      active: last?.active ?? null,
      connections: last?.connections ?? null,
      cpu: {
        source: this.config.cpu.source,
        pids: this.config.cpu.pids,
        missingPids: last?.cpu.missingPids ?? [],
        hostCores: this.hostCores,
      },
      net: {
        source: this.config.net_source,
        interface: this.config.net_source === 'netdev' ? this.config.interface : null,
      },
      intervalMs: this.config.interval_ms,
      samples: this.samples,
      lastSampleAt: last?.at ?? null,
    };
  }

  private tick(): void {
    try {
      this.sampleNow();
    } catch (err) {
      // A failed read (e.g. an interface that went away) skips one sample, it does not stop the monitor.
      this.logger.error({ err }, 'workload monitor sample failed');
    }
  }

  /** cpu capacity 0 means "all host cores"; for the others 0 disables the resource. */
  private capacityOf(name: ResourceName): number {
    if (name === 'cpu') return this.config.cpu.capacity > 0 ? this.config.cpu.capacity : this.hostCores;
    return this.config[name].capacity;
  }

  private resourceStatuses(): Record<ResourceName, ResourceStatus> {
    const out = {} as Record<ResourceName, ResourceStatus>;
    for (const name of RESOURCE_NAMES) {
      const c = this.classifiers[name];
      const capacity = this.capacityOf(name);
      const enabled = capacity > 0;
      const value = c.smoothed;
      out[name] = {
        value,
        raw: this.raw[name],
        unit: RESOURCE_UNITS[name],
        capacity,
        utilisation: enabled && value !== null ? value / capacity : null,
        lower: this.config[name].lower,
        upper: this.config[name].upper,
        region: enabled ? c.region : null,
        pending: enabled ? c.pendingRegion : null,
      };
    }
    return out;
  }

  /** Opens the CPU and network sources for `config`, reusing those of `old` that did not change. */
  private openSources(config: MonitorConfig, old: MonitorConfig | null): Sources {
    const cpuSame =
      old !== null &&
      old.cpu.source === config.cpu.source &&
      String(old.cpu.pids) === String(config.cpu.pids);
    const cpu = cpuSame
      ? this.sources.cpu
      : new CpuMeter({ source: config.cpu.source, pids: config.cpu.pids });
    if (!cpuSame) cpu.read(performance.now()); // baseline, so the next sample has a span to average over
    let net: Sources['net'] = null;
    if (config.net_source === 'netdev') {
      const same = old !== null && old.net_source === 'netdev' && old.interface === config.interface;
      net =
        same && this.sources.net
          ? this.sources.net
          : {
              iface: config.interface,
              prev: readInterfaceBytes(config.interface),
              prevAt: performance.now(),
            };
    }
    return { cpu, net };
  }
}

function classifierSettings(config: MonitorConfig): ClassifierSettings {
  return {
    smoothing: config.smoothing,
    dwellSamples: config.dwell_samples,
    hysteresis: config.hysteresis,
  };
}

/** The enabled resource in the highest region; ties go to the higher utilisation. */
function busiestResource(resources: Record<ResourceName, ResourceStatus>): ResourceName | null {
  let best: ResourceName | null = null;
  for (const name of RESOURCE_NAMES) {
    const r = resources[name];
    if (r.region === null) continue;
    const b = best ? resources[best] : null;
    if (
      !b ||
      REGION_RANK[r.region] > REGION_RANK[b.region!] ||
      (r.region === b.region && (r.utilisation ?? 0) > (b.utilisation ?? 0))
    ) {
      best = name;
    }
  }
  return best;
}
