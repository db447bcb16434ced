// WorkloadMonitor sampling: rates and percentiles from ProxyStats diffs, netdev and processes
// sources, status() shape, reloads and lifecycle.
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { ProxyStats } from '../../proxy/stats.js';
import { monitorSchema, type MonitorConfig } from '../../src/config/schema.js';
import type { MonitorError } from '../../src/monitor/errors.js';
import { WorkloadMonitor, type MonitorSample } from '../../src/monitor/monitor.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const logger = pino({ level: 'silent' });
const cfg = (over: Record<string, unknown> = {}): MonitorConfig => monitorSchema.parse(over);

const monitors: WorkloadMonitor[] = [];
afterEach(() => {
  for (const m of monitors.splice(0)) m.close();
});
function make(config: MonitorConfig, stats = new ProxyStats()): { m: WorkloadMonitor; stats: ProxyStats } {
  const m = new WorkloadMonitor({ config, readStats: () => stats.snapshot(), logger });
  monitors.push(m);
  return { m, stats };
}

describe('WorkloadMonitor.sampleNow', () => {
  it('does not count rescue redirects as load: local load falls as Pr rises', async () => {
    const { m, stats } = make(cfg({ cpu: { capacity: 1000 } }));
    await sleep(100);
    for (let i = 0; i < 20; i++) stats.recordResponse(200, 2, 1.5);
    for (let i = 0; i < 80; i++) stats.recordResponse(302, 0.1, undefined);
    stats.redirects += 80;
    const s = m.sampleNow();
    const seconds = s.elapsedMs / 1000;
    expect(s.rates.requests * seconds).toBeCloseTo(100, 6);
    expect(s.rates.redirects * seconds).toBeCloseTo(80, 6);
    expect(s.rates.served * seconds).toBeCloseTo(20, 6);
  });

  it('turns counter diffs into per-second rates, error ratio and latency percentiles', async () => {
    const { m, stats } = make(cfg({ cpu: { capacity: 1000 } }));
    await sleep(200);
    // 98 fast requests and 2 slow ones; 10 of the fast ones were upstream errors answered 502.
    for (let i = 0; i < 88; i++) stats.recordResponse(200, 2, 1.5);
    for (let i = 0; i < 10; i++) stats.recordResponse(502, 2, undefined);
    stats.recordResponse(200, 400, 390);
    stats.recordResponse(200, 900, 890);
    stats.upstreamErrors += 10;
    stats.bytesOut += 1_000_000;
    stats.bytesIn += 50_000;
    stats.active = 3;
    stats.connections = 7;
    const s = m.sampleNow();
    const seconds = s.elapsedMs / 1000;
    expect(seconds).toBeGreaterThan(0.15);
    expect(s.rates.requests * seconds).toBeCloseTo(100, 6);
    expect(s.rates.upstreamErrors * seconds).toBeCloseTo(10, 6);
    expect(s.rates.served * seconds).toBeCloseTo(90, 6);
    expect(s.rates.bytesOut * seconds).toBeCloseTo(1_000_000, 3);
    expect(s.rates.bytesIn * seconds).toBeCloseTo(50_000, 3);
    expect(s.upstreamErrorRatio).toBeCloseTo(0.1);
    // Buckets are ~12% wide: a percentile is the bucket's upper bound.
    expect(s.latency.p50).toBeGreaterThanOrEqual(2);
    expect(s.latency.p50).toBeLessThan(2 * 1.13);
    expect(s.latency.p95).toBeLessThan(2 * 1.13);
    expect(s.latency.p99).toBeGreaterThanOrEqual(400);
    expect(s.latency.p99).toBeLessThan(400 * 1.13);
    expect(s.upstreamLatency.p50).toBeGreaterThanOrEqual(1.5);
    expect(s.upstreamLatency.p50).toBeLessThan(1.5 * 1.13);
    expect(s.active).toBe(3);
    expect(s.connections).toBe(7);
    // The request_rate load is the served requests, not the errors.
    expect(s.resources.request_rate.raw).toBeCloseTo(s.rates.served, 6);
    expect(s.resources.request_rate.unit).toBe('requests/s');

    // The next sample covers only what happened since.
    await sleep(20);
    const s2 = m.sampleNow();
    expect(s2.rates.requests).toBe(0);
    expect(s2.latency).toEqual({ p50: null, p95: null, p99: null });
    expect(s2.upstreamErrorRatio).toBeNull();
  });

  it('retried upstream errors that ended well, and our own 503 refusals, still count as load', async () => {
    const { m, stats } = make(cfg({ cpu: { capacity: 1000 } }));
    await sleep(50);
    // 20 requests that succeeded after a retry: an upstream error each, but a 200 answer.
    for (let i = 0; i < 20; i++) stats.recordResponse(200, 2, 2);
    stats.upstreamErrors += 20;
    let s = m.sampleNow();
    expect(s.rates.served * (s.elapsedMs / 1000)).toBeCloseTo(20, 6);
    expect(s.rates.upstreamErrors * (s.elapsedMs / 1000)).toBeCloseTo(20, 6);
    await sleep(20);
    // 30 refused by the proxy as overloaded (503, counted as client errors, no upstream error).
    for (let i = 0; i < 30; i++) stats.recordResponse(503, 0, undefined);
    stats.clientErrors += 30;
    s = m.sampleNow();
    expect(s.rates.served * (s.elapsedMs / 1000)).toBeCloseTo(30, 6);
  });

  it('status() is plain JSON with every resource, before and after samples', () => {
    const { m } = make(
      cfg({ request_rate: { capacity: 100, lower: 0.2, upper: 0.7 }, bytes_in: { capacity: 0 } }),
    );
    const before = m.status();
    expect(before.region).toBe('light');
    expect(before.samples).toBe(0);
    expect(before.rates).toBeNull();
    expect(before.resources.request_rate).toMatchObject({
      value: null,
      capacity: 100,
      lower: 0.2,
      upper: 0.7,
    });
    m.sampleNow();
    const st = m.status();
    expect(JSON.parse(JSON.stringify(st))).toEqual(st);
    expect(Object.keys(st.resources)).toEqual(['cpu', 'bytes_out', 'bytes_in', 'request_rate']);
    expect(st.resources.bytes_in.region).toBeNull(); // disabled
    expect(st.resources.bytes_out).toMatchObject({ capacity: 12_500_000, region: 'light', unit: 'bytes/s' });
    // cpu capacity 0 in config = all host cores.
    expect(st.resources.cpu.capacity).toBe(st.cpu.hostCores);
    expect(st.cpu).toMatchObject({ source: 'host', pids: [], missingPids: [] });
    expect(st.net).toEqual({ source: 'proxy', interface: null });
    expect(st.samples).toBe(1);
    expect(typeof st.lastSampleAt).toBe('number');
  });

  it('emits a sample event per sample, and a region event per change', () => {
    const { m, stats } = make(
      cfg({ dwell_samples: 1, smoothing: 1, cpu: { capacity: 1000 }, request_rate: { capacity: 1 } }),
    );
    const got: string[] = [];
    m.on('sample', (s: MonitorSample) => got.push(`sample ${s.region}`));
    m.on('region', (e: { resource: string; to: string }) => got.push(`region ${e.resource} ${e.to}`));
    stats.requests += 1000; // far above 1 req/s whatever the elapsed time
    m.sampleNow();
    expect(got).toEqual(['sample heavy', 'region request_rate heavy', 'region overall heavy']);
  });

  it('netdev source: byte rates come from the interface counters', async () => {
    const server = createServer((_req, res) => res.end(Buffer.alloc(1_000_000)));
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    try {
      const { m } = make(cfg({ net_source: 'netdev', interface: 'lo', cpu: { capacity: 1000 } }));
      const res = await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`);
      expect((await res.arrayBuffer()).byteLength).toBe(1_000_000);
      const s = m.sampleNow();
      // The proxy's counters are untouched; only lo's counters saw the megabyte. (The net and
      // proxy baselines are taken a moment apart, so allow a little for the differing spans.)
      expect(s.rates.bytesOut * (s.elapsedMs / 1000)).toBeGreaterThan(900_000);
      expect(s.rates.bytesIn * (s.elapsedMs / 1000)).toBeGreaterThan(900_000);
      expect(m.status().net).toEqual({ source: 'netdev', interface: 'lo' });
    } finally {
      server.close();
    }
  });

  it('processes source: reports configured pids that are not running', async () => {
    const { m } = make(cfg({ cpu: { source: 'processes', pids: [99_999_998] } }));
    await sleep(20);
    const s = m.sampleNow();
    expect(s.cpu.missingPids).toEqual([99_999_998]);
    expect(m.status().cpu).toMatchObject({
      source: 'processes',
      pids: [99_999_998],
      missingPids: [99_999_998],
    });
  });

  it('fails clearly on a missing interface, at start and on reload (keeping the old config)', () => {
    expect(() => make(cfg({ net_source: 'netdev', interface: 'nope0' }))).toThrow(/nope0/);
    const { m } = make(cfg());
    try {
      m.update(cfg({ net_source: 'netdev', interface: 'nope0' }));
      expect.unreachable();
    } catch (err) {
      expect((err as MonitorError).code).toBe('MON_ERR_INTERFACE_NOT_FOUND');
    }
    expect(m.status().net.source).toBe('proxy');
    expect(() => m.sampleNow()).not.toThrow();
  });

  it('update() applies new capacities and keeps regions', () => {
    const { m, stats } = make(cfg({ dwell_samples: 1, smoothing: 1, request_rate: { capacity: 1 } }));
    stats.requests += 1000;
    m.sampleNow();
    expect(m.status().resources.request_rate.region).toBe('heavy');
    m.update(cfg({ dwell_samples: 1, smoothing: 1, request_rate: { capacity: 1e9 }, interval_ms: 250 }));
    const st = m.status();
    expect(st.resources.request_rate.region).toBe('heavy'); // until the next sample says otherwise
    expect(st.resources.request_rate.capacity).toBe(1e9);
    expect(st.intervalMs).toBe(250);
    m.sampleNow();
    expect(m.status().resources.request_rate.region).toBe('light');
  });

  it('update() with a new interval restarts the running sampler at that interval', async () => {
    const { m } = make(cfg({ interval_ms: 60_000 }));
    m.start();
    await sleep(100);
    expect(m.status().samples).toBe(0);
    m.update(cfg({ interval_ms: 20 }));
    await sleep(200);
    expect(m.status().samples).toBeGreaterThan(1);
  });

  it('start() samples on the interval; close() is idempotent and stops it', async () => {
    const { m } = make(cfg({ interval_ms: 30 }));
    m.start();
    m.start(); // no second timer
    await sleep(200);
    const n = m.status().samples;
    expect(n).toBeGreaterThan(1);
    expect(n).toBeLessThan(10);
    m.close();
    m.close();
    await sleep(100);
    expect(m.status().samples).toBe(n);
    m.start(); // after close: stays closed
    await sleep(100);
    expect(m.status().samples).toBe(n);
  });
});
